/*
 * A node's handle on a cluster whose authority is PostgreSQL (tables in pg-cluster-sql.ts).
 *
 * Ownership: each session has one head row naming its owner node and an epoch. A node takes a
 * session by raising the epoch (claim, or create at epoch 1) and caches that epoch; every write is
 * one statement that matches the head row only at that epoch (and, for appends, at the last seq it
 * continues), so a node that was paused, partitioned or replaced can never commit again once
 * another node claimed the session: its statement matches nothing and it gets a FencedError.
 *
 * Liveness: see pg-lease.ts. A node that loses its lease forgets every epoch at once (all its
 * fenced writes then fail without touching the database) and keeps trying to come back.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import type { StreamEntry } from "@lockstep/protocol";
import type pg from "pg";
import { checkAppend, checkMeta, checkSessionId, checkSnapshot } from "../storage/checks";
import { StorageError } from "../storage/errors";
import { KeyedQueue } from "../storage/keyed-queue";
import { decodeMeta, encodeMeta, encodeSegment, encodeSnapshot, isCount, type StoredSessionMeta, type StoredSnapshot } from "../storage/records";
import type { StoredSession } from "../storage/session-store";
import { GroupCommit, type GroupCommitStats, type PendingAppend } from "./pg-commit";
import { headOf, readStored, type HeadRow } from "./pg-cluster-read";
import { checkOptions, type ClusterStoreOptions, type Settings } from "./pg-cluster-options";
import { ClusterSql, createSchema } from "./pg-cluster-sql";
import { describeTarget, errorText, hint, inTransaction, loadPg } from "../storage/pg-driver";
import { Lease } from "./pg-lease";
import { FencedError, type Claim, type ClusterStore, type NodeInfo } from "./types";

export { DEFAULT_CLUSTER_CONNECT_TIMEOUT_MS, DEFAULT_LEASE_MS, DEFAULT_RENEW_MS } from "./pg-cluster-options";
export type { ClusterEventSink, ClusterStoreOptions } from "./pg-cluster-options";
export { DEFAULT_CLUSTER_PREFIX, LOCK_CLASS } from "./pg-cluster-sql";
export type { GroupCommitStats } from "./pg-commit";

/** How often a claim looks again while the owner's lease looks stale. */
const CLAIM_POLL_MS = 200;

/** What this node knows of a session it holds. Mutated only by writes that succeeded. */
interface Held {
  readonly epoch: number;
  lastSeq: number;
  lastTime: number;
  snapshotSeq: number;
}

/** One look at a session's head row during a claim. */
type ClaimStep =
  | Exclude<Claim, { kind: "owned" }>
  | { readonly kind: "won"; readonly claim: Claim & { kind: "owned" }; readonly head: HeadRow }
  | { readonly kind: "stale"; readonly owner: NodeInfo }
  | { readonly kind: "retry" };

/**
 * Opens this node's handle on the cluster: creates the tables if missing, registers the node
 * (random id, `nodeUrl`, a fresh lease) with its advisory lock on a dedicated connection, and
 * starts renewing the lease.
 *
 * @example
 * ```ts
 * const cluster = await createClusterStore({ connectionString: "postgres://lockstep@db:5432/lockstep", nodeUrl: "ws://10.0.0.5:8787/" });
 * const claim = await cluster.claim(sessionId);
 * if (claim.kind === "elsewhere") redirect(claim.owner.url);
 * else if (claim.kind === "owned") await cluster.appendEntries(sessionId, [{ type: MessageType.Relay, seq: claim.stored.lastSeq + 1, time, payload }]);
 * ```
 * @throws {StorageError} (as a rejection) for invalid options, or if the server cannot be reached
 *   or the tables cannot be created.
 */
export async function createClusterStore(options: ClusterStoreOptions): Promise<PgClusterStore> {
  const settings = checkOptions(options);
  const driver = await loadPg();
  const nodeId = randomUUID();
  const target = describeTarget(options.connectionString);
  const base: pg.ClientConfig = {
    ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : {}),
    connectionTimeoutMillis: settings.connectTimeout,
    keepAlive: true,
  };
  // Named, so an operator (and the tests) can tell a node's connections apart in pg_stat_activity.
  const pool = new driver.Pool({ ...base, application_name: `lockstep ${nodeId}` });
  // An idle connection that breaks is reported as a pool "error", which would crash the process
  // if nobody listened; the pool already discards it and the next query opens a new one.
  pool.on("error", () => undefined);
  const sql = new ClusterSql(settings.prefix);
  try {
    await createSchema(pool, sql, target);
    const store = new PgClusterStore({ ...settings, pool, sql, target, node: { nodeId, url: settings.nodeUrl } }, (s) => {
      return new Lease({
        pg: driver,
        clientConfig: { ...base, application_name: `lockstep ${nodeId} lease` },
        pool,
        sql,
        nodeId,
        url: settings.nodeUrl,
        leaseMs: settings.leaseMs,
        renewMs: settings.renewMs,
        onLost: (reason) => s.leaseLost(reason),
        report: settings.report,
      });
    });
    await store.open();
    return store;
  } catch (cause) {
    await pool.end().catch(() => undefined);
    if (cause instanceof StorageError) throw cause;
    throw new StorageError(`cannot open the cluster store (tables "${settings.prefix}*" at ${target}): ${errorText(cause)}; ${hint(cause)}`, { cause });
  }
}

interface StoreParts extends Settings {
  readonly pool: pg.Pool;
  readonly sql: ClusterSql;
  readonly target: string;
  readonly node: NodeInfo;
}

/**
 * The PostgreSQL {@link ClusterStore}. Created by {@link createClusterStore}; exported for its
 * testing aids ({@link PgClusterStore.commitStats}, {@link PgClusterStore.suspendRenewals}).
 */
export class PgClusterStore implements ClusterStore {
  readonly node: NodeInfo;
  readonly #o: StoreParts;
  readonly #pool: pg.Pool;
  readonly #sql: ClusterSql;
  readonly #lease: Lease;
  readonly #commit: GroupCommit;
  readonly #held = new Map<string, Held>();
  /** Appends of one session one at a time (callers await theirs; this is a second guard). */
  readonly #appends = new KeyedQueue();
  /** Snapshot, time and activity writes of one session one at a time, apart from its appends. */
  readonly #maintenance = new KeyedQueue();
  readonly #listeners: ((reason: string) => void)[] = [];
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  /** @internal Use {@link createClusterStore}. */
  constructor(parts: StoreParts, lease: (store: PgClusterStore) => Lease) {
    this.node = parts.node;
    this.#o = parts;
    this.#pool = parts.pool;
    this.#sql = parts.sql;
    this.#lease = lease(this);
    this.#commit = new GroupCommit((batch) => this.#writeBatch(batch));
  }

  /** @internal Registers the node and starts renewing. */
  async open(): Promise<void> {
    await this.#lease.open();
  }

  get alive(): boolean {
    return this.#closing === undefined && this.#lease.alive;
  }

  /** This node's advisory lock id (`objid` in pg_locks), for operators and tests. */
  get lockId(): number {
    return this.#lease.lockId;
  }

  /** Counters of the group commit: how many statements carried how many appends. */
  get commitStats(): GroupCommitStats {
    return this.#commit.stats;
  }

  /**
   * Testing aid standing in for a paused process (SIGSTOP): stops sending lease renewals until the
   * returned function is called. The lease is still checked, so it is lost on time.
   */
  suspendRenewals(): () => void {
    return this.#lease.suspend();
  }

  onLeaseLost(listener: (reason: string) => void): void {
    this.#listeners.push(listener);
  }

  /** @internal Called by the lease, synchronously, once per loss. */
  leaseLost(reason: string): void {
    // At once, before any listener runs: from here every fenced write fails without a statement.
    this.#held.clear();
    this.#o.report("cluster.lease.lost", { nodeId: this.node.nodeId, reason });
    const listeners = [...this.#listeners];
    // Deferred: a loss can be noticed inside the `alive` getter, and listeners may call back in.
    queueMicrotask(() => {
      for (const listener of listeners) {
        try {
          listener(reason);
        } catch (error) {
          this.#o.report("cluster.lease.listener_failed", { nodeId: this.node.nodeId, error: errorText(error) });
        }
      }
    });
  }

  async claim(sessionId: string): Promise<Claim> {
    const id = checkSessionId(sessionId);
    return this.#track("claim", id, async () => {
      const deadline = performance.now() + this.#o.leaseMs + 1000;
      for (;;) {
        const generation = this.#lease.generation;
        this.#requireAlive(id);
        const step = await inTransaction(this.#pool, "BEGIN", (client) => this.#claimStep(client, id));
        if (step.kind === "won") {
          // Claimed under a lease that has since been lost: the epoch must not be used (it may
          // already be fenced by a newer claim elsewhere).
          if (generation !== this.#lease.generation || !this.alive) throw new FencedError(id, "this node lost its lease while claiming it");
          const { head } = step;
          // last_time is the last entry's time even when a snapshot trimmed the entry: appends never go below it.
          this.#held.set(id, { epoch: head.epoch, lastSeq: head.lastSeq, lastTime: head.lastTime, snapshotSeq: head.snapshotSeq });
          return step.claim;
        }
        if (step.kind !== "stale" && step.kind !== "retry") return step;
        // The owner missed a renewal: it may be dead. Wait its lease out rather than send clients to it.
        if (performance.now() + CLAIM_POLL_MS > deadline || this.#closing !== undefined) {
          if (step.kind === "stale") return { kind: "elsewhere", owner: step.owner };
          throw new StorageError(`claim(${id}): the session's owner kept changing for ${this.#o.leaseMs + 1000} ms; retry`);
        }
        await delay(CLAIM_POLL_MS);
      }
    });
  }

  async #claimStep(client: pg.PoolClient, id: string): Promise<ClaimStep> {
    const me = this.node.nodeId;
    const row = (await client.query<Record<string, unknown>>(this.#sql.claimInspect, [id])).rows[0];
    if (row === undefined) return { kind: "absent" };
    const owner = row["owner"];
    if (typeof owner === "string" && owner !== me && row["owner_alive"] === true) {
      const info: NodeInfo = { nodeId: owner, url: String(row["url"]) };
      const left = Number(row["lease_left_ms"]);
      return left < this.#o.leaseMs - 2 * this.#o.renewMs ? { kind: "stale", owner: info } : { kind: "elsewhere", owner: info };
    }
    const won = (await client.query<Record<string, unknown>>(this.#sql.claim, [id, me])).rows[0];
    // The owner came back between the two statements: look again.
    if (won === undefined) return { kind: "retry" };
    const head = headOf(this.#sql, id, won);
    return { kind: "won", head, claim: { kind: "owned", epoch: head.epoch, stored: await readStored(client, this.#sql, id, head) } };
  }

  async create(meta: StoredSessionMeta, persisted: Uint8Array = new Uint8Array(0)): Promise<boolean> {
    const id = checkSessionId(meta.sessionId);
    checkMeta(meta);
    return this.#track("create", id, async () => {
      const generation = this.#lease.generation;
      this.#requireAlive(id);
      const result = await this.#pool.query(this.#sql.create, [id, this.node.nodeId, this.#wallClock(), encodeMeta(meta), persisted]);
      if (result.rowCount !== 1) return false;
      // Created under a lease lost meanwhile: the session exists, but writes must claim it first.
      if (generation === this.#lease.generation) this.#held.set(id, { epoch: 1, lastSeq: 0, lastTime: 0, snapshotSeq: 0 });
      return true;
    });
  }

  async appendEntries(sessionId: string, entries: readonly StreamEntry[]): Promise<void> {
    const id = checkSessionId(sessionId);
    if (entries.length === 0) return;
    return this.#track("append to", id, () =>
      this.#appends.run(id, async () => {
        const held = this.#holding(id);
        checkAppend(id, held.lastSeq, held.lastTime, entries);
        const last = entries[entries.length - 1] as StreamEntry;
        const stored = await this.#commit.submit({ id, epoch: held.epoch, prevSeq: held.lastSeq, newSeq: last.seq, newTime: last.time, segment: encodeSegment(entries) });
        if (!stored) throw this.#fenced(id, held);
        held.lastSeq = last.seq;
        held.lastTime = last.time;
      }),
    );
  }

  /** One statement for a whole batch; see ClusterSql.appendBatch. */
  async #writeBatch(batch: readonly PendingAppend[]): Promise<ReadonlySet<string>> {
    // The lease may have been lost while the batch waited for the flush before it.
    if (!this.alive) return new Set();
    const result = await this.#pool.query<{ session_id: string }>(this.#sql.appendBatch, [
      batch.map((a) => a.id),
      batch.map((a) => a.epoch),
      batch.map((a) => a.prevSeq),
      batch.map((a) => a.newSeq),
      batch.map((a) => a.newTime),
      batch.map((a) => a.segment),
      this.node.nodeId,
    ]);
    return new Set(result.rows.map((row) => row.session_id));
  }

  async putSnapshot(sessionId: string, snapshot: StoredSnapshot): Promise<void> {
    const id = checkSessionId(sessionId);
    checkSnapshot(id, snapshot);
    return this.#track("store the snapshot of", id, () =>
      this.#maintenance.run(id, async () => {
        const held = this.#holding(id);
        if (snapshot.seq > held.lastSeq) {
          throw new StorageError(`putSnapshot(${id}): snapshot at seq ${snapshot.seq} is ahead of the stored log (last seq ${held.lastSeq}); store the entries first`);
        }
        if (snapshot.seq < held.snapshotSeq) {
          throw new StorageError(`putSnapshot(${id}): snapshot at seq ${snapshot.seq} is older than the stored one (seq ${held.snapshotSeq}); keep only newer snapshots`);
        }
        const row = (await this.#pool.query<{ matched: number; stored: number }>(this.#sql.putSnapshot, [id, held.epoch, snapshot.seq, encodeSnapshot(snapshot), this.node.nodeId])).rows[0];
        if (row?.matched !== 1) throw this.#fenced(id, held);
        if (row.stored !== 1) throw new StorageError(`putSnapshot(${id}): a newer snapshot than seq ${snapshot.seq} is stored already; keep only newer snapshots`);
        held.snapshotSeq = Math.max(held.snapshotSeq, snapshot.seq);
      }),
    );
  }

  async putTime(sessionId: string, time: number, options: { readonly exact?: boolean } = {}): Promise<void> {
    const id = checkSessionId(sessionId);
    if (!isCount(time)) throw new StorageError(`putTime(${id}): time must be a non-negative integer (session ms), got ${String(time)}`);
    return this.#track("store the time of", id, () =>
      this.#maintenance.run(id, async () => {
        const held = this.#holding(id);
        const result = await this.#pool.query(this.#sql.putTime, [id, time, options.exact === true, held.epoch, this.node.nodeId]);
        if (result.rowCount !== 1) throw this.#fenced(id, held);
      }),
    );
  }

  async touch(sessionId: string): Promise<void> {
    const id = checkSessionId(sessionId);
    return this.#track("touch", id, () =>
      this.#maintenance.run(id, async () => {
        const held = this.#holding(id);
        const result = await this.#pool.query(this.#sql.touch, [id, this.#wallClock(), held.epoch, this.node.nodeId]);
        if (result.rowCount !== 1) throw this.#fenced(id, held);
      }),
    );
  }

  async load(sessionId: string): Promise<StoredSession | undefined> {
    const id = checkSessionId(sessionId);
    // One snapshot of the database for every read: appends and trims may go on meanwhile.
    return this.#track("load", id, () =>
      inTransaction(this.#pool, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", async (client) => {
        const row = (await client.query<Record<string, unknown>>(this.#sql.head, [id])).rows[0];
        return row === undefined ? undefined : readStored(client, this.#sql, id, headOf(this.#sql, id, row));
      }),
    );
  }

  async release(sessionId: string): Promise<void> {
    const id = checkSessionId(sessionId);
    const held = this.#held.get(id);
    this.#held.delete(id);
    if (held === undefined) return;
    // After the session's writes in flight, so none of them lands after the release.
    return this.#track("release", id, () =>
      this.#appends.run(id, () =>
        this.#maintenance.run(id, async () => {
          await this.#pool.query(this.#sql.release, [id, held.epoch, this.node.nodeId]);
        }),
      ),
    );
  }

  async collectGarbage(keep: ReadonlySet<string> = new Set(), deleted?: (sessionId: string) => Promise<void>): Promise<number> {
    return this.#track("collect", "(retention pass)", async () => {
      const cutoff = this.#wallClock() - this.#o.retentionMs;
      const result = await this.#pool.query<{ session_id: string }>(this.#sql.collectGarbage, [cutoff, [...keep]]);
      for (const row of result.rows) this.#held.delete(row.session_id);
      for (const row of result.rows) await deleted?.(row.session_id);
      return result.rows.length;
    });
  }

  async meta(sessionId: string): Promise<StoredSessionMeta | undefined> {
    const id = checkSessionId(sessionId);
    return this.#track("read", id, async () => {
      const bytes = (await this.#pool.query<{ meta: Buffer }>(this.#sql.meta, [id])).rows[0]?.meta;
      return bytes === undefined ? undefined : decodeMeta(`${this.#sql.sessions}/${id}`, new Uint8Array(bytes), id);
    });
  }

  async sessionIds(): Promise<string[]> {
    return this.#track("list", "(all)", async () => (await this.#pool.query<{ session_id: string }>(this.#sql.sessionIds)).rows.map((row) => row.session_id));
  }

  async liveNodes(): Promise<NodeInfo[]> {
    return this.#track("list the live nodes of", "(all)", async () => {
      const rows = (await this.#pool.query<{ node_id: string; url: string }>(this.#sql.liveNodes)).rows;
      return rows.map((row) => ({ nodeId: row.node_id, url: row.url }));
    });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const report = (step: string) => (cause: unknown) => this.#o.report("cluster.close_failed", { nodeId: this.node.nodeId, step, error: errorText(cause) });
      await Promise.allSettled([...this.#inFlight]);
      await this.#lease.quiesce();
      const held = [...this.#held];
      this.#held.clear();
      if (held.length > 0) {
        await this.#pool.query(this.#sql.releaseAll, [held.map(([id]) => id), held.map(([, h]) => h.epoch), this.node.nodeId]).catch(report("release sessions"));
      }
      // Without its row the node is not alive to anyone, even before its lock goes.
      await this.#pool.query(this.#sql.deleteNode, [this.node.nodeId]).catch(report("delete the node row"));
      await this.#lease.close();
      await this.#pool.end().catch(report("end the pool"));
    })();
    return this.#closing;
  }

  #requireAlive(id: string): void {
    if (!this.#lease.alive) throw new FencedError(id, "this node lost its lease");
  }

  /** The session's cached epoch and tail, if this node may write it now; else a FencedError. */
  #holding(id: string): Held {
    this.#requireAlive(id);
    const held = this.#held.get(id);
    if (held === undefined) throw new FencedError(id, "this node does not hold it (claim it first)");
    return held;
  }

  /** Forgets the session (unless it was claimed again meanwhile) and says why the write failed. */
  #fenced(id: string, held: Held): FencedError {
    if (this.#held.get(id) === held) this.#held.delete(id);
    return new FencedError(id, "its head row moved on: another node claimed it, or it was released or deleted");
  }

  #wallClock(): number {
    const now = Math.floor(this.#o.now());
    return Number.isSafeInteger(now) && now > 0 ? now : 0;
  }

  #track<T>(verb: string, id: string, operation: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) {
      return Promise.reject(new StorageError(`the cluster store of node ${this.node.nodeId} was closed; open a new one with createClusterStore()`, { key: id }));
    }
    const promise = operation().catch((cause: unknown) => {
      if (cause instanceof StorageError) throw cause;
      const where = `PostgreSQL (cluster tables "${this.#sql.prefix}*" at ${this.#o.target})`;
      throw new StorageError(`cannot ${verb} session ${id} in ${where}: ${errorText(cause)}; ${hint(cause)}`, { cause, key: id });
    });
    this.#inFlight.add(promise);
    const forget = (): void => void this.#inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }
}
