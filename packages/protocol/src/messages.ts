import type { MessageType } from "./codes";

/** Client → reflector: join a session. The first joiner of an unknown sessionId creates it. */
export interface JoinMessage {
  readonly type: typeof MessageType.Join;
  /** Code-dependent session id (base64url SHA-256). */
  readonly sessionId: string;
  /** Code-independent id of appId + name (base64url SHA-256); keys persisted data. */
  readonly persistentId: string;
  /** This client's view id, random per client; unique among the session's live views. */
  readonly viewId: string;
  /** Ticks per second the client asks for; the session's first joiner decides. */
  readonly tps: number;
  /** Opaque proof that the client may enter the session (empty when the reflector asks for none). */
  readonly auth: Uint8Array;
  /** Opaque view data, delivered to every replica with this client's view-join. */
  readonly viewData: Uint8Array;
  /**
   * 0: a fresh join. N > 0: this viewId's replica applied every entry up to seq N; the reflector
   * continues the view with a resumed {@link SyncMessage} if it can (PROTOCOL.md §5, "Resuming").
   * Optional when encoding (absent is 0); `decodeClientMessage` always sets it.
   */
  readonly resumeSeq?: number;
}

/** Client → reflector: an opaque payload to order, time-stamp and relay to every client of the session. */
export interface SendMessage {
  readonly type: typeof MessageType.Send;
  readonly payload: Uint8Array;
}

/** Client → reflector: several payloads (1..MAX_SEND_BATCH), each relayed like a `Send`'s, in this order. */
export interface SendBatchMessage {
  readonly type: typeof MessageType.SendBatch;
  readonly payloads: readonly Uint8Array[];
}

/** Client → reflector: leave the session now (the socket may close right after). */
export interface LeaveMessage {
  readonly type: typeof MessageType.Leave;
}

/** Client → reflector: ask for the session time; answered by a {@link PongMessage} with the same id. */
export interface PingMessage {
  readonly type: typeof MessageType.Ping;
  readonly id: number;
}

/** Client → reflector: the keyed hash of this client's state right after entry `seq` (a SnapshotRequest). */
export interface SnapshotVoteMessage {
  readonly type: typeof MessageType.SnapshotVote;
  readonly seq: number;
  readonly hash: Uint8Array;
}

/** Client → reflector: the encrypted snapshot for entry `seq`, with the hash this client voted. */
export interface SnapshotUploadMessage {
  readonly type: typeof MessageType.SnapshotUpload;
  readonly seq: number;
  readonly hash: Uint8Array;
  readonly snapshot: Uint8Array;
}

/**
 * Client → reflector: encrypted persisted data for `slot`, as of the client's state right after
 * entry `seq`. The reflector stores it durably as the slot's next version and answers with
 * {@link PersistAckMessage}.
 */
export interface PersistUploadMessage {
  readonly type: typeof MessageType.PersistUpload;
  /** The persistence slot (an id: the persistentId, or a keyed slot derived from it or the appId). */
  readonly slot: string;
  /** Slot access token; the reflector keeps SHA-256 of the first one a slot saw and checks later ones against it. */
  readonly token: Uint8Array;
  /** Seq of the entry after which the data was taken; a slot never goes back to a lower seq of one session. */
  readonly seq: number;
  /** Keyed hash of the plaintext, so identical data is not stored twice. */
  readonly hash: Uint8Array;
  /** Plaintext size in bytes (for logs and listings). */
  readonly size: number;
  /** The encrypted data (an envelope). */
  readonly blob: Uint8Array;
}

/** Client → reflector: append the latest data of `slot` to the stream as a {@link PersistDataEntry}. */
export interface PersistLoadMessage {
  readonly type: typeof MessageType.PersistLoad;
  readonly slot: string;
  readonly token: Uint8Array;
  /** Seq of the entry at which the session started waiting for this slot (names the request). */
  readonly requestSeq: number;
}

/**
 * Client → reflector: one chunk of the elected client's snapshot envelope for entry `seq` (§11).
 * Chunks of one upload arrive in order: `offset` is the byte offset of `data` in the whole
 * envelope of `total` bytes; the upload is complete when `offset + data.length === total`.
 */
export interface SnapshotChunkMessage {
  readonly type: typeof MessageType.SnapshotChunk;
  readonly seq: number;
  /** The hash this client voted for `seq`. */
  readonly hash: Uint8Array;
  /** Size of the whole snapshot envelope, in bytes (≤ `maxSnapshotBytes`). */
  readonly total: number;
  readonly offset: number;
  /** Bytes `offset … offset + data.length` of the envelope (≤ `maxChunkBytes`). */
  readonly data: Uint8Array;
}

/**
 * Client → reflector: one chunk of the elected uploader's persisted data for `slot` (§13.3); the
 * fields of {@link PersistUploadMessage} plus the chunk's place in the whole envelope, as in
 * {@link SnapshotChunkMessage}.
 */
export interface PersistChunkMessage {
  readonly type: typeof MessageType.PersistChunk;
  readonly slot: string;
  readonly token: Uint8Array;
  readonly seq: number;
  readonly hash: Uint8Array;
  readonly size: number;
  /** Size of the whole envelope, in bytes (≤ `maxPersistBytes`). */
  readonly total: number;
  readonly offset: number;
  readonly data: Uint8Array;
}

/** Every frame a client may send. */
export type ClientMessage =
  | JoinMessage
  | SendMessage
  | SendBatchMessage
  | LeaveMessage
  | PingMessage
  | SnapshotVoteMessage
  | SnapshotUploadMessage
  | PersistUploadMessage
  | PersistLoadMessage
  | SnapshotChunkMessage
  | PersistChunkMessage;

/** An ordered client message: the session's `seq`-th entry, stamped with session time `time` (ms). */
export interface RelayEntry {
  readonly type: typeof MessageType.Relay;
  readonly seq: number;
  readonly time: number;
  readonly payload: Uint8Array;
}

/** An ordered view-join: `viewId` joined at this point of the stream. */
export interface ViewJoinEntry {
  readonly type: typeof MessageType.ViewJoin;
  readonly seq: number;
  readonly time: number;
  readonly viewId: string;
  readonly viewData: Uint8Array;
}

/** An ordered view-exit: `viewId` left (or was dropped) at this point of the stream. */
export interface ViewExitEntry {
  readonly type: typeof MessageType.ViewExit;
  readonly seq: number;
  readonly time: number;
  readonly viewId: string;
}

/** A snapshot point: clients that are live snapshot their state right after processing this entry and vote. */
export interface SnapshotRequestEntry {
  readonly type: typeof MessageType.SnapshotRequest;
  readonly seq: number;
  readonly time: number;
}

/** Persisted data of `slot`, taken right after entry `upTo`, is durable: replicas may forget their copy. */
export interface PersistedEntry {
  readonly type: typeof MessageType.Persisted;
  readonly seq: number;
  readonly time: number;
  readonly slot: string;
  readonly upTo: number;
  /** Plaintext size the uploader reported, in bytes. */
  readonly size: number;
  /** The upload's keyed hash, so a replica can tell whether it is the data it holds. */
  readonly hash: Uint8Array;
}

/** The latest data of `slot` (an envelope, or empty if none), answering the PersistLoad named `requestSeq`. */
export interface PersistDataEntry {
  readonly type: typeof MessageType.PersistData;
  readonly seq: number;
  readonly time: number;
  readonly slot: string;
  readonly requestSeq: number;
  readonly blob: Uint8Array;
}

/** One entry of a session's ordered stream. Sequence numbers start at 1 and have no gaps. */
export type StreamEntry = RelayEntry | ViewJoinEntry | ViewExitEntry | SnapshotRequestEntry | PersistedEntry | PersistDataEntry;

/**
 * Reflector → client: the answer to a join. The client rebuilds the session from `snapshot`
 * (empty: start from the root model's `init`) and `entries`, which run contiguously up to `seq`.
 * Everything after `seq` (starting with this client's own view-join) arrives as live frames.
 * A `resumed` Sync instead continues the client's replica: `entries` are those after the Join's
 * `resumeSeq`, and no own view-join follows.
 */
export interface SyncMessage {
  readonly type: typeof MessageType.Sync;
  readonly sessionId: string;
  /** The viewId the reflector admitted this client under. */
  readonly viewId: string;
  /** Session time now, in ms. */
  readonly time: number;
  /** Sequence number of the last entry the session had before this join (0: none yet). */
  readonly seq: number;
  /** Latest snapshot (opaque; it records the seq it was taken after), or empty. */
  readonly snapshot: Uint8Array;
  /** Persisted data fixed for this session (opaque), or empty. */
  readonly persisted: Uint8Array;
  /** Opaque session auth data (e.g. a key check token), or empty. */
  readonly auth: Uint8Array;
  /**
   * The reflector continues this client's view (its Join's `resumeSeq` was honoured): no own
   * view-join follows, `entries` run from `resumeSeq + 1` to `seq`, and `snapshot` and `persisted`
   * are empty. Optional when encoding (absent is false); `decodeServerMessage` always sets it.
   */
  readonly resumed?: boolean;
  /** Entries after the snapshot (or, when `resumed`, after the Join's `resumeSeq`), in order. */
  readonly entries: readonly StreamEntry[];
}

/** Reflector → client: session time advanced to `time` with no message. */
export interface TickMessage {
  readonly type: typeof MessageType.Tick;
  readonly time: number;
}

/** Reflector → client: answer to a {@link PingMessage}. */
export interface PongMessage {
  readonly type: typeof MessageType.Pong;
  readonly id: number;
  readonly time: number;
}

/** Reflector → client: a fatal error; the socket is closed with `code` right after. */
export interface ErrorMessage {
  readonly type: typeof MessageType.Error;
  readonly code: number;
  readonly message: string;
}

/**
 * Reflector → client: this node of a cluster does not own the session; `url` is the WebSocket URL
 * of the node that does (PROTOCOL.md §17). The socket is closed with `CloseCode.Redirect` right after.
 */
export interface RedirectMessage {
  readonly type: typeof MessageType.Redirect;
  readonly url: string;
}

/** Reflector → client: upload your snapshot for entry `seq`. */
export interface UploadRequestMessage {
  readonly type: typeof MessageType.UploadRequest;
  readonly seq: number;
}

/**
 * Reflector → client: snapshot votes for entry `seq` differed; `hash` is the majority's. A `split`
 * vote had no majority (a tie): nobody's replica is known to be wrong, and `hash` is empty.
 */
export interface DivergenceMessage {
  readonly type: typeof MessageType.Divergence;
  readonly seq: number;
  /** The majority's hash; empty when `split`. */
  readonly hash: Uint8Array;
  /**
   * The vote had no majority (a tie); a client MUST NOT conclude from it that its own replica
   * diverged. Optional when encoding (absent is false); `decodeServerMessage` always sets it.
   */
  readonly split?: boolean;
}

/** Reflector → uploader: what became of its {@link PersistUploadMessage} for `slot` at `seq`. */
export interface PersistAckMessage {
  readonly type: typeof MessageType.PersistAck;
  readonly slot: string;
  readonly seq: number;
  /** A `PersistOutcome` code. */
  readonly outcome: number;
  /** The slot's version number holding the data (0 unless Stored or Unchanged). */
  readonly version: number;
  /** Why, for Denied and Failed; empty otherwise. */
  readonly message: string;
}

/** Every frame a reflector may send. */
export type ServerMessage =
  | SyncMessage
  | StreamEntry
  | TickMessage
  | PongMessage
  | ErrorMessage
  | RedirectMessage
  | UploadRequestMessage
  | DivergenceMessage
  | PersistAckMessage;
