/** Malformed and hostile frames: each must fail with a ProtocolError carrying the right close code. */
import {
  CloseCode,
  DEFAULT_LIMITS,
  MessageType,
  PROTOCOL_VERSION,
  decodeClientMessage,
  decodeServerMessage,
  encodeClientMessage,
  encodeSend,
  encodeServerMessage,
  type JoinMessage,
  type Limits,
} from "../src/index";
import { hex, sameBytes } from "@lockstep/test-support";
import { expectProtocolError, label, patternBytes, sampleClientMessages, sampleServerMessages } from "./helpers";

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
    expectProtocolError(() => decode(hex("02")));
  });

  test.each(decoders)("%s rejects other versions, version 1 included, with VersionMismatch", (_name, decode) => {
    for (const version of [0x00, 0x01, 0x03, 0x7f, 0x80, 0xff]) {
      expectProtocolError(() => decode(Uint8Array.of(version, MessageType.Send, 0)), CloseCode.VersionMismatch);
      expectProtocolError(() => decode(Uint8Array.of(version, MessageType.Relay, 1, 0, 0)), CloseCode.VersionMismatch);
      expectProtocolError(() => decode(Uint8Array.of(version)), CloseCode.ProtocolError);
    }
  });

  test("decodeClientMessage rejects every type that is not a client type", () => {
    const client = new Set<number>([
      MessageType.Join,
      MessageType.Send,
      MessageType.SendBatch,
      MessageType.Leave,
      MessageType.Ping,
      MessageType.SnapshotVote,
      MessageType.SnapshotUpload,
      MessageType.PersistUpload,
      MessageType.PersistLoad,
      MessageType.SnapshotChunk,
      MessageType.PersistChunk,
    ]);
    for (let type = 0; type < 256; type++) {
      if (client.has(type)) continue;
      const error = expectProtocolError(() => decodeClientMessage(Uint8Array.of(PROTOCOL_VERSION, type, 0, 0, 0)));
      expect(error.message).toMatch(/unknown client frame type/);
    }
  });

  test("decodeServerMessage rejects every type that is not a server type", () => {
    const server = new Set<number>([
      MessageType.Sync,
      MessageType.Relay,
      MessageType.ViewJoin,
      MessageType.ViewExit,
      MessageType.Tick,
      MessageType.Pong,
      MessageType.Error,
      MessageType.SnapshotRequest,
      MessageType.UploadRequest,
      MessageType.Divergence,
      MessageType.PersistAck,
      MessageType.Persisted,
      MessageType.PersistData,
      MessageType.Redirect,
    ]);
    for (let type = 0; type < 256; type++) {
      if (server.has(type)) continue;
      const error = expectProtocolError(() => decodeServerMessage(Uint8Array.of(PROTOCOL_VERSION, type, 0, 0, 0)));
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
    expectProtocolError(() => decodeServerMessage(hex("02 45  80 80 80 80 80 80 80 80 01")));
    expectProtocolError(() => decodeServerMessage(hex("02 45  80 80 80 80 80 80 80 10")));
    expectProtocolError(() => decodeClientMessage(hex("02 04  ff ff ff ff ff ff ff ff ff ff 01")));
    expectProtocolError(() => decodeClientMessage(hex("02 02  80 80 80 80 80 80 80 80 80 00")));
  });

  test("invalid UTF-8 in every kind of string field", () => {
    expectProtocolError(() => decodeClientMessage(hex("02 01  02 c3 28  01 70  01 76  14 00 00  00")));
    expectProtocolError(() => decodeClientMessage(hex("02 01  01 73  01 ff  01 76  14 00 00  00")));
    expectProtocolError(() => decodeClientMessage(hex("02 01  01 73  01 70  03 ed a0 80  14 00 00  00")));
    expectProtocolError(() => decodeServerMessage(hex("02 47  a0 1f  02 c0 80")));
    expectProtocolError(() => decodeServerMessage(hex("02 44  01 00  01 80")));
    expectProtocolError(() => decodeServerMessage(hex("02 43  01 00  01 fe  00")));
    expectProtocolError(() => decodeServerMessage(hex("02 41  01 ff  01 76  00 00 00 00 00  00  00")));
    expectProtocolError(() => decodeServerMessage(hex("02 41  01 73  01 76  00 00 00 00 00  00  01  44 01 00 01 ff")));
  });

  test("byte lengths claiming more than is present", () => {
    expectProtocolError(() => decodeClientMessage(hex("02 02  05 61 62")));
    expectProtocolError(() => decodeClientMessage(hex("02 02  ff ff 03 61")), CloseCode.ProtocolError);
    expectProtocolError(() => decodeServerMessage(hex("02 42  01 00  05 61")));
    expectProtocolError(() => decodeServerMessage(hex("02 42  01 00  ff ff ff ff ff ff ff 0f  61")));
    expectProtocolError(() => decodeServerMessage(hex("02 41  01 73  01 76  00 00  ff ff ff ff 0f  00 00  00  00")));
    expectProtocolError(() => decodeServerMessage(hex("02 47  a0 1f  7f 61 62 63")));
  });

  test("Send whose length is shorter than the frame (trailing payload) is a ProtocolError", () => {
    expectProtocolError(() => decodeClientMessage(hex("02 02  01 61 62")));
  });

  test("Sync entries that are not stream entries", () => {
    const notEntries = [
      0x00,
      MessageType.Sync,
      MessageType.Tick,
      MessageType.Pong,
      MessageType.Error,
      MessageType.UploadRequest,
      MessageType.Divergence,
      MessageType.Send,
      MessageType.SnapshotVote,
      MessageType.SnapshotUpload,
      MessageType.PersistUpload,
      MessageType.PersistLoad,
      MessageType.PersistAck,
      0x4e,
      0xff,
    ];
    for (const type of notEntries) {
      const error = expectProtocolError(() => decodeServerMessage(Uint8Array.from([...hex("02 41 01 73 01 76 00 01 00 00 00 00 01"), type, 1, 0, 0])));
      expect(error.message).toMatch(/unknown stream entry type/);
    }
  });

  test.each([
    ["2^53 - 1", "ff ff ff ff ff ff ff 0f", 2 ** 53 - 1],
    ["2^32", "80 80 80 80 10", 2 ** 32],
    ["one million", "c0 84 3d", 1_000_000],
    ["6, with 16 bytes left", "06", 6],
  ])("Sync with an absurd entry count (%s) fails fast without allocating", (_name, count, n) => {
    const frame = hex(`02 41  01 73  01 76  00 00  00 00 00  00  ${count}  ${"42 01 00 00 ".repeat(4)}`);
    const started = Date.now();
    const error = expectProtocolError(() => decodeServerMessage(frame));
    expect(error.message).toBe(`entry list claims ${n} entries in 16 bytes`);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test("the entry count bound is exactly remaining ÷ 3 (a SnapshotRequest entry is 3 bytes)", () => {
    // Five 3-byte SnapshotRequest entries fill 15 bytes exactly: the densest list there is.
    const entries = "48 01 00  48 02 00  48 03 00  48 04 00  48 05 00";
    const decoded = decodeServerMessage(hex(`02 41  01 73  01 76  00 05  00 00 00  00  05  ${entries}`));
    if (decoded.type !== MessageType.Sync) throw new Error("expected a Sync");
    expect(decoded.entries.map((e) => [e.type, e.seq])).toEqual([1, 2, 3, 4, 5].map((seq) => [MessageType.SnapshotRequest, seq]));
    const error = expectProtocolError(() => decodeServerMessage(hex(`02 41  01 73  01 76  00 05  00 00 00  00  06  ${entries}`)));
    expect(error.message).toBe("entry list claims 6 entries in 15 bytes");
  });

  test("Sync entry count that fits the bytes but the entries do not", () => {
    expectProtocolError(() => decodeServerMessage(hex("02 41  01 73  01 76  00 00  00 00 00  00  02  42 01 00 00  42 02 00 05")));
  });
});

describe("snapshot frames", () => {
  test("hashes of up to 64 bytes decode; 65 is a ProtocolError in Vote, Upload and Divergence", () => {
    const hash64 = "40 " + "aa ".repeat(64);
    const hash65 = "41 " + "aa ".repeat(65);
    expect(decodeClientMessage(hex(`02 05  01 ${hash64}`)).type).toBe(MessageType.SnapshotVote);
    expect(decodeClientMessage(hex(`02 06  01 ${hash64} 00`)).type).toBe(MessageType.SnapshotUpload);
    expect(decodeServerMessage(hex(`02 4a  01 ${hash64} 00`)).type).toBe(MessageType.Divergence);
    for (const error of [
      expectProtocolError(() => decodeClientMessage(hex(`02 05  01 ${hash65}`))),
      expectProtocolError(() => decodeClientMessage(hex(`02 06  01 ${hash65} 00`))),
      expectProtocolError(() => decodeServerMessage(hex(`02 4a  01 ${hash65} 00`))),
    ]) {
      expect(error.message).toBe("byte field of 65 bytes exceeds limit 64");
    }
  });

  test("a hash length claiming gigabytes is rejected by its limit, not read", () => {
    expectProtocolError(() => decodeClientMessage(hex("02 05  01  ff ff ff ff 0f")));
    expectProtocolError(() => decodeServerMessage(hex("02 4a  01  ff ff ff ff 0f  00")));
  });

  test("SnapshotRequest has no body beyond seq and time, alone or inside a Sync", () => {
    expectProtocolError(() => decodeServerMessage(hex("02 48  01 00  00")));
    expectProtocolError(() => decodeServerMessage(hex("02 48  01 00  02 68 69")));
    // "48 01 00" is the whole entry; a fourth byte (as if it had a field like a Relay) is left over.
    const error = expectProtocolError(() => decodeServerMessage(hex("02 41  01 73  01 76  00 01  00 00 00  00  01  48 01 00 00")));
    expect(error.message).toBe("1 unexpected trailing bytes");
  });

  test("UploadRequest is only a seq", () => {
    expectProtocolError(() => decodeServerMessage(hex("02 49")));
    expectProtocolError(() => decodeServerMessage(hex("02 49  01 00")));
  });

  test("SnapshotUpload needs all three fields: seq, hash and snapshot", () => {
    expectProtocolError(() => decodeClientMessage(hex("02 06  01")));
    expectProtocolError(() => decodeClientMessage(hex("02 06  01 01 aa")));
    expectProtocolError(() => decodeClientMessage(hex("02 06  01 01 aa  03 01 02")));
    expect(decodeClientMessage(hex("02 06  01 01 aa  03 01 02 03"))).toEqual({
      type: MessageType.SnapshotUpload,
      seq: 1,
      hash: Uint8Array.of(0xaa),
      snapshot: Uint8Array.of(1, 2, 3),
    });
  });
});

describe("version 2 fields: Join resumeSeq, Sync flags, Divergence split", () => {
  /** A Sync of session "s" for view "v" at time 0, seq 1: snapshot, persisted and auth (hex byte fields), flags, then one SnapshotRequest. */
  const syncHex = (snapshot: string, persisted: string, flags: string, auth = "00"): string =>
    `02 41  01 73  01 76  00 01  ${snapshot}  ${persisted}  ${auth}  ${flags}  01  48 01 00`;

  test("Sync flags with any bit but bit 0 set are a ProtocolError, checked before the entries are read", () => {
    for (let flags = 0x02; flags <= 0xff; flags++) {
      const byte = flags.toString(16).padStart(2, "0");
      const error = expectProtocolError(() => decodeServerMessage(hex(syncHex("00", "00", byte))));
      expect(error.message).toBe(`Sync flags 0x${byte} set undefined bits; only bit 0 (resumed) is defined`);
    }
    // An absurd entry count behind bad flags is never looked at.
    const error = expectProtocolError(() => decodeServerMessage(hex("02 41  01 73  01 76  00 00  00 00 00  80  ff ff ff ff ff ff ff 0f")));
    expect(error.message).toMatch(/^Sync flags 0x80/);
  });

  test("flags 0 and 1 decode: not resumed and resumed", () => {
    for (const [flags, resumed] of [["00", false], ["01", true]] as const) {
      const msg = decodeServerMessage(hex(syncHex("00", "00", flags, "01 05")));
      expect(msg).toMatchObject({ type: MessageType.Sync, resumed, auth: Uint8Array.of(5), entries: [{ type: MessageType.SnapshotRequest, seq: 1 }] });
    }
  });

  test("a resumed Sync with a snapshot or persisted data is a ProtocolError; a plain one may carry both", () => {
    for (const [snapshot, persisted] of [["01 aa", "00"], ["00", "02 01 02"], ["01 aa", "01 bb"]] as const) {
      const error = expectProtocolError(() => decodeServerMessage(hex(syncHex(snapshot, persisted, "01"))));
      expect(error.message).toMatch(/^resumed Sync carries a \d+-byte snapshot and \d+ bytes of persisted data; a resumed Sync carries neither$/);
      expect(decodeServerMessage(hex(syncHex(snapshot, persisted, "00")))).toMatchObject({ type: MessageType.Sync, resumed: false });
    }
  });

  test("a Sync in the version 1 layout (no flags byte) under a version 2 header does not decode", () => {
    expectProtocolError(() => decodeServerMessage(hex("02 41  01 73  01 76  00 00  00 00 00  00")));
    expectProtocolError(() => decodeServerMessage(hex("02 41  01 73  01 76  00 01  00 00 00  01  48 01 00")));
  });

  test.each([2, 3, 0x7f, 0x80, 0xff])("Divergence split %d is a ProtocolError", (split) => {
    const error = expectProtocolError(() => decodeServerMessage(Uint8Array.from([...hex("02 4a  07  01 ab"), split])));
    expect(error.message).toBe(`Divergence split is ${split}; it must be 0 or 1`);
  });

  test("a split Divergence with a hash is a ProtocolError; split 0 and 1 decode", () => {
    const error = expectProtocolError(() => decodeServerMessage(hex("02 4a  07  02 ab cd  01")));
    expect(error.message).toBe("split Divergence carries a 2-byte hash; a split has no majority hash");
    expect(decodeServerMessage(hex("02 4a  07  02 ab cd  00"))).toEqual({ type: MessageType.Divergence, seq: 7, hash: Uint8Array.of(0xab, 0xcd), split: false });
    expect(decodeServerMessage(hex("02 4a  07  00  01"))).toEqual({ type: MessageType.Divergence, seq: 7, hash: new Uint8Array(0), split: true });
  });

  test("a Divergence or a Join in the version 1 layout (no last field) under a version 2 header does not decode", () => {
    expectProtocolError(() => decodeServerMessage(hex("02 4a  ac 02  04 de ad be ef")));
    expectProtocolError(() => decodeClientMessage(hex("02 01  02 73 31  02 70 31  02 76 31  14  00  02 7b 7d")));
  });

  test("Join resumeSeq: overlong or above 2^53 - 1 is a ProtocolError, 2^53 - 1 decodes", () => {
    const join = "02 01  01 73  01 70  01 76  14  00  00";
    expectProtocolError(() => decodeClientMessage(hex(`${join}  80 80 80 80 80 80 80 80 01`)));
    expectProtocolError(() => decodeClientMessage(hex(`${join}  80 80 80 80 80 80 80 10`)));
    expectProtocolError(() => decodeClientMessage(hex(`${join}  80`)));
    expect(decodeClientMessage(hex(`${join}  ff ff ff ff ff ff ff 0f`))).toMatchObject({ type: MessageType.Join, resumeSeq: 2 ** 53 - 1 });
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

  test("SnapshotUpload and PersistUpload are bound by maxFrameBytes like every frame (big uploads travel in chunks)", () => {
    const hash = patternBytes(32);
    const fits = encodeClientMessage({ type: MessageType.SnapshotUpload, seq: 9, hash, snapshot: patternBytes(DEFAULT_LIMITS.maxFrameBytes - 100, 3) });
    expect(decodeClientMessage(fits).type).toBe(MessageType.SnapshotUpload);
    const over = encodeClientMessage({ type: MessageType.SnapshotUpload, seq: 9, hash, snapshot: patternBytes(DEFAULT_LIMITS.maxFrameBytes, 3) });
    expect(expectProtocolError(() => decodeClientMessage(over), CloseCode.TooLarge).message).toMatch(/exceeds limit 1048576; send large uploads in chunks/);
    const persist = encodeClientMessage({ type: MessageType.PersistUpload, slot: "s", token: hash, seq: 1, hash, size: 1, blob: patternBytes(DEFAULT_LIMITS.maxFrameBytes) });
    expectProtocolError(() => decodeClientMessage(persist), CloseCode.TooLarge);
  });

  test("a snapshot of maxSnapshotBytes decodes; one byte more is TooLarge", () => {
    const hash = patternBytes(32);
    const limits: Limits = { ...small, maxSnapshotBytes: 100, maxFrameBytes: 4096 };
    const upload = (size: number): Uint8Array => encodeClientMessage({ type: MessageType.SnapshotUpload, seq: 1, hash, snapshot: patternBytes(size) });
    expect(decodeClientMessage(upload(100), limits).type).toBe(MessageType.SnapshotUpload);
    const error = expectProtocolError(() => decodeClientMessage(upload(101), limits), CloseCode.TooLarge);
    expect(error.message).toBe("snapshot of 101 bytes exceeds limit 100");
  });

  test("chunks: total within the upload's cap, data within maxChunkBytes, and the chunk inside the upload", () => {
    const hash = patternBytes(32);
    const chunk = (total: number, offset: number, data: Uint8Array): Uint8Array =>
      encodeClientMessage({ type: MessageType.SnapshotChunk, seq: 3, hash, total, offset, data });
    const decoded = decodeClientMessage(chunk(1000, 900, patternBytes(100)));
    if (decoded.type !== MessageType.SnapshotChunk) throw new Error("expected a SnapshotChunk");
    expect([decoded.seq, decoded.total, decoded.offset, decoded.data.length]).toEqual([3, 1000, 900, 100]);
    // The chunk's data is a view into the frame, not a copy.
    expect(expectProtocolError(() => decodeClientMessage(chunk(DEFAULT_LIMITS.maxSnapshotBytes + 1, 0, patternBytes(10))), CloseCode.TooLarge).message).toBe(
      `snapshot of ${DEFAULT_LIMITS.maxSnapshotBytes + 1} bytes exceeds limit ${DEFAULT_LIMITS.maxSnapshotBytes}`,
    );
    expectProtocolError(() => decodeClientMessage(chunk(DEFAULT_LIMITS.maxFrameBytes, 0, patternBytes(DEFAULT_LIMITS.maxChunkBytes + 1))), CloseCode.TooLarge);
    expect(expectProtocolError(() => decodeClientMessage(chunk(1000, 901, patternBytes(100)))).message).toMatch(/does not fit an upload of 1000 bytes/);
    expectProtocolError(() => decodeClientMessage(chunk(1000, 0, new Uint8Array(0))));
    const persist = (total: number): Uint8Array =>
      encodeClientMessage({ type: MessageType.PersistChunk, slot: "slot1", token: hash, seq: 1, hash, size: 5, total, offset: 0, data: patternBytes(10) });
    expect(decodeClientMessage(persist(10)).type).toBe(MessageType.PersistChunk);
    expectProtocolError(() => decodeClientMessage(persist(DEFAULT_LIMITS.maxPersistBytes + 1)), CloseCode.TooLarge);
  });

  test("every other client frame stays bound by maxFrameBytes, however large maxSnapshotBytes is", () => {
    const limits: Limits = { ...DEFAULT_LIMITS, maxPayloadBytes: 2 * DEFAULT_LIMITS.maxFrameBytes };
    expect(DEFAULT_LIMITS.maxSnapshotBytes).toBeGreaterThan(2 * DEFAULT_LIMITS.maxFrameBytes);
    const send = encodeSend(new Uint8Array(DEFAULT_LIMITS.maxFrameBytes - 4));
    expect(send.length).toBe(DEFAULT_LIMITS.maxFrameBytes + 1);
    expect(expectProtocolError(() => decodeClientMessage(send, limits), CloseCode.TooLarge).message).toBe(
      `frame of ${DEFAULT_LIMITS.maxFrameBytes + 1} bytes exceeds limit ${DEFAULT_LIMITS.maxFrameBytes}; send large uploads in chunks`,
    );
    const client = [MessageType.Join, MessageType.Send, MessageType.Leave, MessageType.Ping, MessageType.SnapshotVote, MessageType.SnapshotUpload, MessageType.SnapshotChunk, MessageType.PersistChunk];
    for (const type of [...client, 0x00, MessageType.Relay, 0xff]) {
      const frame = new Uint8Array(DEFAULT_LIMITS.maxFrameBytes + 1);
      frame.set([PROTOCOL_VERSION, type]);
      expectProtocolError(() => decodeClientMessage(frame), CloseCode.TooLarge);
    }
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
