import { CloseCode, type CloseCodeValue } from "./codes";

/**
 * A frame could not be decoded or broke a protocol rule. `code` is the close code to use when the
 * offending peer is disconnected for it.
 */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  readonly code: CloseCodeValue;

  constructor(message: string, code: CloseCodeValue = CloseCode.ProtocolError, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
