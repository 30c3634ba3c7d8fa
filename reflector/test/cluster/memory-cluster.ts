// An in-process stand-in for the cluster's PostgreSQL: the ownership rules of ClusterStore (claim,
// create, fenced writes, release, leases) over plain maps, so routing, fencing and hand-over can be
// tested in one jest process without a database. The real store is tested against PostgreSQL.
import type { StreamEntry } from "@lockstep/protocol";
import { FencedError, type Claim, type ClusterStore, type NodeInfo } from "../../src/cluster/types";
import { replayLiveViews } from "../../src/storage/live-views";
import type { StoredSession, StoredSessionMeta, StoredSnapshot } from "../../src/storage/index";

interface Head {
  owner: string | undefined;
  epoch: number;
  meta: StoredSessionMeta;
  persisted: Uint8Array;
  snapshot: StoredSnapshot | undefined;
  entries: StreamEntry[];
  /** Epoch of the owner that committed each entry (same index as `entries`). */
  epochs: number[];
  clock: number;
}

/** The shared state: what PostgreSQL holds for a cluster. */
export class MemoryCluster {
  readonly heads = new Map<string, Head>();
  readonly nodes = new Map<string, { url: string; alive: boolean }>();
  #next = 1;

  /** A node's handle, registered alive. */
  join(url: string): MemoryClusterStore {
    const nodeId = `node-${this.#next++}`;
    this.nodes.set(nodeId, { url, alive: true });
    return new MemoryClusterStore(this, { nodeId, url });
  }

  isAlive(nodeId: string | undefined): boolean {
    return nodeId !== undefined && this.nodes.get(nodeId)?.alive === true;
  }
}

/** One node's {@link ClusterStore} on a {@link MemoryCluster}. */
export class MemoryClusterStore implements ClusterStore {
  readonly #cluster: MemoryCluster;
  readonly #epochs = new Map<string, number>();
  readonly #lost: Array<(reason: string) => void> = [];
  #node: NodeInfo;
  #closed = false;

  constructor(cluster: MemoryCluster, node: NodeInfo) {
    this.#cluster = cluster;
    this.#node = node;
  }

  get node(): NodeInfo {
    return this.#node;
  }

  /** Whether its (simulated) lease holds. */
  get alive(): boolean {
    return !this.#closed && this.#cluster.isAlive(this.#node.nodeId);
  }

  /** The URL it advertises (known only once its reflector listens). */
  setUrl(url: string): void {
    this.#node = { ...this.#node, url };
    const row = this.#cluster.nodes.get(this.#node.nodeId);
    if (row) row.url = url;
  }

  /** The lease runs out (a pause, a cut-off): others may take its sessions; it is told. */
  loseLease(reason = "test"): void {
    const row = this.#cluster.nodes.get(this.#node.nodeId);
    if (row) row.alive = false;
    this.#epochs.clear();
    for (const listener of this.#lost) listener(reason);
  }

  /** The lease runs out without the node noticing (it is paused): only its writes find out. */
  freeze(): void {
    const row = this.#cluster.nodes.get(this.#node.nodeId);
    if (row) row.alive = false;
  }

  async claim(sessionId: string): Promise<Claim> {
    const head = this.#cluster.heads.get(sessionId);
    if (head === undefined) return { kind: "absent" };
    if (head.owner !== undefined && head.owner !== this.#node.nodeId && this.#cluster.isAlive(head.owner)) {
      return { kind: "elsewhere", owner: { nodeId: head.owner, url: this.#cluster.nodes.get(head.owner)!.url } };
    }
    head.owner = this.#node.nodeId;
    head.epoch++;
    this.#epochs.set(sessionId, head.epoch);
    return { kind: "owned", epoch: head.epoch, stored: this.#read(sessionId, head) };
  }

  async create(meta: StoredSessionMeta, persisted: Uint8Array): Promise<boolean> {
    if (this.#cluster.heads.has(meta.sessionId)) return false;
    this.#cluster.heads.set(meta.sessionId, { owner: this.#node.nodeId, epoch: 1, meta, persisted, snapshot: undefined, entries: [], epochs: [], clock: 0 });
    this.#epochs.set(meta.sessionId, 1);
    return true;
  }

  async meta(sessionId: string): Promise<StoredSessionMeta | undefined> {
    return this.#cluster.heads.get(sessionId)?.meta;
  }

  async release(sessionId: string): Promise<void> {
    const head = this.#owned(sessionId, false);
    if (head !== undefined) head.owner = undefined;
    this.#epochs.delete(sessionId);
  }

  async liveNodes(): Promise<NodeInfo[]> {
    return [...this.#cluster.nodes].filter(([, n]) => n.alive).map(([nodeId, n]) => ({ nodeId, url: n.url }));
  }

  onLeaseLost(listener: (reason: string) => void): void {
    this.#lost.push(listener);
  }

  async close(): Promise<void> {
    for (const id of [...this.#epochs.keys()]) await this.release(id);
    this.#closed = true;
    this.#cluster.nodes.delete(this.#node.nodeId);
  }

  async appendEntries(sessionId: string, entries: readonly StreamEntry[]): Promise<void> {
    await Promise.resolve();
    const head = this.#owned(sessionId, true)!;
    const last = head.entries[head.entries.length - 1]?.seq ?? head.snapshot?.seq ?? 0;
    if (entries[0]!.seq !== last + 1) throw new Error(`append to ${sessionId} at ${entries[0]!.seq}, stored up to ${last}`);
    for (const e of entries) {
      head.entries.push(e);
      head.epochs.push(head.epoch);
    }
  }

  async putSnapshot(sessionId: string, snapshot: StoredSnapshot): Promise<void> {
    const head = this.#owned(sessionId, true)!;
    if (head.snapshot !== undefined && head.snapshot.seq > snapshot.seq) return;
    head.snapshot = snapshot;
  }

  async putTime(sessionId: string, time: number, options?: { readonly exact?: boolean }): Promise<void> {
    const head = this.#owned(sessionId, true)!;
    head.clock = options?.exact ? time : Math.max(head.clock, time);
  }

  async touch(sessionId: string): Promise<void> {
    this.#owned(sessionId, true);
  }

  async load(sessionId: string): Promise<StoredSession | undefined> {
    const head = this.#cluster.heads.get(sessionId);
    return head && this.#read(sessionId, head);
  }

  async collectGarbage(): Promise<number> {
    return 0;
  }

  async sessionIds(): Promise<string[]> {
    return [...this.#cluster.heads.keys()].sort();
  }

  /** The head if this node still holds the session at its epoch; else (`fence`) a FencedError. */
  #owned(sessionId: string, fence: boolean): Head | undefined {
    const head = this.#cluster.heads.get(sessionId);
    const epoch = this.#epochs.get(sessionId);
    const ok = head !== undefined && epoch !== undefined && head.epoch === epoch && this.alive;
    if (!ok && fence) throw new FencedError(sessionId, `its epoch is ${head?.epoch}, this node holds ${epoch ?? "none"}`);
    return ok ? head : undefined;
  }

  #read(sessionId: string, head: Head): StoredSession {
    const after = head.snapshot?.seq ?? 0;
    const entries = head.entries.filter((e) => e.seq > after);
    const lastEntry = head.entries[head.entries.length - 1];
    const lastSeq = lastEntry?.seq ?? after;
    const lastTime = lastEntry?.time ?? head.snapshot?.time ?? 0;
    return {
      meta: head.meta,
      snapshot: head.snapshot,
      entries,
      lastSeq,
      lastTime,
      timeWatermark: Math.max(head.clock, lastTime),
      liveViews: replayLiveViews(head.snapshot, entries),
      persisted: head.persisted,
    };
  }
}
