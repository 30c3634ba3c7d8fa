import { CloseCode, DEFAULT_LIMITS, MAX_SEND_BATCH, MessageType, ProtocolError, decodeClientMessage, encodeClientMessage, encodeSendBatch, sendBatchBytes } from "../src/index";

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/ /g, ""), "hex"));

test("a SendBatch of two payloads, byte for byte (golden): version, type, count, then each payload length-prefixed", () => {
  const frame = encodeSendBatch([Uint8Array.of(0xaa), Uint8Array.of(0xbb, 0xcc)]);
  expect(hex(frame)).toBe("020b0201aa02bbcc");
  expect(decodeClientMessage(fromHex("02 0b 02 01 aa 02 bb cc"))).toEqual({ type: MessageType.SendBatch, payloads: [Uint8Array.of(0xaa), Uint8Array.of(0xbb, 0xcc)] });
  expect(sendBatchBytes([Uint8Array.of(0xaa), Uint8Array.of(0xbb, 0xcc)])).toBe(frame.length);
});

test("round trips through encodeClientMessage, empty payloads and the largest count included; payloads view the frame", () => {
  const payloads = Array.from({ length: MAX_SEND_BATCH }, (_, i) => new Uint8Array(i % 7).fill(i & 0xff));
  const frame = encodeClientMessage({ type: MessageType.SendBatch, payloads });
  const decoded = decodeClientMessage(frame);
  expect(decoded).toEqual({ type: MessageType.SendBatch, payloads });
  if (decoded.type !== MessageType.SendBatch) throw new Error("not a SendBatch");
  expect(decoded.payloads[6]!.buffer).toBe(frame.buffer);
});

test("a count of 0 or above MAX_SEND_BATCH, a payload over maxPayloadBytes, truncation and trailing bytes are refused", () => {
  const refused = (frame: Uint8Array, code: number = CloseCode.ProtocolError) => {
    try {
      decodeClientMessage(frame);
    } catch (error) {
      expect(error).toBeInstanceOf(ProtocolError);
      expect((error as ProtocolError).code).toBe(code);
      return;
    }
    throw new Error(`accepted ${hex(frame)}`);
  };
  refused(fromHex("02 0b 00"));
  refused(fromHex("02 0b 81 08 00")); // 1025
  refused(fromHex("02 0b 02 01 aa")); // the second payload is missing
  refused(fromHex("02 0b 01 01 aa ff")); // trailing byte
  const big = encodeSendBatch([new Uint8Array(DEFAULT_LIMITS.maxPayloadBytes + 1)]);
  refused(big, CloseCode.TooLarge);
  expect(() => encodeSendBatch([])).toThrow(RangeError);
  expect(() => encodeSendBatch(new Array(MAX_SEND_BATCH + 1).fill(new Uint8Array(0)))).toThrow(RangeError);
});
