import { CloseCode, closeCodeName, type CloseCodeValue } from "./codes";

/** Options of {@link LockstepError} (and of the subclasses that take a code). */
export interface LockstepErrorOptions {
  /** The underlying error, chained as `cause`. */
  readonly cause?: unknown;
  /**
   * The close code involved, if any. Only Lockstep's own codes (`CloseCode`, 4000–4999) become
   * {@link LockstepError.code}; anything else (e.g. WebSocket's 1006) leaves it `undefined`.
   */
  readonly code?: CloseCodeValue | number;
}

const lockstepCodes: ReadonlySet<number> = new Set(Object.values(CloseCode));

/** Whether `code` is one of Lockstep's close codes (a {@link CloseCodeValue}). */
export function isCloseCode(code: unknown): code is CloseCodeValue {
  return typeof code === "number" && lockstepCodes.has(code);
}

/**
 * The base of every error Lockstep throws, in the client, the reflector and the protocol package:
 * `error instanceof LockstepError` tells Lockstep's errors from others. Each subclass keeps its own
 * `name` (`"JoinError"`, `"StorageError"` …) and fields; the underlying error, if any, is `cause`.
 *
 * `code` is the close code that applies, when one does: why the reflector refused or closed a
 * connection (`CloseCode.AuthFailed`, `CloseCode.SessionDamaged` …), or the code a peer is
 * disconnected with for a bad frame. `codeName` is its symbolic name.
 *
 * @example
 * ```ts
 * try {
 *   await Session.join(options);
 * } catch (error) {
 *   if (error instanceof LockstepError && error.code === CloseCode.AuthFailed) askForThePasswordAgain();
 *   else throw error;
 * }
 * ```
 */
export class LockstepError extends Error {
  override readonly name: string = "LockstepError";
  /** The close code that applies (a `CloseCode`), or `undefined` when none does. */
  readonly code: CloseCodeValue | undefined;

  constructor(message: string, options?: LockstepErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = isCloseCode(options?.code) ? options.code : undefined;
  }

  /** The symbolic name of {@link code} (`"AuthFailed"` for 4008), or `undefined` without one. */
  get codeName(): string | undefined {
    return this.code === undefined ? undefined : closeCodeName(this.code);
  }
}

/**
 * A frame could not be decoded or broke a protocol rule. `code` is the close code to use when the
 * offending peer is disconnected for it.
 */
export class ProtocolError extends LockstepError {
  override readonly name = "ProtocolError";
  /** Always set: `CloseCode.ProtocolError` unless a more specific code applies. */
  declare readonly code: CloseCodeValue;

  constructor(message: string, code: CloseCodeValue = CloseCode.ProtocolError, options?: { cause?: unknown }) {
    super(message, { cause: options?.cause, code });
    this.code = code;
  }
}
