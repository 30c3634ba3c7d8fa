/*
 * A node's lease: its row in the nodes table, renewed every renewMs on a dedicated connection that
 * also holds the node's advisory lock. Other nodes consider this one alive while the row's
 * lease_until lies ahead by the database's clock AND the lock is held; a killed process drops its
 * connection, so its lock (and with it every session it owned) is free at once.
 *
 * This node's own view, `alive`, is stricter: by its monotonic clock, the last successful renewal
 * was SENT less than leaseMs - renewMs ago (the database stamped lease_until no earlier than that),
 * and the lock connection is up. So it stops serving at least one renewal interval before anyone
 * else may take its sessions, whatever the two clocks say about wall time.
 */
import { performance } from "node:perf_hooks";
import type pg from "pg";
import { StorageError } from "../storage/errors";
import { LOCK_CLASS, LOCK_IDS_PER_PREFIX, type ClusterSql } from "./pg-cluster-sql";
import { errorText, hint } from "../storage/pg-driver";

/** What the lease needs from its store. */
export interface LeaseOptions {
  readonly pg: typeof pg;
  /** For the dedicated lock connection. */
  readonly clientConfig: pg.ClientConfig;
  /** For statements that need not go through the lock connection (pruning old node rows). */
  readonly pool: pg.Pool;
  readonly sql: ClusterSql;
  readonly nodeId: string;
  readonly url: string;
  readonly leaseMs: number;
  readonly renewMs: number;
  /** Called synchronously each time the lease is lost, once per loss. */
  readonly onLost: (reason: string) => void;
  readonly report: (event: string, fields: Readonly<Record<string, unknown>>) => void;
}

/** How many renewal ticks between two prunes of long-expired node rows (about once a minute). */
const PRUNE_EVERY_MS = 60_000;
/** Lock ids tried in one registration before giving up (others are held by stale or foreign sessions). */
const MAX_LOCK_TRIES = 64;

/** A node's lease and lock; see the top of this file. */
export class Lease {
  readonly #o: LeaseOptions;
  /** The lock connection, while it is up and holds the lock. */
  #client: pg.Client | undefined;
  #lockId = 0;
  /** performance.now() after which this node must consider its lease gone. */
  #deadline = 0;
  /** A loss was reported and no renewal has succeeded since. */
  #lost = false;
  #renewing: { readonly since: number } | undefined;
  #connecting: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #suspended = false;
  #stopped = false;
  #ticks = 0;
  #failedReconnects = 0;
  /** Counts losses, so work that began under an older lease can tell. */
  #generation = 0;

  constructor(options: LeaseOptions) {
    this.#o = options;
  }

  /** Connects, locks and registers the node, then starts renewing. */
  async open(): Promise<void> {
    await this.#connect();
    this.#timer = setInterval(() => this.#tick(), this.#o.renewMs);
    // Renewing must never keep a process alive on its own (e.g. after a forgotten close()).
    this.#timer.unref();
  }

  get lockId(): number {
    return this.#lockId;
  }

  /** Bumped on every loss: a claim that started under an older generation must not cache its epoch. */
  get generation(): number {
    return this.#generation;
  }

  /** Whether this node may serve sessions now (see the top of this file). */
  get alive(): boolean {
    if (this.#stopped || this.#client === undefined || this.#lost) return false;
    if (performance.now() >= this.#deadline) {
      this.#lose(`no lease renewal succeeded within ${this.#o.leaseMs - this.#o.renewMs} ms`);
      return false;
    }
    return true;
  }

  /**
   * Testing aid, standing in for a paused process (SIGSTOP): renewals are not sent until the
   * returned function is called. The deadline is still checked, so the lease is lost on time.
   */
  suspend(): () => void {
    this.#suspended = true;
    return () => {
      this.#suspended = false;
      this.#tick();
    };
  }

  /** Stops renewing. The lock stays held until {@link close}. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops renewing and waits for a reconnection in progress, so the node row stays as it is. */
  async quiesce(): Promise<void> {
    this.stop();
    await this.#connecting?.catch(() => undefined);
  }

  /** Stops renewing, unlocks and ends the lock connection (the node row is the store's to delete). */
  async close(): Promise<void> {
    await this.quiesce();
    const client = this.#client;
    this.#client = undefined;
    if (client === undefined) return;
    try {
      await client.query(this.#o.sql.unlock, [this.#lockId]);
    } catch {
      // Ending the connection below frees the lock anyway.
    }
    await client.end().catch(() => undefined);
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#ticks++;
    if (this.#ticks % Math.max(1, Math.round(PRUNE_EVERY_MS / this.#o.renewMs)) === 0) this.#prune();
    const client = this.#client;
    if (client === undefined) {
      this.#connecting ??= this.#connect()
        .then(
          () => void (this.#failedReconnects = 0),
          (cause: unknown) => {
            // Tried every tick while the database is down: report the first failure, then one in
            // a hundred, not a line per tick.
            if (this.#failedReconnects++ % 100 === 0) {
              this.#o.report("cluster.lease.reconnect_failed", { nodeId: this.#o.nodeId, attempts: this.#failedReconnects, error: errorText(cause), hint: hint(cause) });
            }
          },
        )
        .finally(() => (this.#connecting = undefined));
      return;
    }
    const now = performance.now();
    if (now >= this.#deadline) this.#lose(`no lease renewal succeeded within ${this.#o.leaseMs - this.#o.renewMs} ms`);
    if (this.#suspended) return;
    if (this.#renewing !== undefined) {
      // A renewal that hangs past a whole lease means a connection that is dead but not closed
      // (a network cut): drop it, so the next tick starts over on a new one.
      if (now - this.#renewing.since > this.#o.leaseMs) this.#drop(client, `a lease renewal hung for ${Math.round(now - this.#renewing.since)} ms`);
      return;
    }
    this.#renew(client, now);
  }

  #renew(client: pg.Client, sentAt: number): void {
    this.#renewing = { since: sentAt };
    client.query(this.#o.sql.renew, [this.#o.nodeId, this.#o.leaseMs]).then(
      (result) => {
        this.#renewing = undefined;
        if (this.#client !== client) return;
        if (result.rowCount !== 1) {
          // Another node pruned our row (we were gone for an hour): register again from scratch.
          this.#drop(client, "its node row was deleted");
          return;
        }
        this.#renewed(sentAt);
      },
      (cause: unknown) => {
        this.#renewing = undefined;
        if (this.#client !== client) return;
        // A broken connection also emits "error"/"end" (see #connect); anything else is reported,
        // and the deadline decides when the lease is lost.
        this.#o.report("cluster.lease.renewal_failed", { nodeId: this.#o.nodeId, error: errorText(cause), hint: hint(cause) });
      },
    );
  }

  #renewed(sentAt: number): void {
    this.#deadline = sentAt + this.#o.leaseMs - this.#o.renewMs;
    if (this.#lost && performance.now() < this.#deadline) {
      this.#lost = false;
      this.#o.report("cluster.lease.regained", { nodeId: this.#o.nodeId, lockId: this.#lockId });
    }
  }

  #lose(reason: string): void {
    if (this.#lost || this.#stopped) return;
    this.#lost = true;
    this.#generation++;
    this.#o.onLost(reason);
  }

  /** Forgets a lock connection that failed (its lock is gone, or about to be) and ends it. */
  #drop(client: pg.Client, reason: string): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#lose(reason);
    void client.end().catch(() => undefined);
  }

  /** Opens a lock connection, takes a lock and (re-)registers the node row with it. */
  async #connect(): Promise<void> {
    const client = new this.#o.pg.Client(this.#o.clientConfig);
    let failed: string | undefined;
    const onFailure = (reason: string): void => {
      failed ??= reason;
      this.#drop(client, reason);
    };
    client.on("error", (error: Error) => onFailure(`its lock connection failed: ${errorText(error)}`));
    client.on("end", () => onFailure("its lock connection closed"));
    const sentAt = performance.now();
    try {
      await client.connect();
      this.#lockId = await this.#register(client);
    } catch (cause) {
      await client.end().catch(() => undefined);
      throw cause;
    }
    if (failed !== undefined || this.#stopped) {
      await client.end().catch(() => undefined);
      throw new StorageError(`the lock connection was lost while registering: ${failed ?? "the store was closed"}`);
    }
    this.#client = client;
    this.#renewed(sentAt);
  }

  /** In one transaction: picks a lock id this connection can lock, and upserts the node row with it and a fresh lease. */
  async #register(client: pg.Client): Promise<number> {
    const { sql, nodeId, url, leaseMs } = this.#o;
    await client.query("BEGIN");
    try {
      await client.query(sql.registryXactLock, [sql.registryLock]);
      const previous = (await client.query<{ lock_id: number }>(sql.previousLockId, [nodeId])).rows[0]?.lock_id;
      const next = async (): Promise<number> => (await client.query<{ lock_id: number }>(sql.nextLockId)).rows[0]?.lock_id ?? sql.lockBase + 1;
      const top = sql.lockBase + LOCK_IDS_PER_PREFIX;
      let candidate = previous ?? (await next());
      let locked: number | undefined;
      for (let attempt = 0; attempt < MAX_LOCK_TRIES && locked === undefined && candidate <= top; attempt++) {
        // Held already: by this node's previous connection, not yet gone on the server, or by a
        // stale or foreign session. Ids above every row's are free in this table: try the next one.
        if ((await client.query<{ locked: boolean }>(sql.tryLock, [candidate])).rows[0]?.locked === true) locked = candidate;
        else candidate = attempt === 0 && previous !== undefined ? await next() : candidate + 1;
      }
      if (locked === undefined) {
        throw new StorageError(`no free advisory lock id for node ${nodeId} (tried up to ${candidate} of ${sql.lockBase + 1}..${top}, class ${LOCK_CLASS}): other database sessions hold them; delete stale rows of ${sql.nodes}`);
      }
      await client.query(sql.upsertNode, [nodeId, url, locked, leaseMs]);
      await client.query("COMMIT");
      return locked;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
  }

  #prune(): void {
    this.#o.pool.query(this.#o.sql.pruneNodes).catch((cause: unknown) => this.#o.report("cluster.nodes.prune_failed", { nodeId: this.#o.nodeId, error: errorText(cause) }));
  }
}
