/**
 * Shared setup of the PostgreSQL cluster store tests: the server from LOCKSTEP_PG_URL, a fresh
 * table prefix per test, nodes with a short lease, and the few admin queries the tests need.
 */
import { randomBytes } from "node:crypto";
import { MessageType, type StreamEntry } from "@lockstep/protocol";
import pg from "pg";
import { createClusterStore, LOCK_CLASS, type ClusterStoreOptions, type PgClusterStore } from "../../src/cluster/pg-cluster-store";
import type { StoredSessionMeta } from "../../src/storage/records";

export const PG_URL = process.env["LOCKSTEP_PG_URL"] ?? "";
export const PG_MISSING =
  "LOCKSTEP_PG_URL is not set, so the PostgreSQL cluster store tests are skipped: run `npm test`, which starts PostgreSQL via " +
  "scripts/postgres.sh, or LOCKSTEP_PG_URL=$(bash scripts/postgres.sh start /tmp/lockstep-pg) npx jest reflector/test/cluster";

/** Short enough for fast tests, long enough for a loaded two-core machine. */
export const LEASE_MS = 600;
export const RENEW_MS = 150;

/**
 * Registers the hooks every cluster store test file needs: one admin pool for the file, a fresh
 * {@link PgCluster} (own tables) for each test, closed after it. Returns the current test's.
 */
export function usePgCluster(): () => PgCluster {
  let admin: pg.Pool | undefined;
  let cluster: PgCluster | undefined;
  beforeAll(() => {
    admin = new pg.Pool({ connectionString: PG_URL, max: 3 });
  });
  afterAll(async () => {
    await admin?.end();
  });
  beforeEach(() => {
    cluster = new PgCluster(admin as pg.Pool);
  });
  afterEach(async () => {
    await cluster?.close();
  });
  return () => cluster as PgCluster;
}

/** A test's nodes and tables; `close()` closes every node and drops the tables. */
export class PgCluster {
  readonly prefix = `lst_${randomBytes(5).toString("hex")}_`;
  readonly admin: pg.Pool;
  readonly #stores: PgClusterStore[] = [];
  #port = 9000;

  constructor(admin: pg.Pool) {
    this.admin = admin;
  }

  /** A node on this test's tables (each with its own URL). */
  async node(options: Partial<ClusterStoreOptions> = {}): Promise<PgClusterStore> {
    const store = await createClusterStore({
      connectionString: PG_URL,
      nodeUrl: `ws://127.0.0.1:${this.#port++}/`,
      prefix: this.prefix,
      leaseMs: LEASE_MS,
      renewMs: RENEW_MS,
      ...options,
    });
    this.#stores.push(store);
    return store;
  }

  table(name: "nodes" | "heads" | "sessions" | "snapshots" | "log"): string {
    return `"${this.prefix}${name}"`;
  }

  async query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<R[]> {
    return (await this.admin.query<R>(text, values)).rows;
  }

  /** The server process holding `store`'s advisory lock (its lease connection). */
  async lockBackend(store: PgClusterStore): Promise<number> {
    const rows = await this.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2 AND granted`,
      [LOCK_CLASS, store.lockId],
    );
    if (rows.length !== 1) throw new Error(`expected one holder of lock ${store.lockId}, found ${rows.length}`);
    return (rows[0] as { pid: number }).pid;
  }

  /** Kills `store`'s lease connection on the server, as a dead process's would drop; waits until it is gone. */
  async killLockConnection(store: PgClusterStore): Promise<void> {
    const pid = await this.lockBackend(store);
    await this.query("SELECT pg_terminate_backend($1, 5000)", [pid]);
  }

  /** How long `store`'s lease has left by the database's clock (ms; negative once expired). */
  async leaseLeft(store: PgClusterStore): Promise<number> {
    const rows = await this.query<{ left: number }>(
      `SELECT (EXTRACT(EPOCH FROM (lease_until - clock_timestamp())) * 1000)::float8 AS left FROM ${this.table("nodes")} WHERE node_id = $1`,
      [store.node.nodeId],
    );
    return rows[0]?.left ?? Number.NEGATIVE_INFINITY;
  }

  /** Server connections of `store` (its pool and its lease connection), by application name. */
  async connectionsOf(store: PgClusterStore): Promise<number> {
    const rows = await this.query<{ n: number }>(`SELECT count(*)::integer AS n FROM pg_stat_activity WHERE application_name LIKE $1`, [`lockstep ${store.node.nodeId}%`]);
    return rows[0]?.n ?? 0;
  }

  async close(): Promise<void> {
    await Promise.all(this.#stores.splice(0).map((store) => store.close()));
    for (const name of ["log", "snapshots", "sessions", "heads", "nodes"] as const) await this.admin.query(`DROP TABLE IF EXISTS ${this.table(name)}`);
  }
}

export function meta(sessionId: string): StoredSessionMeta {
  return { sessionId, persistentId: `p-${sessionId}`, tps: 20, verifier: new Uint8Array([1, 2, 3]), check: new Uint8Array([4, 5]), createdAt: 1_700_000_000_000 };
}

/** Relay entries `from`..`to`, at time 10 ms per seq. */
export function relays(from: number, to: number): StreamEntry[] {
  const entries: StreamEntry[] = [];
  for (let seq = from; seq <= to; seq++) entries.push({ type: MessageType.Relay, seq, time: seq * 10, payload: new Uint8Array([seq & 0xff, 0xab]) });
  return entries;
}

/** Polls `condition` every 20 ms until it holds; fails after `timeoutMs` saying what was awaited. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resolves with the first reason `store` reports a lost lease. */
export function nextLeaseLoss(store: PgClusterStore): Promise<string> {
  return new Promise((resolve) => store.onLeaseLost(resolve));
}
