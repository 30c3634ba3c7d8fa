/** Wire constants: type codes, close codes, version and default limits are part of the format. */
import { CloseCode, DEFAULT_LIMITS, DEFAULT_TPS, MessageType, PROTOCOL_VERSION, closeCodeName } from "../src/index";

test("the protocol version is 1", () => {
  expect(PROTOCOL_VERSION).toBe(2);
});

test("frame type codes never change", () => {
  expect(MessageType).toEqual({
    Join: 0x01,
    Send: 0x02,
    Leave: 0x03,
    Ping: 0x04,
    SnapshotVote: 0x05,
    SnapshotUpload: 0x06,
    PersistUpload: 0x07,
    PersistLoad: 0x08,
    SnapshotChunk: 0x09,
    PersistChunk: 0x0a,
    SendBatch: 0x0b,
    Sync: 0x41,
    Relay: 0x42,
    ViewJoin: 0x43,
    ViewExit: 0x44,
    Tick: 0x45,
    Pong: 0x46,
    Error: 0x47,
    SnapshotRequest: 0x48,
    UploadRequest: 0x49,
    Divergence: 0x4a,
    PersistAck: 0x4b,
    Persisted: 0x4c,
    PersistData: 0x4d,
    Redirect: 0x4e,
  });
});

test("client types are in 0x01-0x3f, server types in 0x40-0x7f, all distinct", () => {
  const client = [MessageType.Join, MessageType.Send, MessageType.Leave, MessageType.Ping, MessageType.SnapshotVote, MessageType.SnapshotUpload, MessageType.PersistUpload, MessageType.PersistLoad, MessageType.SnapshotChunk, MessageType.PersistChunk, MessageType.SendBatch];
  const all: number[] = Object.values(MessageType);
  const server = all.filter((code) => !client.some((c) => c === code));
  for (const code of client) expect(code >= 0x01 && code <= 0x3f).toBe(true);
  for (const code of server) expect(code >= 0x40 && code <= 0x7f).toBe(true);
  expect(new Set(all).size).toBe(all.length);
});

test("close codes never change and sit in the 4000 application range", () => {
  expect(CloseCode).toEqual({
    ProtocolError: 4000,
    VersionMismatch: 4001,
    BadJoin: 4002,
    NotJoined: 4003,
    TooLarge: 4004,
    RateLimited: 4005,
    DuplicateView: 4006,
    ServerShutdown: 4007,
    AuthFailed: 4008,
    Timeout: 4009,
    InternalError: 4010,
    SlowReader: 4011,
    SessionDamaged: 4012,
    TokenRejected: 4013,
    TokenExpired: 4014,
    LogFull: 4015,
    Overloaded: 4016,
    Redirect: 4017,
    SessionMoved: 4018,
  });
});

test("closeCodeName maps codes to names and unknown codes to undefined", () => {
  for (const [name, code] of Object.entries(CloseCode)) expect(closeCodeName(code)).toBe(name);
  expect(closeCodeName(1000)).toBeUndefined();
  expect(closeCodeName(4999)).toBeUndefined();
});

test("default limits are the documented values and frozen", () => {
  expect(DEFAULT_LIMITS).toEqual({
    maxFrameBytes: 1048576,
    maxSnapshotBytes: 67108864,
    maxPersistBytes: 16777216,
    maxPayloadBytes: 262144,
    maxViewDataBytes: 16384,
    maxAuthBytes: 4096,
    maxIdLength: 64,
    maxChunkBytes: 524288,
    maxMessagesPerSecond: 1000,
    messageBurst: 2000,
    maxBytesPerSecond: 2097152,
    byteBurst: 8388608,
    maxPingsPerSecond: 10,
    pingBurst: 20,
    minTps: 1,
    maxTps: 60,
  });
  expect(Object.isFrozen(DEFAULT_LIMITS)).toBe(true);
  // Snapshots are larger than any frame: they travel in chunks, and a chunk with its header fits a frame.
  expect(DEFAULT_LIMITS.maxSnapshotBytes).toBeGreaterThan(DEFAULT_LIMITS.maxFrameBytes);
  expect(DEFAULT_LIMITS.maxChunkBytes + 1024).toBeLessThanOrEqual(DEFAULT_LIMITS.maxFrameBytes);
  expect(DEFAULT_TPS).toBe(20);
  expect(DEFAULT_TPS >= DEFAULT_LIMITS.minTps && DEFAULT_TPS <= DEFAULT_LIMITS.maxTps).toBe(true);
});
