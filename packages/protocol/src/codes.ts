/**
 * Numeric codes shared by every Lockstep client and reflector. They are part of the wire format:
 * never renumber a code, only add new ones.
 */

/**
 * Version byte at the start of every frame. A peer rejects frames of any other version. Version 2
 * added Join `resumeSeq`, Sync `flags` (resumed) and Divergence `split` (PROTOCOL.md §12).
 */
export const PROTOCOL_VERSION = 2;

/**
 * Frame types. Client-to-reflector frames use 0x01–0x3f, reflector-to-client frames 0x40–0x7f.
 * The six stream entry types (`Relay`, `ViewJoin`, `ViewExit`, `SnapshotRequest`, `Persisted`, `PersistData`) carry a sequence number and a time;
 * they also appear, without their version byte, inside a `Sync` frame.
 */
export const MessageType = {
  /** Client asks to join a session. */
  Join: 0x01,
  /** Client submits an (opaque, later encrypted) payload to be ordered and relayed. */
  Send: 0x02,
  /** Client leaves the session cleanly. */
  Leave: 0x03,
  /** Client asks for the reflector's session time (answered by `Pong`). */
  Ping: 0x04,
  /** Client's keyed hash of its state right after a `SnapshotRequest` entry. */
  SnapshotVote: 0x05,
  /** The elected client's encrypted snapshot for a `SnapshotRequest` entry. */
  SnapshotUpload: 0x06,
  /** The elected client's encrypted persisted data for a slot, to store durably (§13). */
  PersistUpload: 0x07,
  /** Client asks for the latest persisted data of a slot, delivered to everyone as a `PersistData` entry (§13). */
  PersistLoad: 0x08,
  /** One chunk of the elected client's encrypted snapshot (§11): uploads travel in bounded chunks. */
  SnapshotChunk: 0x09,
  /** One chunk of the elected uploader's encrypted persisted data for a slot (§13.3). */
  PersistChunk: 0x0a,
  /** Client submits several payloads in one frame, relayed as consecutive entries in order (a burst of publishes). */
  SendBatch: 0x0b,
  /** Reflector answers a join with the session's state so far. */
  Sync: 0x41,
  /** An ordered, time-stamped message from some client. */
  Relay: 0x42,
  /** An ordered, time-stamped view-join. */
  ViewJoin: 0x43,
  /** An ordered, time-stamped view-exit. */
  ViewExit: 0x44,
  /** The session's time advanced with no message (sent while idle, `tps` per second). */
  Tick: 0x45,
  /** Answer to `Ping`. */
  Pong: 0x46,
  /** A fatal error; the reflector closes the socket with the same code right after. */
  Error: 0x47,
  /** A stream entry: every synced client snapshots its state right after it and votes. */
  SnapshotRequest: 0x48,
  /** Reflector asks this client (elected among the majority) to upload its snapshot. */
  UploadRequest: 0x49,
  /** Votes for a snapshot differed: `hash` is the majority's, replicas with another hash diverged (or, if `split`, there was no majority). */
  Divergence: 0x4a,
  /** Answer to `PersistUpload`, sent once the data is durable (or why it was not stored). */
  PersistAck: 0x4b,
  /** A stream entry: persisted data of a slot up to some seq is durable. */
  Persisted: 0x4c,
  /** A stream entry: the latest persisted data of a slot, answering a `PersistLoad`. */
  PersistData: 0x4d,
  /** This reflector node does not own the session: `url` is the node that does (a cluster, §17). Closed with `Redirect` right after. */
  Redirect: 0x4e,
} as const;

/** A frame type code. */
export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];

/**
 * WebSocket close codes (and `Error` frame codes) used by Lockstep, all in the 4000 range that
 * RFC 6455 leaves to applications. `PROTOCOL.md` says what a client should do for each.
 */
export const CloseCode = {
  /** The frame could not be decoded: truncated, unknown type, bad UTF-8, trailing bytes. Do not retry as is. */
  ProtocolError: 4000,
  /** The frame's version byte is not one this peer speaks. Upgrade the client. */
  VersionMismatch: 4001,
  /** The join was invalid: malformed ids, bad tps, or a second join on one socket. */
  BadJoin: 4002,
  /** A session frame arrived before the join completed. */
  NotJoined: 4003,
  /** A frame or payload exceeded the reflector's size limit. Nothing of it was relayed. */
  TooLarge: 4004,
  /** The client sent faster than the reflector's rate limit allows. Reconnect and slow down. */
  RateLimited: 4005,
  /** A newer connection joined the session with this viewId (the same client rejoining) and replaced this one. */
  DuplicateView: 4006,
  /** The reflector is shutting down. Reconnect (with backoff) to another or the restarted one. */
  ServerShutdown: 4007,
  /** The client failed to prove it may enter the session. */
  AuthFailed: 4008,
  /** The client sent nothing (not even a WebSocket pong) for too long. */
  Timeout: 4009,
  /** An unexpected reflector fault; the session is unharmed, reconnecting is safe. */
  InternalError: 4010,
  /** The client did not read what the reflector sent it fast enough (its unsent data passed the cap). Reconnect. */
  SlowReader: 4011,
  /** The session's stored data is damaged beyond recovery. Permanent: do not retry; the operator must restore it. */
  SessionDamaged: 4012,
  /** The reflector requires an app token and this one is missing, malformed, badly signed or not for this app or session. */
  TokenRejected: 4013,
  /** The app token has expired (or is not valid yet). Get a fresh one from the app's backend and reconnect. */
  TokenExpired: 4014,
  /** The session's log reached its cap because no snapshot succeeded; sends are refused for now. Reconnect with backoff. */
  LogFull: 4015,
  /** The reflector is at a configured capacity (sessions created per minute, connections). Reconnect with backoff. */
  Overloaded: 4016,
  /** This node does not own the session; the `Redirect` frame before the close named the node that does. Reconnect there at once (§17). */
  Redirect: 4017,
  /** The session moved off this node (a newer owner fenced it, or it lost its lease). Reconnect at once through any node (§17). */
  SessionMoved: 4018,
} as const;

/** A Lockstep close/error code. */
export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

const closeCodeNames: ReadonlyMap<number, string> = new Map(
  Object.entries(CloseCode).map(([name, code]) => [code, name]),
);

/** The symbolic name of a close code (`"TooLarge"` for 4004), or `undefined` for unknown codes. */
export function closeCodeName(code: number): string | undefined {
  return closeCodeNames.get(code);
}

/** How a reflector answered a `PersistUpload` (the `outcome` of `PersistAck`). */
export const PersistOutcome = {
  /** Stored durably as a new version of the slot. */
  Stored: 0,
  /** Identical (same keyed hash) to the slot's latest version: nothing new to store; it is durable. */
  Unchanged: 1,
  /** This session already stored newer data (a higher seq) in the slot; the upload was dropped. */
  Superseded: 2,
  /** The slot access token does not match the one the slot was created with (another password). */
  Denied: 3,
  /** The reflector could not store it; the data is not durable. Retry later. */
  Failed: 4,
} as const;

/** A `PersistAck` outcome. */
export type PersistOutcomeValue = (typeof PersistOutcome)[keyof typeof PersistOutcome];
