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
  type ClientMessage,
  type JoinMessage,
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
    expect(roundTripClient(join()).length).toBe(2 + 5 + 5 + 5 + 1 + 1 + 1);
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
});

describe("Send", () => {
  test("empty payload", () => {
    expect(toHex(roundTripClient({ type: MessageType.Send, payload: new Uint8Array(0) }))).toBe("01 02 00");
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
    expect(toHex(roundTripClient({ type: MessageType.Leave }))).toBe("01 03");
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
    roundTripServer({ type: MessageType.Divergence, seq: n, hash: patternBytes(32, n & 0xff) });
    roundTripClient({ type: MessageType.SnapshotVote, seq: n, hash: patternBytes(32, n & 0xff) });
    roundTripClient({ type: MessageType.SnapshotUpload, seq: n, hash: patternBytes(32), snapshot: patternBytes(n % 300) });
  });

  test.each(hashes.map((h) => [h.length, h] as const))("hash of %d bytes in SnapshotVote, SnapshotUpload and Divergence", (_n, hash) => {
    roundTripClient({ type: MessageType.SnapshotVote, seq: 7, hash });
    roundTripClient({ type: MessageType.SnapshotUpload, seq: 7, hash, snapshot: patternBytes(10) });
    roundTripServer({ type: MessageType.Divergence, seq: 7, hash });
  });

  test("a SnapshotRequest frame is the entry's body after the header, with no payload", () => {
    expect(toHex(roundTripServer({ type: MessageType.SnapshotRequest, seq: 1, time: 0 }))).toBe("01 48 01 00");
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
  });
});
