import { CloseCode, LockstepError } from "@lockstep/protocol";

/**
 * Storage failed: an invalid key, an I/O error, corrupt stored data, or a call that breaks the
 * storage contract (e.g. appending out of order). The message says what went wrong and what to do;
 * the underlying error, if any, is chained as `cause`.
 *
 * Most storage errors are transient or the caller's fault, so retrying later may succeed. Damaged
 * stored data is not: it is a {@link SessionDamagedError}, whose {@link StorageError.damaged} is
 * `true` (test with {@link isDamaged}).
 */
export class StorageError extends LockstepError {
  override readonly name: string = "StorageError";
  /** The storage key involved, when there is one (e.g. the corrupt blob's key). */
  readonly key: string | undefined;
  /**
   * Whether stored data is damaged beyond what the storage subsystem can repair by itself: retrying
   * cannot help, the operator must restore or delete it. `false` for I/O errors and misuse.
   */
  readonly damaged: boolean = false;

  constructor(message: string, options?: { cause?: unknown; key?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.key = options?.key;
  }
}

/**
 * Stored data is damaged and cannot be recovered without losing data that was acknowledged: a
 * corrupt meta, snapshot or persisted-data record, or a damaged or missing log segment followed by
 * good ones. It stays so until the operator restores the keys from a backup or deletes them; the
 * message names the key and says which. The reflector refuses joins of such a session with close
 * code 4012 (`SessionDamaged`), which tells clients not to retry.
 */
export class SessionDamagedError extends StorageError {
  override readonly name: string = "SessionDamagedError";
  override readonly damaged = true;
  /** Always `CloseCode.SessionDamaged` (4012), the code the reflector refuses joins of the session with. */
  override readonly code = CloseCode.SessionDamaged;
  /** The session whose data is damaged, when the damaged key belongs to one. */
  readonly sessionId: string | undefined;

  constructor(message: string, options: { cause?: unknown; key: string; sessionId?: string }) {
    super(message, options);
    this.sessionId = options.sessionId;
  }
}

/**
 * The {@link SessionDamagedError} that `error` is or was caused by (following `cause` links, so a
 * wrapped one is found too), or `undefined`.
 */
export function findDamage(error: unknown): SessionDamagedError | undefined {
  // Bounded: a cause chain can be circular.
  for (let e = error, depth = 0; e instanceof Error && depth < 16; e = e.cause, depth++) {
    if (e instanceof SessionDamagedError) return e;
  }
  return undefined;
}

/**
 * Whether `error` (or an error in its `cause` chain) reports stored data damaged beyond recovery:
 * a permanent condition, unlike other storage errors.
 *
 * @example
 * ```ts
 * try {
 *   await sessions.load(sessionId);
 * } catch (error) {
 *   if (isDamaged(error)) refuseForGood(error); // retrying cannot help; the operator must act
 *   else retryLater(error);
 * }
 * ```
 */
export function isDamaged(error: unknown): boolean {
  return findDamage(error) !== undefined;
}
