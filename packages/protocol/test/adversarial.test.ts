/** Malformed and hostile frames: each must fail with a ProtocolError carrying the right close code. */
import {
  CloseCode,
  DEFAULT_LIMITS,
  MessageType,
  decodeClientMessage,
  decodeServerMessage,
  encodeClientMessage,
  encodeSend,
  encodeServerMessage,
  type JoinMessage,
  type Limits,
} from "../src/index";
import { expectProtocolError, hex, label, patternBytes, sampleClientMessages, sampleServerMessages } from "./helpers";

const decoders = [
  ["decodeClientMessage", (frame: Uint8Array) => decodeClientMessage(frame)],
  ["decodeServerMessage", (frame: Uint8Array) => decodeServerMessage(frame)],
] as const;

const clientFrames = sampleClientMessages.map((m, i) => [label(m, i), encodeClientMessage(m)] as const);
const serverFrames = sampleServerMessages.map((m, i) => [label(m, i), encodeServerMessage(m)] as const);

function joinFrame(overrides: Partial<Omit<JoinMessage, "type">> = {}): Uint8Array {
  return encodeClientMessage({
    type: MessageType.Join,
    sessionId: "sess",
    persistentId: "pers",
    viewId: "view",
    tps: 20,
    auth: new Uint8Array(0),
    viewData: new Uint8Array(0),
    ...overrides,
  });
}

describe("headers", () => {
  test.each(decoders)("%s rejects an empty frame", (_name, decode) => {
    expectProtocolError(() => decode(new Uint8Array(0)));
  });

  test.each(decoders)("%s rejects a 1-byte frame", (_name, decode) => {
    expectProtocolError(() => decode(hex("01")));
  });

  test.each(decoders)("%s rejects other versions with VersionMismatch", (_name, decode) => {
    for (const version of [0x00, 0x02, 0x7f, 0x80, 0xff]) {
      expectProtocolError(() => decode(Uint8Array.of(version, MessageType.Send, 0)), CloseCode.VersionMismatch);
      expectProtocolError(() => decode(Uint8Array.of(version, MessageType.Relay, 1, 0, 0)), CloseCode.VersionMismatch);
      expectProtocolError(() => decode(Uint8Array.of(version)), CloseCode.ProtocolError);
    }
  });

  test("decodeClientMessage rejects every type that is not a client type", () => {
    const client = new Set<number>([MessageType.Join, MessageType.Send, MessageType.Leave, MessageType.Ping]);
    for (let type = 0; type < 256; type++) {
      if (client.has(type)) continue;
      const error = expectProtocolError(() => decodeClientMessage(Uint8Array.of(1, type, 0, 0, 0)));
      expect(error.message).toMatch(/unknown client frame type/);
    }
  });

  test("decodeServerMessage rejects every type that is not a server type", () => {
    const server = new Set<number>([MessageType.Sync, MessageType.Relay, MessageType.ViewJoin, MessageType.ViewExit, MessageType.Tick, MessageType.Pong, MessageType.Error]);
    for (let type = 0; type < 256; type++) {
      if (server.has(type)) continue;
      const error = expectProtocolError(() => decodeServerMessage(Uint8Array.of(1, type, 0, 0, 0)));
      expect(error.message).toMatch(/unknown server frame type/);
    }
  });
});

describe("truncation and trailing bytes", () => {
  test.each(clientFrames)("every strict prefix of client %s is a ProtocolError", (_name, frame) => {
    for (let length = 0; length < frame.length; length++) {
      expectProtocolError(() => decodeClientMessage(frame.slice(0, length)));
    }
  });

  test.each(serverFrames)("every strict prefix of server %s is a ProtocolError", (_name, frame) => {
    for (let length = 0; length < frame.length; length++) {
      expectProtocolError(() => decodeServerMessage(frame.slice(0, length)));
    }
  });

  test.each(clientFrames)("client %s with trailing bytes is a ProtocolError", (_name, frame) => {
    for (const extra of [[0], [0xff], [1, 2, 3]]) {
      expectProtocolError(() => decodeClientMessage(Uint8Array.from([...frame, ...extra])));
    }
  });

  test.each(serverFrames)("server %s with trailing bytes is a ProtocolError", (_name, frame) => {
    for (const extra of [[0], [0xff], [1, 2, 3]]) {
      expectProtocolError(() => decodeServerMessage(Uint8Array.from([...frame, ...extra])));
    }
  });
});

describe("malformed fields", () => {
  test("overlong varints", () => {
    expectProtocolError(() => decodeServerMessage(hex("01 45  80 80 80 80 80 80 80 80 01")));
    expectProtocolError(() => decodeServerMessage(hex("01 45  80 80 80 80 80 80 80 10")));
    expectProtocolError(() => decodeClientMessage(hex("01 04  ff ff ff ff ff ff ff ff ff ff 01")));
    expectProtocolError(() => decodeClientMessage(hex("01 02  80 80 80 80 80 80 80 80 80 00")));
  });

  test("invalid UTF-8 in every kind of string field", () => {
    expectProtocolError(() => decodeClientMessage(hex("01 01  02 c3 28  01 70  01 76  14 00 00")));
    expectProtocolError(() => decodeClientMessage(hex("01 01  01 73  01 ff  01 76  14 00 00")));
    expectProtocolError(() => decodeClientMessage(hex("01 01  01 73  01 70  03 ed a0 80  14 00 00")));
    expectProtocolError(() => decodeServerMessage(hex("01 47  a0 1f  02 c0 80")));
    expectProtocolError(() => decodeServerMessage(hex("01 44  01 00  01 80")));
    expectProtocolError(() => decodeServerMessage(hex("01 43  01 00  01 fe  00")));
    expectProtocolError(() => decodeServerMessage(hex("01 41  01 ff  01 76  00 00 00 00 00 00")));
    expectProtocolError(() => decodeServerMessage(hex("01 41  01 73  01 76  00 00 00 00 00  01  44 01 00 01 ff")));
  });

  test("byte lengths claiming more than is present", () => {
    expectProtocolError(() => decodeClientMessage(hex("01 02  05 61 62")));
    expectProtocolError(() => decodeClientMessage(hex("01 02  ff ff 03 61")), CloseCode.ProtocolError);
    expectProtocolError(() => decodeServerMessage(hex("01 42  01 00  05 61")));
    expectProtocolError(() => decodeServerMessage(hex("01 42  01 00  ff ff ff ff ff ff ff 0f  61")));
    expectProtocolError(() => decodeServerMessage(hex("01 41  01 73  01 76  00 00  ff ff ff ff 0f  00 00 00")));
    expectProtocolError(() => decodeServerMessage(hex("01 47  a0 1f  7f 61 62 63")));
  });

  test("Send whose length is shorter than the frame (trailing payload) is a ProtocolError", () => {
    expectProtocolError(() => decodeClientMessage(hex("01 02  01 61 62")));
  });

  test("Sync entries that are not stream entries", () => {
    for (const type of [0x00, MessageType.Sync, MessageType.Tick, MessageType.Pong, MessageType.Error, MessageType.Send, 0xff]) {
      const error = expectProtocolError(() => decodeServerMessage(Uint8Array.from([...hex("01 41 01 73 01 76 00 01 00 00 00 01"), type, 1, 0, 0])));
      expect(error.message).toMatch(/unknown stream entry type/);
    }
  });

  test.each([
    ["2^53 - 1", "ff ff ff ff ff ff ff 0f"],
    ["2^32", "80 80 80 80 10"],
    ["one million", "c0 84 3d"],
    ["5, with 16 bytes left", "05"],
  ])("Sync with an absurd entry count (%s) fails fast without allocating", (_name, count) => {
    const frame = hex(`01 41  01 73  01 76  00 00  00 00 00  ${count}  ${"42 01 00 00 ".repeat(4)}`);
    const started = Date.now();
    const error = expectProtocolError(() => decodeServerMessage(frame));
    expect(error.message).toMatch(/claims/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test("Sync entry count that fits the bytes but the entries do not", () => {
    expectProtocolError(() => decodeServerMessage(hex("01 41  01 73  01 76  00 00  00 00 00  02  42 01 00 00  42 02 00 05")));
  });
});

describe("limits", () => {
  const small: Limits = { ...DEFAULT_LIMITS, maxFrameBytes: 64, maxPayloadBytes: 16, maxAuthBytes: 4, maxViewDataBytes: 8, maxIdLength: 6, minTps: 5, maxTps: 10 };

  test("a Send payload at maxPayloadBytes decodes; one byte more is TooLarge", () => {
    expect(decodeClientMessage(encodeSend(new Uint8Array(DEFAULT_LIMITS.maxPayloadBytes))).type).toBe(MessageType.Send);
    const error = expectProtocolError(() => decodeClientMessage(encodeSend(new Uint8Array(DEFAULT_LIMITS.maxPayloadBytes + 1))), CloseCode.TooLarge);
    expect(error.message).toMatch(/payload/);
    expect(decodeClientMessage(encodeSend(new Uint8Array(16)), small).type).toBe(MessageType.Send);
    expectProtocolError(() => decodeClientMessage(encodeSend(new Uint8Array(17)), small), CloseCode.TooLarge);
  });

  test("a frame over maxFrameBytes is TooLarge whatever it contains", () => {
    const limits: Limits = { ...DEFAULT_LIMITS, maxPayloadBytes: 2 * DEFAULT_LIMITS.maxFrameBytes };
    const fits = encodeSend(new Uint8Array(DEFAULT_LIMITS.maxFrameBytes - 5));
    expect(fits.length).toBe(DEFAULT_LIMITS.maxFrameBytes);
    expect(decodeClientMessage(fits, limits).type).toBe(MessageType.Send);
    expectProtocolError(() => decodeClientMessage(encodeSend(new Uint8Array(DEFAULT_LIMITS.maxFrameBytes - 4)), limits), CloseCode.TooLarge);
    expectProtocolError(() => decodeClientMessage(new Uint8Array(DEFAULT_LIMITS.maxFrameBytes + 1)), CloseCode.TooLarge);
    expectProtocolError(() => decodeClientMessage(new Uint8Array(65).fill(1), small), CloseCode.TooLarge);
  });

  test("Join auth and viewData over their limits are TooLarge", () => {
    expect(decodeClientMessage(joinFrame({ auth: patternBytes(DEFAULT_LIMITS.maxAuthBytes), viewData: patternBytes(DEFAULT_LIMITS.maxViewDataBytes) })).type).toBe(MessageType.Join);
    expectProtocolError(() => decodeClientMessage(joinFrame({ auth: patternBytes(DEFAULT_LIMITS.maxAuthBytes + 1) })), CloseCode.TooLarge);
    expectProtocolError(() => decodeClientMessage(joinFrame({ viewData: patternBytes(DEFAULT_LIMITS.maxViewDataBytes + 1) })), CloseCode.TooLarge);
    const ids = { sessionId: "s", persistentId: "p", viewId: "v", tps: 5 };
    expectProtocolError(() => decodeClientMessage(joinFrame({ ...ids, auth: patternBytes(5) }), small), CloseCode.TooLarge);
    expectProtocolError(() => decodeClientMessage(joinFrame({ ...ids, viewData: patternBytes(9) }), small), CloseCode.TooLarge);
  });

  test.each([
    ["empty", ""],
    ["65 characters", "a".repeat(65)],
    ["a long id of 1000 characters", "a".repeat(1000)],
    ["padding", "abc="],
    ["standard base64", "a+b/"],
    ["a space", "a b"],
    ["non-ASCII", "é"],
    ["emoji", "😀"],
  ])("Join with an id that is %s is BadJoin, in each id field", (_name, bad) => {
    for (const field of ["sessionId", "persistentId", "viewId"] as const) {
      const error = expectProtocolError(() => decodeClientMessage(joinFrame({ [field]: bad })), CloseCode.BadJoin);
      expect(error.message).toContain(field);
    }
  });

  test("Join id length limit follows maxIdLength", () => {
    expect(decodeClientMessage(joinFrame({ sessionId: "a".repeat(64) })).type).toBe(MessageType.Join);
    const ids = { persistentId: "p", viewId: "v", tps: 5 };
    expect(decodeClientMessage(joinFrame({ ...ids, sessionId: "abcdef" }), small).type).toBe(MessageType.Join);
    expectProtocolError(() => decodeClientMessage(joinFrame({ ...ids, sessionId: "abcdefg" }), small), CloseCode.BadJoin);
  });

  test.each([0, DEFAULT_LIMITS.maxTps + 1, 1000, 2 ** 53 - 1])("Join with tps %d is BadJoin", (tps) => {
    const error = expectProtocolError(() => decodeClientMessage(joinFrame({ tps })), CloseCode.BadJoin);
    expect(error.message).toMatch(/tps/);
  });

  test("Join tps range follows the limits", () => {
    const ids = { sessionId: "s", persistentId: "p", viewId: "v" };
    expect(decodeClientMessage(joinFrame({ ...ids, tps: 5 }), small).type).toBe(MessageType.Join);
    expect(decodeClientMessage(joinFrame({ ...ids, tps: 10 }), small).type).toBe(MessageType.Join);
    expectProtocolError(() => decodeClientMessage(joinFrame({ ...ids, tps: 4 }), small), CloseCode.BadJoin);
    expectProtocolError(() => decodeClientMessage(joinFrame({ ...ids, tps: 11 }), small), CloseCode.BadJoin);
  });
});
