import { LockstepError } from "@lockstep/protocol";

/**
 * The reflector could not start or was configured wrongly. Network input never produces this
 * error: bad frames close only the offending socket, with a close code from `CloseCode`. Like every
 * Lockstep error it extends `LockstepError`; its `code` is `undefined`.
 */
export class ReflectorError extends LockstepError {
  override readonly name = "ReflectorError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
