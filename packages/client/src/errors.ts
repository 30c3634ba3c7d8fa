import { LockstepError, type CloseCodeValue } from "@lockstep/protocol";

/**
 * Errors the client throws. Each says what went wrong and what to do about it; the underlying
 * error, if any, is chained as `cause`. All extend `LockstepError` (from `@lockstep/protocol`, also
 * exported by this package), whose `code` is the `CloseCode` that applies, if one does.
 */

/** The app used the API in a way it does not allow (e.g. `new` on a Model, model API from view code). */
export class UsageError extends LockstepError {
  override readonly name = "UsageError";
}

/** `Session.join` failed: bad options, unreachable reflector, rejected join, or a broken stream. */
export class JoinError extends LockstepError {
  override readonly name = "JoinError";
  /**
   * The connection's close code as received, including WebSocket's own (e.g. 1006 for a connection
   * that dropped); `code` holds it only when it is a Lockstep `CloseCode`.
   */
  readonly closeCode: number | undefined;

  /** @param options.code - the reflector's close code, when it refused the join. */
  constructor(message: string, options?: { cause?: unknown; code?: CloseCodeValue | number }) {
    super(message, options);
    this.closeCode = options?.code;
  }
}

/** A running session broke: lost connection past the rejoin limit, a gap in the stream, a fatal reflector error. */
export class SessionError extends LockstepError {
  override readonly name = "SessionError";
  /** The connection's close code as received, including WebSocket's own (see {@link JoinError.closeCode}). */
  readonly closeCode: number | undefined;

  /** @param options.code - the close code the session ended with, if any. */
  constructor(message: string, options?: { cause?: unknown; code?: CloseCodeValue | number }) {
    super(message, options);
    this.closeCode = options?.code;
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
export class ReplayError extends LockstepError {
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
