/**
 * Shared test support for the protocol package: sample messages, pattern bytes, ProtocolError
 * assertions. Hex fixtures and the seeded PRNG come from @lockstep/test-support.
 */
import { CloseCode, MessageType, ProtocolError, type ClientMessage, type CloseCodeValue, type ServerMessage, type StreamEntry } from "../src/index";

/** `n` bytes of a repeating, position-dependent pattern (cheap large fields that catch offset bugs). */
export function patternBytes(n: number, salt = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + salt) & 0xff;
  return out;
}

/** Runs `fn` and returns what it threw; fails the test if it returned normally. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw, it returned normally");
}

/** Asserts that `fn` throws a {@link ProtocolError} with `code`, and returns it. */
export function expectProtocolError(fn: () => unknown, code: CloseCodeValue = CloseCode.ProtocolError): ProtocolError {
  const error = thrown(fn);
  if (!(error instanceof ProtocolError)) {
    throw new Error(`expected a ProtocolError, got ${String(error)}`, { cause: error });
  }
  expect(error.code).toBe(code);
  return error;
}

const text = new TextEncoder();

/**
 * One valid message of each client frame type (several of some), for truncation, fuzz and golden
 * tests. Fields a decoder always sets (Join `resumeSeq`, Sync `resumed`, Divergence `split`) are
 * given, so a decoded sample equals its original.
 */
export const sampleClientMessages: readonly ClientMessage[] = [
  {
    type: MessageType.Join,
    sessionId: "s1",
    persistentId: "p1",
    viewId: "v1",
    tps: 20,
    auth: new Uint8Array(0),
    viewData: text.encode("{}"),
    resumeSeq: 0,
  },
  {
    type: MessageType.Join,
    sessionId: "ab-_Z9".repeat(7),
    persistentId: "A".repeat(64),
    viewId: "view_1",
    tps: 60,
    auth: patternBytes(40, 1),
    viewData: patternBytes(300, 2),
    resumeSeq: 0,
  },
  {
    type: MessageType.Join,
    sessionId: "s1",
    persistentId: "p1",
    viewId: "v1",
    tps: 20,
    auth: patternBytes(40, 3),
    viewData: new Uint8Array(0),
    resumeSeq: 16384,
  },
  { type: MessageType.Send, payload: text.encode("hello") },
  { type: MessageType.Send, payload: new Uint8Array(0) },
  { type: MessageType.Send, payload: patternBytes(200, 3) },
  { type: MessageType.Leave },
  { type: MessageType.Ping, id: 0 },
  { type: MessageType.Ping, id: 300 },
  { type: MessageType.SnapshotVote, seq: 4, hash: patternBytes(32, 4) },
  { type: MessageType.SnapshotVote, seq: 300, hash: patternBytes(64, 5) },
  { type: MessageType.SnapshotUpload, seq: 4, hash: patternBytes(32, 4), snapshot: patternBytes(300, 6) },
  { type: MessageType.SnapshotUpload, seq: 128, hash: Uint8Array.of(7), snapshot: new Uint8Array(0) },
  { type: MessageType.SnapshotChunk, seq: 4, hash: patternBytes(32, 4), total: 1000, offset: 0, data: patternBytes(300, 7) },
  { type: MessageType.SnapshotChunk, seq: 300, hash: Uint8Array.of(9), total: 128, offset: 127, data: Uint8Array.of(1) },
  {
    type: MessageType.PersistChunk,
    slot: "AbC-_".repeat(8),
    token: patternBytes(32, 8),
    seq: 17,
    hash: patternBytes(32, 9),
    size: 5000,
    total: 4000,
    offset: 3000,
    data: patternBytes(1000, 10),
  },
];

/** One valid message of each server frame type (several of some). */
export const sampleServerMessages: readonly ServerMessage[] = [
  {
    type: MessageType.Sync,
    sessionId: "s1",
    viewId: "v2",
    time: 1000,
    seq: 3,
    snapshot: new Uint8Array(0),
    persisted: Uint8Array.of(1, 2),
    auth: new Uint8Array(0),
    resumed: false,
    entries: [
      { type: MessageType.Relay, seq: 1, time: 0, payload: text.encode("hi") },
      { type: MessageType.ViewJoin, seq: 2, time: 50, viewId: "v1", viewData: new Uint8Array(0) },
      { type: MessageType.ViewExit, seq: 3, time: 1000, viewId: "v1" },
    ],
  },
  {
    type: MessageType.Sync,
    sessionId: "s",
    viewId: "v",
    time: 0,
    seq: 0,
    snapshot: new Uint8Array(0),
    persisted: new Uint8Array(0),
    auth: new Uint8Array(0),
    resumed: false,
    entries: [],
  },
  { type: MessageType.Relay, seq: 300, time: 1000, payload: text.encode("hello") },
  { type: MessageType.Relay, seq: 1, time: 0, payload: new Uint8Array(0) },
  { type: MessageType.ViewJoin, seq: 2, time: 50, viewId: "v1", viewData: text.encode('{"name":"ann"}') },
  { type: MessageType.ViewExit, seq: 3, time: 1000, viewId: "v1" },
  { type: MessageType.Tick, time: 16384 },
  { type: MessageType.Pong, id: 7, time: 123456 },
  { type: MessageType.Error, code: CloseCode.TooLarge, message: "too big" },
  { type: MessageType.SnapshotRequest, seq: 4, time: 1200 },
  { type: MessageType.SnapshotRequest, seq: 2 ** 53 - 1, time: 16384 },
  { type: MessageType.UploadRequest, seq: 4 },
  { type: MessageType.Divergence, seq: 4, hash: patternBytes(32, 7), split: false },
  { type: MessageType.Divergence, seq: 300, hash: new Uint8Array(0), split: true },
  {
    type: MessageType.Sync,
    sessionId: "s1",
    viewId: "v1",
    time: 2500,
    seq: 8,
    snapshot: new Uint8Array(0),
    persisted: new Uint8Array(0),
    auth: Uint8Array.of(9),
    resumed: true,
    entries: [
      { type: MessageType.Relay, seq: 7, time: 2400, payload: text.encode("back") },
      { type: MessageType.ViewExit, seq: 8, time: 2500, viewId: "v3" },
    ],
  },
  {
    type: MessageType.Sync,
    sessionId: "s1",
    viewId: "v3",
    time: 2000,
    seq: 6,
    snapshot: patternBytes(90, 8),
    persisted: new Uint8Array(0),
    auth: Uint8Array.of(9),
    resumed: false,
    entries: [
      { type: MessageType.Relay, seq: 5, time: 1500, payload: text.encode("yo") },
      { type: MessageType.SnapshotRequest, seq: 6, time: 2000 },
    ],
  },
];

/** Stream entry lists (as `encodeEntries` stores them), for round-trip, truncation and fuzz tests. */
export const sampleEntryLists: readonly (readonly StreamEntry[])[] = [
  [],
  [{ type: MessageType.SnapshotRequest, seq: 1, time: 0 }],
  [
    { type: MessageType.ViewJoin, seq: 1, time: 0, viewId: "v1", viewData: text.encode("{}") },
    { type: MessageType.Relay, seq: 2, time: 50, payload: text.encode("hello") },
    { type: MessageType.SnapshotRequest, seq: 3, time: 50 },
    { type: MessageType.Relay, seq: 4, time: 16384, payload: new Uint8Array(0) },
    { type: MessageType.ViewExit, seq: 5, time: 2 ** 32, viewId: "v1" },
  ],
  [
    { type: MessageType.SnapshotRequest, seq: 300, time: 1000 },
    { type: MessageType.SnapshotRequest, seq: 301, time: 1000 },
    { type: MessageType.Relay, seq: 302, time: 1001, payload: patternBytes(200, 9) },
  ],
];

/** A readable label for a sample, for `test.each` titles. */
export function label(msg: ClientMessage | ServerMessage, index: number): string {
  const name = Object.entries(MessageType).find(([, code]) => code === msg.type)?.[0] ?? "?";
  return `${index}:${name}`;
}
