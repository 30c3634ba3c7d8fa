/**
 * The reflector could not start or was configured wrongly. Network input never produces this
 * error: bad frames close only the offending socket, with a close code from `CloseCode`.
 */
export class ReflectorError extends Error {
  override readonly name = "ReflectorError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
