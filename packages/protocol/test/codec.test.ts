/** Round trips of every client and server frame type through the codec. */
import {
  CloseCode,
  DEFAULT_LIMITS,
  MessageType,
  decodeClientMessage,
  decodeServerMessage,
  encodeClientMessage,
  encodeEntries,
  encodeRelay,
  encodeSend,
  encodeServerMessage,
  encodeTick,
  maxJoinFrameBytes,
  Writer,
  type ClientMessage,
  type DivergenceMessage,
  type JoinMessage,
  type Limits,
  type ServerMessage,
  type StreamEntry,
  type SyncMessage,
} from "../src/index";
import { sameBytes, toHex } from "@lockstep/test-support";
import { label, patternBytes, sampleClientMessages, sampleServerMessages } from "./helpers";

/** Encodes, decodes, and checks that the result is equal and re-encodes to the same bytes. */
function roundTripClient(msg: ClientMessage): Uint8Array {
  const frame = encodeClientMessage(msg);
  const decoded = decodeClientMessage(frame);
  expect(decoded).toEqual(msg);
  expect(toHex(encodeClientMessage(decoded))).toBe(toHex(frame));
  return frame;
}

function roundTripServer(msg: ServerMessage): Uint8Array {
  const frame = encodeServerMessage(msg);
  const decoded = decodeServerMessage(frame);
  expect(decoded).toEqual(msg);
  expect(toHex(encodeServerMessage(decoded))).toBe(toHex(frame));
  return frame;
}

/** Varint values on both sides of every size step, up to the largest the protocol carries. */
const boundaryInts = [0, 1, 127, 128, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];

const unicodeStrings = [
  "",
  "plain ascii",
  "é",
  "€ and 中文",
  "😀",
  "𝕃𝕠𝕔𝕜𝕤𝕥𝕖𝕡",
  "👩‍👩‍👧‍👦 family (ZWJ sequence)",
  "\u0000 NUL inside",
  "\uFEFF BOM first",
  "🏳️‍🌈".repeat(500),
];

function join(overrides: Partial<Omit<JoinMessage, "type">> = {}): JoinMessage {
  return {
    type: MessageType.Join,
    sessionId: "sess",
    persistentId: "pers",
    viewId: "view",
    tps: 20,
    auth: new Uint8Array(0),
    viewData: new Uint8Array(0),
    resumeSeq: 0,
    ...overrides,
  };
}

describe("sample messages", () => {
  test.each(sampleClientMessages.map((m, i) => [label(m, i), m] as const))("client %s", (_name, msg) => {
    roundTripClient(msg);
  });

  test.each(sampleServerMessages.map((m, i) => [label(m, i), m] as const))("server %s", (_name, msg) => {
    roundTripServer(msg);
  });
});

describe("Join", () => {
  test("with empty auth and viewData", () => {
    // header, three 4-character ids, tps, auth length, viewData length, resumeSeq
    expect(roundTripClient(join()).length).toBe(2 + 5 + 5 + 5 + 1 + 1 + 1 + 1);
  });

  test("with auth and viewData at their limits", () => {
    roundTripClient(join({ auth: patternBytes(DEFAULT_LIMITS.maxAuthBytes), viewData: patternBytes(DEFAULT_LIMITS.maxViewDataBytes, 9) }));
  });

  test("with ids of 1 and of maxIdLength characters, every id character", () => {
    const all = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    roundTripClient(join({ sessionId: all, persistentId: "x", viewId: "_" }));
    roundTripClient(join({ sessionId: "-", persistentId: all.slice(0, 43), viewId: all.slice(21) }));
  });

  test.each([DEFAULT_LIMITS.minTps, DEFAULT_LIMITS.maxTps, 20])("with tps %d", (tps) => {
    roundTripClient(join({ tps }));
  });

  test.each(boundaryInts)("with resumeSeq %d, the frame's last field", (resumeSeq) => {
    const frame = roundTripClient(join({ resumeSeq }));
    const w = new Writer(1);
    w.varUint(resumeSeq);
    expect(toHex(frame).endsWith(toHex(w.finish()))).toBe(true);
  });

  test("without resumeSeq encodes as resumeSeq 0 (a fresh join), which the decoder sets", () => {
    const { resumeSeq: _omitted, ...fresh } = join();
    const frame = encodeClientMessage(fresh);
    expect(toHex(frame)).toBe(toHex(encodeClientMessage(join({ resumeSeq: 0 }))));
    expect(frame[frame.length - 1]).toBe(0);
    expect(decodeClientMessage(frame)).toEqual({ ...fresh, resumeSeq: 0 });
  });
});

describe("maxJoinFrameBytes", () => {
  /** The largest Join `limits` allow: longest ids, highest tps, full auth and viewData, and the largest resumeSeq. */
  function largestJoin(limits: Limits): JoinMessage {
    return join({
      sessionId: "a".repeat(limits.maxIdLength),
      persistentId: "b".repeat(limits.maxIdLength),
      viewId: "c".repeat(limits.maxIdLength),
      tps: limits.maxTps,
      auth: patternBytes(limits.maxAuthBytes, 1),
      viewData: patternBytes(limits.maxViewDataBytes, 2),
      resumeSeq: 2 ** 53 - 1,
    });
  }

  test("the largest Join with the largest resumeSeq fits the pre-join budget of the default limits", () => {
    const frame = encodeClientMessage(largestJoin(DEFAULT_LIMITS));
    expect(frame.length).toBeLessThanOrEqual(maxJoinFrameBytes(DEFAULT_LIMITS));
    expect(decodeClientMessage(frame)).toEqual(largestJoin(DEFAULT_LIMITS));
  });

  test("the budget is exact when every field's length prefix and varuint is at its widest", () => {
    // 128-character ids take 2-byte lengths, 16 KiB fields 3-byte lengths, a tps of 2^53 - 1 8 bytes, as does resumeSeq.
    const limits: Limits = { ...DEFAULT_LIMITS, maxIdLength: 128, maxAuthBytes: 16384, maxViewDataBytes: 16384, maxTps: 2 ** 53 - 1 };
    const frame = encodeClientMessage(largestJoin(limits));
    expect(frame.length).toBe(maxJoinFrameBytes(limits));
    expect(decodeClientMessage(frame, limits)).toEqual(largestJoin(limits));
  });
});

describe("Send", () => {
  test("empty payload", () => {
    expect(toHex(roundTripClient({ type: MessageType.Send, payload: new Uint8Array(0) }))).toBe("02 02 00");
  });

  test.each([1, 127, 128, 16383, 16384, DEFAULT_LIMITS.maxPayloadBytes])("payload of %d bytes", (size) => {
    const payload = patternBytes(size, size);
    const frame = encodeClientMessage({ type: MessageType.Send, payload });
    const decoded = decodeClientMessage(frame);
    if (decoded.type !== MessageType.Send) throw new Error("expected a Send");
    expect(sameBytes(decoded.payload, payload)).toBe(true);
  });

  test("encodeSend is encodeClientMessage for Send", () => {
    const payload = patternBytes(1000);
    expect(sameBytes(encodeSend(payload), encodeClientMessage({ type: MessageType.Send, payload }))).toBe(true);
  });

  test("the decoded payload is a view into the frame", () => {
    const frame = encodeSend(Uint8Array.of(1, 2, 3));
    const decoded = decodeClientMessage(frame);
    if (decoded.type !== MessageType.Send) throw new Error("expected a Send");
    expect(decoded.payload.buffer).toBe(frame.buffer);
  });
});

describe("Leave and Ping", () => {
  test("Leave is just the header", () => {
    expect(toHex(roundTripClient({ type: MessageType.Leave }))).toBe("02 03");
  });

  test.each(boundaryInts)("Ping id %d", (id) => {
    roundTripClient({ type: MessageType.Ping, id });
  });
});

describe("stream entries", () => {
  test.each(boundaryInts)("Relay, ViewJoin, ViewExit with seq and time %d", (n) => {
    roundTripServer({ type: MessageType.Relay, seq: n, time: n, payload: Uint8Array.of(n & 0xff) });
    roundTripServer({ type: MessageType.ViewJoin, seq: n, time: 2 ** 53 - 1 - n, viewId: "v", viewData: new Uint8Array(0) });
    roundTripServer({ type: MessageType.ViewExit, seq: 2 ** 53 - 1 - n, time: n, viewId: "v" });
  });

  test("Relay with an empty and a large payload", () => {
    roundTripServer({ type: MessageType.Relay, seq: 1, time: 0, payload: new Uint8Array(0) });
    const payload = patternBytes(3 * 1024 * 1024, 5);
    const frame = encodeRelay(12, 34, payload);
    const decoded = decodeServerMessage(frame);
    if (decoded.type !== MessageType.Relay) throw new Error("expected a Relay");
    expect([decoded.seq, decoded.time]).toEqual([12, 34]);
    expect(sameBytes(decoded.payload, payload)).toBe(true);
  });

  test("encodeRelay is encodeServerMessage for Relay", () => {
    for (const n of boundaryInts) {
      const payload = patternBytes(n % 300);
      expect(toHex(encodeRelay(n, n, payload))).toBe(toHex(encodeServerMessage({ type: MessageType.Relay, seq: n, time: n, payload })));
    }
  });

  test.each(unicodeStrings)("ViewJoin and ViewExit with viewId %p", (viewId) => {
    roundTripServer({ type: MessageType.ViewJoin, seq: 5, time: 6, viewId, viewData: patternBytes(70) });
    roundTripServer({ type: MessageType.ViewExit, seq: 5, time: 6, viewId });
  });
});

describe("Tick, Pong, Error", () => {
  test.each(boundaryInts)("Tick and Pong with %d", (n) => {
    roundTripServer({ type: MessageType.Tick, time: n });
    roundTripServer({ type: MessageType.Pong, id: n, time: n });
    expect(toHex(encodeTick(n))).toBe(toHex(encodeServerMessage({ type: MessageType.Tick, time: n })));
  });

  test.each(unicodeStrings)("Error with message %p", (message) => {
    roundTripServer({ type: MessageType.Error, code: CloseCode.InternalError, message });
  });

  test.each(Object.values(CloseCode))("Error with code %d", (code) => {
    roundTripServer({ type: MessageType.Error, code, message: "x" });
  });
});

describe("snapshot frames", () => {
  const hashes = [new Uint8Array(0), Uint8Array.of(1), patternBytes(32, 1), patternBytes(64, 2)];

  test.each(boundaryInts)("SnapshotRequest, UploadRequest, Divergence, SnapshotVote and SnapshotUpload with seq %d", (n) => {
    roundTripServer({ type: MessageType.SnapshotRequest, seq: n, time: 2 ** 53 - 1 - n });
    roundTripServer({ type: MessageType.UploadRequest, seq: n });
    roundTripServer({ type: MessageType.Divergence, seq: n, hash: patternBytes(32, n & 0xff), split: false });
    roundTripServer({ type: MessageType.Divergence, seq: n, hash: new Uint8Array(0), split: true });
    roundTripClient({ type: MessageType.SnapshotVote, seq: n, hash: patternBytes(32, n & 0xff) });
    roundTripClient({ type: MessageType.SnapshotUpload, seq: n, hash: patternBytes(32), snapshot: patternBytes(n % 300) });
  });

  test.each(hashes.map((h) => [h.length, h] as const))("hash of %d bytes in SnapshotVote, SnapshotUpload and Divergence", (_n, hash) => {
    roundTripClient({ type: MessageType.SnapshotVote, seq: 7, hash });
    roundTripClient({ type: MessageType.SnapshotUpload, seq: 7, hash, snapshot: patternBytes(10) });
    roundTripServer({ type: MessageType.Divergence, seq: 7, hash, split: false });
  });

  test("Divergence ends with split: 0 for a majority, 1 for a tie with an empty hash", () => {
    expect(toHex(roundTripServer({ type: MessageType.Divergence, seq: 7, hash: Uint8Array.of(0xab), split: false }))).toBe("02 4a 07 01 ab 00");
    expect(toHex(roundTripServer({ type: MessageType.Divergence, seq: 7, hash: new Uint8Array(0), split: true }))).toBe("02 4a 07 00 01");
  });

  test("Divergence without split encodes as split 0, which the decoder sets", () => {
    const plain: DivergenceMessage = { type: MessageType.Divergence, seq: 7, hash: Uint8Array.of(0xab) };
    const frame = encodeServerMessage(plain);
    expect(toHex(frame)).toBe(toHex(encodeServerMessage({ ...plain, split: false })));
    expect(decodeServerMessage(frame)).toEqual({ ...plain, split: false });
  });

  test("a SnapshotRequest frame is the entry's body after the header, with no payload", () => {
    expect(toHex(roundTripServer({ type: MessageType.SnapshotRequest, seq: 1, time: 0 }))).toBe("02 48 01 00");
  });

  test("SnapshotUpload with snapshots of every size class a frame holds", () => {
    for (const size of [0, 127, 128, 16384, DEFAULT_LIMITS.maxFrameBytes - 64]) {
      const snapshot = patternBytes(size, size & 0xff);
      const hash = patternBytes(32, 3);
      const frame = encodeClientMessage({ type: MessageType.SnapshotUpload, seq: 42, hash, snapshot });
      const decoded = decodeClientMessage(frame);
      if (decoded.type !== MessageType.SnapshotUpload) throw new Error("expected a SnapshotUpload");
      expect([decoded.seq, toHex(decoded.hash)]).toEqual([42, toHex(hash)]);
      expect(sameBytes(decoded.snapshot, snapshot)).toBe(true);
      // Byte fields are views into the frame: upload data is not copied on decode.
      expect(decoded.snapshot.buffer).toBe(frame.buffer);
    }
  });

  test("Divergence and SnapshotVote hashes are views into the frame", () => {
    const vote = encodeClientMessage({ type: MessageType.SnapshotVote, seq: 1, hash: patternBytes(32) });
    const decodedVote = decodeClientMessage(vote);
    if (decodedVote.type !== MessageType.SnapshotVote) throw new Error("expected a SnapshotVote");
    expect(decodedVote.hash.buffer).toBe(vote.buffer);
    const divergence = encodeServerMessage({ type: MessageType.Divergence, seq: 1, hash: patternBytes(32) });
    const decodedDivergence = decodeServerMessage(divergence);
    if (decodedDivergence.type !== MessageType.Divergence) throw new Error("expected a Divergence");
    expect(decodedDivergence.hash.buffer).toBe(divergence.buffer);
  });
});

describe("Sync", () => {
  const entries: readonly StreamEntry[] = [
    { type: MessageType.ViewJoin, seq: 1, time: 0, viewId: "first", viewData: patternBytes(10) },
    { type: MessageType.Relay, seq: 2, time: 127, payload: new Uint8Array(0) },
    { type: MessageType.Relay, seq: 3, time: 128, payload: patternBytes(16384) },
    { type: MessageType.ViewJoin, seq: 4, time: 16384, viewId: "😀", viewData: new Uint8Array(0) },
    { type: MessageType.ViewExit, seq: 5, time: 2 ** 32, viewId: "first" },
    { type: MessageType.Relay, seq: 6, time: 2 ** 53 - 1, payload: Uint8Array.of(0) },
    { type: MessageType.SnapshotRequest, seq: 7, time: 2 ** 53 - 1 },
  ];

  function sync(overrides: Partial<Omit<SyncMessage, "type">> = {}): SyncMessage {
    return {
      type: MessageType.Sync,
      sessionId: "sess",
      viewId: "view",
      time: 0,
      seq: 0,
      snapshot: new Uint8Array(0),
      persisted: new Uint8Array(0),
      auth: new Uint8Array(0),
      resumed: false,
      entries: [],
      ...overrides,
    };
  }

  test("empty session", () => {
    roundTripServer(sync());
  });

  test("with all four entry kinds", () => {
    roundTripServer(sync({ time: 2 ** 53 - 1, seq: 7, entries }));
  });

  test("with SnapshotRequest entries first, last, adjacent and alone", () => {
    const request = (seq: number, time: number): StreamEntry => ({ type: MessageType.SnapshotRequest, seq, time });
    roundTripServer(sync({ seq: 1, entries: [request(1, 0)] }));
    roundTripServer(sync({ time: 10, seq: 3, entries: [request(1, 0), request(2, 0), { type: MessageType.Relay, seq: 3, time: 10, payload: patternBytes(3) }] }));
    // After a stored snapshot: entries start right after the snapshot's seq, not at 1.
    roundTripServer(sync({ time: 500, seq: 1002, snapshot: patternBytes(1000), entries: [{ type: MessageType.ViewExit, seq: 1001, time: 400, viewId: "v" }, request(1002, 500)] }));
  });

  test.each(boundaryInts)("time and seq %d", (n) => {
    roundTripServer(sync({ time: n, seq: n }));
  });

  test("with snapshot, persisted and auth fields of every size class", () => {
    roundTripServer(sync({ snapshot: patternBytes(127), persisted: patternBytes(128), auth: patternBytes(16384) }));
  });

  test("with a large snapshot and many entries", () => {
    const many: StreamEntry[] = [];
    for (let i = 0; i < 5000; i++) {
      many.push(
        i % 100 === 99
          ? { type: MessageType.SnapshotRequest, seq: i + 1, time: i * 50 }
          : i % 3 === 0
            ? { type: MessageType.Relay, seq: i + 1, time: i * 50, payload: patternBytes(i % 200, i) }
            : i % 3 === 1
              ? { type: MessageType.ViewJoin, seq: i + 1, time: i * 50, viewId: `v${i}`, viewData: patternBytes(i % 7) }
              : { type: MessageType.ViewExit, seq: i + 1, time: i * 50, viewId: `v${i - 1}` },
      );
    }
    const snapshot = patternBytes(4 * 1024 * 1024, 3);
    const msg = sync({ time: 250_000, seq: 5000, snapshot, entries: many });
    const decoded = decodeServerMessage(encodeServerMessage(msg));
    if (decoded.type !== MessageType.Sync) throw new Error("expected a Sync");
    expect(sameBytes(decoded.snapshot, snapshot)).toBe(true);
    expect(decoded.entries).toEqual(many);
    expect({ ...decoded, snapshot: null, entries: null }).toEqual({ ...msg, snapshot: null, entries: null });
  });

  test.each(unicodeStrings)("sessionId and viewId %p", (s) => {
    roundTripServer(sync({ sessionId: s, viewId: s }));
  });

  test("flags is the byte between auth and the entry count: 0, or 1 when resumed", () => {
    const flagsAt = (msg: SyncMessage): number => {
      const frame = encodeServerMessage(msg);
      return frame[frame.length - encodeEntries(msg.entries).length - 1]!;
    };
    expect(flagsAt(sync({ auth: patternBytes(200), entries: entries.slice(0, 2), seq: 2 }))).toBe(0);
    expect(flagsAt(sync({ auth: patternBytes(200), entries: entries.slice(0, 2), seq: 2, resumed: true }))).toBe(1);
  });

  test("resumed, with entries after the resumeSeq, with none, and with auth", () => {
    roundTripServer(sync({ resumed: true, time: 2 ** 53 - 1, seq: 7, entries: entries.slice(3) }));
    roundTripServer(sync({ resumed: true, time: 10, seq: 300 }));
    roundTripServer(sync({ resumed: true, seq: 1, auth: patternBytes(300), entries: [{ type: MessageType.SnapshotRequest, seq: 1, time: 0 }] }));
  });

  test("without resumed encodes as not resumed, which the decoder sets", () => {
    const { resumed: _omitted, ...plain } = sync({ seq: 7, entries });
    const frame = encodeServerMessage(plain);
    expect(toHex(frame)).toBe(toHex(encodeServerMessage(sync({ seq: 7, entries, resumed: false }))));
    expect(decodeServerMessage(frame)).toEqual({ ...plain, resumed: false });
  });
});

describe("frames from other sources", () => {
  test("decodes Node Buffers (what ws delivers)", () => {
    for (const msg of sampleClientMessages) expect(decodeClientMessage(Buffer.from(encodeClientMessage(msg)))).toEqual(msg);
    for (const msg of sampleServerMessages) expect(decodeServerMessage(Buffer.from(encodeServerMessage(msg)))).toEqual(msg);
  });

  test("decodes a frame that is a view at an offset into a larger buffer", () => {
    for (const msg of sampleServerMessages) {
      const frame = encodeServerMessage(msg);
      const backing = new Uint8Array(frame.length + 7).fill(0xee);
      backing.set(frame, 3);
      expect(decodeServerMessage(backing.subarray(3, 3 + frame.length))).toEqual(msg);
    }
  });
});

describe("encoders reject values the wire cannot carry", () => {
  test.each([-1, 1.5, 2 ** 53, NaN, Infinity])("seq/time/id %p throws a RangeError", (bad) => {
    expect(() => encodeRelay(bad, 0, new Uint8Array(0))).toThrow(RangeError);
    expect(() => encodeRelay(0, bad, new Uint8Array(0))).toThrow(RangeError);
    expect(() => encodeTick(bad)).toThrow(RangeError);
    expect(() => encodeServerMessage({ type: MessageType.Tick, time: bad })).toThrow(RangeError);
    expect(() => encodeServerMessage({ type: MessageType.Pong, id: bad, time: 0 })).toThrow(RangeError);
    expect(() => encodeServerMessage({ type: MessageType.ViewExit, seq: bad, time: 0, viewId: "v" })).toThrow(RangeError);
    expect(() => encodeClientMessage({ type: MessageType.Ping, id: bad })).toThrow(RangeError);
    expect(() => encodeClientMessage(join({ tps: bad }))).toThrow(RangeError);
    expect(() => encodeServerMessage({ type: MessageType.SnapshotRequest, seq: bad, time: 0 })).toThrow(RangeError);
    expect(() => encodeServerMessage({ type: MessageType.SnapshotRequest, seq: 1, time: bad })).toThrow(RangeError);
    expect(() => encodeServerMessage({ type: MessageType.UploadRequest, seq: bad })).toThrow(RangeError);
    expect(() => encodeServerMessage({ type: MessageType.Divergence, seq: bad, hash: new Uint8Array(32) })).toThrow(RangeError);
    expect(() => encodeClientMessage({ type: MessageType.SnapshotVote, seq: bad, hash: new Uint8Array(32) })).toThrow(RangeError);
    expect(() => encodeClientMessage({ type: MessageType.SnapshotUpload, seq: bad, hash: new Uint8Array(32), snapshot: new Uint8Array(1) })).toThrow(RangeError);
    expect(() => encodeEntries([{ type: MessageType.SnapshotRequest, seq: bad, time: 0 }])).toThrow(RangeError);
    expect(() => encodeClientMessage(join({ resumeSeq: bad }))).toThrow(RangeError);
  });

  test("a resumed Sync with a snapshot or persisted data, and a split Divergence with a hash, throw a RangeError", () => {
    const sync: SyncMessage = {
      type: MessageType.Sync,
      sessionId: "s",
      viewId: "v",
      time: 0,
      seq: 0,
      snapshot: new Uint8Array(0),
      persisted: new Uint8Array(0),
      auth: new Uint8Array(0),
      resumed: true,
      entries: [],
    };
    expect(() => encodeServerMessage({ ...sync, snapshot: Uint8Array.of(1) })).toThrow(/resumed Sync/);
    expect(() => encodeServerMessage({ ...sync, persisted: Uint8Array.of(1) })).toThrow(RangeError);
    expect(() => encodeServerMessage({ type: MessageType.Divergence, seq: 1, hash: Uint8Array.of(1), split: true })).toThrow(/split Divergence/);
    expect(() => encodeServerMessage({ type: MessageType.Divergence, seq: 1, hash: Uint8Array.of(1), split: true })).toThrow(RangeError);
  });
});
