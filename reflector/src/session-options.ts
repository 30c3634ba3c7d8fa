import type { StreamEntry, Timers } from "@lockstep/protocol";
import type { Clock } from "./clock";
import type { Logger } from "./logger";
import type { PersistEntries } from "./outbox";
import type { SessionSnapshot, SnapshotPolicy } from "./session-snapshots";

/** Caps of one session's log (see `ReflectorCaps`). */
export interface SessionLogCaps {
  /** Bytes since the last snapshot: half asks for a snapshot, the cap refuses Sends. */
  readonly maxLogBytes: number;
  /** Bytes of the log kept in memory (with storage; without, everything is). */
  readonly maxLogMemoryBytes: number;
}

/** Options of a `Session` (`S`: the session class, which its callbacks receive). */
export interface SessionOptionsOf<S> {
  readonly sessionId: string;
  /** The public persistentId the session was created with (Joins must name the same). */
  readonly persistentId?: string;
  /** Ticks per second while the session has members. */
  readonly tps: number;
  readonly clock: Clock;
  /** Schedules ticks and snapshot timeouts. Default `realTimers`. */
  readonly timers?: Timers;
  readonly logger: Logger;
  /** Called when the last member exits (the session stays in memory until its owner drops it). */
  readonly onEmpty: (session: S) => void;
  /** What the creating client registered: SHA-256 of the access token, and the password check envelope. */
  readonly access: SessionAccess;
  /** When to take snapshots. */
  readonly snapshots: SnapshotPolicy;
  /** Log caps; default: unbounded (tests). */
  readonly caps?: SessionLogCaps;
  /** Durable storage of entries (relayed only once written) and snapshots; none: memory only. */
  readonly storage?: {
    readonly appendEntries: PersistEntries;
    /** Appends in flight at once (storage that lands writes in order); default 1. */
    readonly appendsInFlight?: number;
    /** Stores a snapshot with the views in the stream at its seq (a restart gives those that never came back their view-exit). */
    readonly putSnapshot: (snapshot: SessionSnapshot, views: readonly string[]) => Promise<void>;
    /** Stores the session's time watermark (see {@link SessionTime}). */
    readonly putTime: (time: number, exact?: boolean) => Promise<void>;
    /** The stored entries after the stored snapshot, for joiners when older entries left memory. */
    readonly readEntries: () => Promise<readonly StreamEntry[]>;
  };
  /** What a restarted reflector loaded from storage, to continue from. */
  readonly restored?: {
    readonly snapshot: SessionSnapshot | undefined;
    readonly entries: readonly StreamEntry[];
    readonly lastSeq: number;
    readonly lastTime: number;
    /** The stored time watermark: no client saw a later time. */
    readonly timeWatermark?: number;
    /** The views in the stream when the reflector stopped (joined, not exited); undefined if unknown. */
    readonly liveViews?: readonly string[];
  };
  /** How long a view whose connection dropped keeps its place before its view-exit is stamped, in ms. Default 10 s. */
  readonly viewGraceMs?: number;
  /**
   * Whether this node may still send anything for the session (a cluster node whose lease is
   * fresh). Checked before every broadcast: once false, the session is {@link Session.moved moved}
   * instead. Default: always.
   */
  readonly mayServe?: () => boolean;
  /** The session cannot go on (storage failed): its members were closed; forget it. */
  readonly onBroken?: (session: S) => void;
  /** Persisted data (opaque) the session started from, sent to joiners until the first snapshot. */
  readonly persisted?: Uint8Array;
}

/** A session's admission data, registered by the client that created it. */
export interface SessionAccess {
  readonly verifier: Uint8Array;
  readonly check: Uint8Array;
}

/** What `Session.join` did: joined, refused (the view id is live), or needs the stored log read first. */
export type JoinOutcome = "joined" | "resumed" | "taken" | "needs-history";
