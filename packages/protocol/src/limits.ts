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
  /** Sustained `Send` frames per second per connection before it is closed with `RateLimited`. */
  readonly maxMessagesPerSecond: number;
  /** Burst allowance on top of the sustained rate. */
  readonly messageBurst: number;
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
  maxAuthBytes: 1024,
  maxIdLength: 64,
  maxMessagesPerSecond: 1000,
  messageBurst: 2000,
  minTps: 1,
  maxTps: 60,
});

/** Ticks per second a session gets when the joiner does not ask for another rate. */
export const DEFAULT_TPS = 20;
