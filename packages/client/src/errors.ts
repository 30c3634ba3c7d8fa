/**
 * Errors the client throws. Each says what went wrong and what to do about it; the underlying
 * error, if any, is chained as `cause`.
 */

/** The app used the API in a way it does not allow (e.g. `new` on a Model, model API from view code). */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** `Session.join` failed: bad options, unreachable reflector, rejected join, or a broken stream. */
export class JoinError extends Error {
  override readonly name = "JoinError";
  /** Close code from the reflector, when it refused the join. */
  readonly code: number | undefined;

  constructor(message: string, options?: { cause?: unknown; code?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code;
  }
}

/** A running session broke: lost connection past the rejoin limit, a gap in the stream, a fatal reflector error. */
export class SessionError extends Error {
  override readonly name = "SessionError";
  readonly code: number | undefined;

  constructor(message: string, options?: { cause?: unknown; code?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code;
  }
}

/** Why a relayed message was refused as a replay (see {@link ReplayError}). */
export type ReplayReason =
  /** It names a view that is not in the session (never joined, or already exited). */
  | "unknown-view"
  /** It was sent on an earlier connection of its view, which has rejoined since. */
  | "stale-join"
  /** Its counter is not above the last one applied from that connection: a repeat, or out of order. */
  | "repeated";

/**
 * A relayed message was dropped because it is not new: it repeats, or comes from an earlier
 * connection of, a view (someone re-sent captured ciphertext). Every replica drops it alike, so
 * the session stays consistent; it is reported once per session as a `(sessionId, "error")` view
 * event of kind `"replay"`.
 */
export class ReplayError extends Error {
  override readonly name = "ReplayError";
  /** What made it a replay. */
  readonly reason: ReplayReason;
  /** The view the message claims to come from. */
  readonly viewId: string;

  constructor(message: string, reason: ReplayReason, viewId: string) {
    super(message);
    this.reason = reason;
    this.viewId = viewId;
  }
}
