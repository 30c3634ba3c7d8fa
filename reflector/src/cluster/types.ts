/*
 * What a reflector node of a cluster needs from the shared authority (PostgreSQL): its own lease,
 * the ownership of sessions (claim, create, release) and fenced writes. The registry and the core
 * program against these types; pg-cluster-store.ts implements them.
 */
import type { StreamEntry } from "@lockstep/protocol";
import { StorageError } from "../storage/errors";
import type { StoredSession } from "../storage/session-store";
import type { StoredSessionMeta, StoredSnapshot } from "../storage/records";

/** A node as the others see it. */
export interface NodeInfo {
  /** Random per process start. */
  readonly nodeId: string;
  /** The WebSocket URL clients are redirected to (`--node-url`). */
  readonly url: string;
}

/** What claiming a session found. */
export type Claim =
  /** This node owns the session now, at `epoch` (raised by the claim), with what storage holds. */
  | { readonly kind: "owned"; readonly epoch: number; readonly stored: StoredSession }
  /** No such session: create it ({@link ClusterStore.create}). */
  | { readonly kind: "absent" }
  /** A live node owns it: send the client there. */
  | { readonly kind: "elsewhere"; readonly owner: NodeInfo };

/**
 * A write was refused because another node owns the session now (its epoch moved on), or this
 * node lost its lease. Nothing of the write was stored; the session must be dropped from memory
 * and its clients sent away with `CloseCode.SessionMoved`.
 */
export class FencedError extends StorageError {
  override readonly name = "FencedError";
  readonly sessionId: string;
  constructor(sessionId: string, detail: string) {
    super(`session ${sessionId} is no longer owned by this node: ${detail}`, { key: sessionId });
    this.sessionId = sessionId;
  }
}

/** Whether `error` (or its cause chain) is a {@link FencedError}. */
export function isFenced(error: unknown): error is FencedError {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof FencedError) return true;
  }
  return false;
}

/**
 * The session storage every node writes through: the same operations as the single-node
 * `SessionStore`, each fenced on the epoch this node holds for the session (a {@link FencedError}
 * when another node took it over meanwhile).
 */
export interface SessionStorage {
  appendEntries(sessionId: string, entries: readonly StreamEntry[]): Promise<void>;
  putSnapshot(sessionId: string, snapshot: StoredSnapshot): Promise<void>;
  putTime(sessionId: string, time: number, options?: { readonly exact?: boolean }): Promise<void>;
  touch(sessionId: string): Promise<void>;
  /** Reads what is stored (no ownership change): a joiner's history of an owned session. */
  load(sessionId: string): Promise<StoredSession | undefined>;
  /**
   * Deletes sessions inactive past retention that no live node owns, except `keep`; `deleted` is
   * told each id (to remove what else the session stored, e.g. Data blobs).
   */
  collectGarbage(keep?: ReadonlySet<string>, deleted?: (sessionId: string) => Promise<void>): Promise<number>;
  sessionIds(): Promise<string[]>;
}

/** A node's handle on the cluster's shared state. */
export interface ClusterStore extends SessionStorage {
  /** This node. */
  readonly node: NodeInfo;
  /**
   * Whether this node may serve sessions: its lease is fresh by its own clock (the last renewal
   * was sent less than the lease's TTL minus one renewal interval ago) and its lock connection is
   * up. Checked before anything is sent after a pause.
   */
  readonly alive: boolean;
  /**
   * Takes the session if nobody alive owns it (raising its epoch), or says who does. Waits (at
   * most one lease TTL) while the owner's lease looks stale, rather than sending clients to a
   * node that may be dead.
   */
  claim(sessionId: string): Promise<Claim>;
  /** The session's admission data (no ownership needed; the Data API checks tokens against it), or `undefined` if it is not stored. */
  meta(sessionId: string): Promise<StoredSessionMeta | undefined>;
  /** Creates the session owned by this node at epoch 1; false if it already exists (claim it instead). */
  create(meta: StoredSessionMeta, persisted: Uint8Array): Promise<boolean>;
  /** Gives the session up (owner NULL) if this node still holds it; forgets its epoch either way. */
  release(sessionId: string): Promise<void>;
  /** Live nodes (this one included), for handing sessions over on drain. */
  liveNodes(): Promise<NodeInfo[]>;
  /** Called once each time the lease is lost (renewals failing past the TTL, lock connection gone). */
  onLeaseLost(listener: (reason: string) => void): void;
  /** Releases every session, stops renewing, deletes the node row, unlocks, ends connections. */
  close(): Promise<void>;
}
