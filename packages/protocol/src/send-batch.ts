import { CloseCode, MessageType, PROTOCOL_VERSION } from "./codes";
import { varUintSize, writeVarUintAt, type Reader } from "./encoding";
import { ProtocolError } from "./errors";
import type { Limits } from "./limits";
import type { SendBatchMessage } from "./messages";

/**
 * Most payloads one `SendBatch` may carry. Each becomes a stream entry, so the count bounds the
 * work one frame makes the reflector do (the frame's bytes are bounded by `maxFrameBytes`).
 */
export const MAX_SEND_BATCH = 1024;

/** Bytes a `SendBatch` of `payloads` takes (header included). */
export function sendBatchBytes(payloads: readonly Uint8Array[]): number {
  let n = 2 + varUintSize(payloads.length);
  for (const p of payloads) n += varUintSize(p.length) + p.length;
  return n;
}

/**
 * Encodes a `SendBatch` frame: several payloads, relayed as consecutive entries in this order, in
 * one frame (one allocation of exactly the right size: hot path).
 * @throws {RangeError} if there are none, or more than {@link MAX_SEND_BATCH}.
 */
export function encodeSendBatch(payloads: readonly Uint8Array[]): Uint8Array {
  if (payloads.length === 0 || payloads.length > MAX_SEND_BATCH) throw new RangeError(`a SendBatch carries 1..${MAX_SEND_BATCH} payloads, not ${payloads.length}`);
  const out = new Uint8Array(sendBatchBytes(payloads));
  out[0] = PROTOCOL_VERSION;
  out[1] = MessageType.SendBatch;
  let pos = writeVarUintAt(out, 2, payloads.length);
  for (const p of payloads) {
    pos = writeVarUintAt(out, pos, p.length);
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/**
 * Reads a `SendBatch` body. The payloads view the frame (no copies).
 * @throws {ProtocolError} `TooLarge` for a payload over `maxPayloadBytes`, else for a bad count or framing.
 */
export function readSendBatch(r: Reader, limits: Limits): SendBatchMessage {
  const count = r.varUint();
  if (count === 0 || count > MAX_SEND_BATCH) throw new ProtocolError(`a SendBatch carries 1..${MAX_SEND_BATCH} payloads, this one says ${count}`);
  const payloads: Uint8Array[] = new Array(count);
  for (let i = 0; i < count; i++) {
    // Read unbounded and check after, so an oversized payload closes with TooLarge, as in a Send.
    const payload = r.bytes();
    if (payload.length > limits.maxPayloadBytes) {
      throw new ProtocolError(`payload of ${payload.length} bytes exceeds limit ${limits.maxPayloadBytes}`, CloseCode.TooLarge);
    }
    payloads[i] = payload;
  }
  return { type: MessageType.SendBatch, payloads };
}
