/** Size and rate limits. The reflector enforces them at the socket edge; clients check before sending. */
export interface Limits {
  /** Largest WebSocket frame a client may send to the reflector, in bytes. */
  readonly maxFrameBytes: number;
  /** Largest snapshot a client may upload (`SnapshotUpload` is the one frame allowed past maxFrameBytes). */
  readonly maxSnapshotBytes: number;
  /** Largest persisted-data blob a client may upload (`PersistUpload` may also exceed maxFrameBytes). */
  readonly maxPersistBytes: number;
  /** Largest payload of one `Send`, in bytes. */
  readonly maxPayloadBytes: number;
  /** Largest `viewData` in a `Join`, in bytes. */
  readonly maxViewDataBytes: number;
  /** Largest opaque `auth` field in a `Join`, in bytes. */
  readonly maxAuthBytes: number;
  /** Longest id (sessionId, persistentId, viewId), in characters. */
  readonly maxIdLength: number;
  /** Largest data of one `SnapshotChunk` or `PersistChunk`, in bytes (uploads travel in chunks of at most this). */
  readonly maxChunkBytes: number;
  /** Sustained frames (of every type) per second per connection before it is closed with `RateLimited`. */
  readonly maxMessagesPerSecond: number;
  /** Burst allowance of frames on top of the sustained rate. */
  readonly messageBurst: number;
  /**
   * Sustained bytes per second per connection, counting every frame but upload chunks (which are
   * bounded by `maxSnapshotBytes`/`maxPersistBytes` per upload and come only from the elected uploader).
   */
  readonly maxBytesPerSecond: number;
  /** Burst allowance of bytes on top of the sustained byte rate. */
  readonly byteBurst: number;
  /**
   * Sustained Ping frames per second per connection (the reflector answers each itself; a client
   * estimating its clock offset needs a few), within the frame rate above.
   */
  readonly maxPingsPerSecond: number;
  /** Burst allowance of Ping frames. */
  readonly pingBurst: number;
  /** Lowest and highest ticks per second a session may ask for. */
  readonly minTps: number;
  readonly maxTps: number;
}

/** The defaults every Lockstep reflector starts with. */
export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxFrameBytes: 1024 * 1024,
  maxSnapshotBytes: 64 * 1024 * 1024,
  maxPersistBytes: 16 * 1024 * 1024,
  maxPayloadBytes: 256 * 1024,
  maxViewDataBytes: 16 * 1024,
  maxAuthBytes: 4096,
  maxIdLength: 64,
  maxChunkBytes: 512 * 1024,
  maxMessagesPerSecond: 1000,
  messageBurst: 2000,
  maxBytesPerSecond: 2 * 1024 * 1024,
  byteBurst: 8 * 1024 * 1024,
  maxPingsPerSecond: 10,
  pingBurst: 20,
  minTps: 1,
  maxTps: 60,
});

/** Ticks per second a session gets when the joiner does not ask for another rate. */
export const DEFAULT_TPS = 20;

/**
 * The largest Join frame `limits` allow: three ids, the tps, a full `auth`, a full `viewData` and
 * the largest `resumeSeq`. A reflector accepts no more than this (plus WebSocket framing) from a
 * socket before it is admitted.
 */
export function maxJoinFrameBytes(limits: Limits): number {
  // 2 header bytes; an id is a string of maxIdLength ASCII characters (a 2-byte length covers 16383);
  // tps and resumeSeq are varuints (≤ 8 bytes each); auth and viewData are byte fields with up to 3-byte lengths.
  return 2 + 3 * (2 + limits.maxIdLength) + 8 + (3 + limits.maxAuthBytes) + (3 + limits.maxViewDataBytes) + 8;
}
