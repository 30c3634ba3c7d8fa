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
