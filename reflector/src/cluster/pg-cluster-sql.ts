/*
 * The SQL of a cluster store: its five tables (layout in the comment of ClusterSql), the liveness
 * predicate, and every statement, built once per table prefix. Each write that must be fenced is
 * one statement, so it commits whole or not at all.
 */
import type pg from "pg";
import { StorageError } from "../storage/errors";
import { inTransaction } from "../storage/pg-driver";

/** Table prefix used when {@link ClusterStoreOptions.prefix} is not given. */
export const DEFAULT_CLUSTER_PREFIX = "lockstep_";

/**
 * The first key of every node's advisory lock, `pg_advisory_lock(LOCK_CLASS, lock_id)` (the
 * two-int4 form, shown in `pg_locks` with `classid = LOCK_CLASS`, `objid = lock_id`,
 * `objsubid = 2`). "LKST" in ASCII.
 */
export const LOCK_CLASS = 0x4c4b5354;

/** How many lock ids each prefix has (rows of nodes gone for an hour are pruned, so ids are reused). */
export const LOCK_IDS_PER_PREFIX = 0x10000 - 1;
/** How many prefix ranges fit in a positive int4. */
const LOCK_RANGES = 0x7fff;

// A plain identifier (as pg-store's table names) that leaves room for the longest table suffix
// ("snapshots") within PostgreSQL's 63-byte limit.
const PREFIX = /^[A-Za-z_][A-Za-z0-9_]{0,53}$/;

/** Returns `prefix` if it can start the cluster's table names, else throws a {@link StorageError}. */
export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== "string" || !PREFIX.test(prefix)) {
    throw new StorageError(`invalid cluster table prefix ${JSON.stringify(prefix)}: use a plain identifier of [A-Za-z_][A-Za-z0-9_]*, at most 54 characters`);
  }
  return prefix;
}

/**
 * Statements of the cluster's tables under one prefix P (identifiers validated, so quoting is enough):
 *
 *   P nodes     one row per running node: its random id, advertised URL, advisory lock id and lease
 *   P heads     one row per session: owner node (or NULL), epoch (the fencing token), last_seq,
 *               last_time, clock (time watermark), snapshot_seq, last_active (wall ms)
 *   P sessions  meta (encodeMeta) and the persisted data the session started from
 *   P snapshots the latest snapshot record (encodeSnapshot) and its seq
 *   P log       one row per append: first_seq..last_seq, the committing epoch, encodeSegment bytes
 *
 * Rows of sessions, snapshots and log go with their head row (ON DELETE CASCADE).
 */
export class ClusterSql {
  readonly prefix: string;
  readonly nodes: string;
  readonly heads: string;
  readonly sessions: string;
  readonly snapshots: string;
  readonly log: string;
  /** Key of the transaction-scoped advisory lock that serializes schema creation and node registration. */
  readonly registryLock: string;
  /**
   * Lock ids of this prefix's nodes lie in lockBase+1 .. lockBase+LOCK_IDS_PER_PREFIX. Advisory
   * locks are per database, not per table: were two clusters (prefixes) of one database to number
   * from 1, a node of one could take the lock id of a freshly killed node of the other, which would
   * then look alive until its lease ran out. A range per prefix (from a hash of it) avoids that.
   */
  readonly lockBase: number;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.nodes = `"${prefix}nodes"`;
    this.heads = `"${prefix}heads"`;
    this.sessions = `"${prefix}sessions"`;
    this.snapshots = `"${prefix}snapshots"`;
    this.log = `"${prefix}log"`;
    this.registryLock = `lockstep:${prefix}cluster`;
    this.lockBase = (fnv1a(prefix) % LOCK_RANGES) * LOCK_IDS_PER_PREFIX;
  }

  get createTables(): readonly string[] {
    const { nodes, heads, sessions, snapshots, log } = this;
    return [
      `CREATE TABLE IF NOT EXISTS ${nodes} (node_id text PRIMARY KEY, url text NOT NULL, lock_id integer NOT NULL UNIQUE,
        lease_until timestamptz NOT NULL, started_at timestamptz NOT NULL DEFAULT now())`,
      `CREATE TABLE IF NOT EXISTS ${heads} (session_id text COLLATE "C" PRIMARY KEY, owner text NULL, epoch bigint NOT NULL,
        last_seq bigint NOT NULL, last_time bigint NOT NULL, clock bigint NOT NULL DEFAULT 0,
        snapshot_seq bigint NOT NULL DEFAULT 0, last_active bigint NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${sessions} (session_id text COLLATE "C" PRIMARY KEY REFERENCES ${heads} ON DELETE CASCADE,
        meta bytea NOT NULL, persisted bytea NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${snapshots} (session_id text COLLATE "C" PRIMARY KEY REFERENCES ${heads} ON DELETE CASCADE,
        seq bigint NOT NULL, record bytea NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${log} (session_id text COLLATE "C" NOT NULL REFERENCES ${heads} ON DELETE CASCADE,
        first_seq bigint NOT NULL, last_seq bigint NOT NULL, epoch bigint NOT NULL, segment bytea NOT NULL,
        PRIMARY KEY (session_id, first_seq))`,
    ];
  }

  /** One probe per table: fails with 42703 if a table of that name exists with other columns. */
  get probes(): readonly [table: string, sql: string][] {
    return [
      [this.nodes, `SELECT node_id, url, lock_id, lease_until, started_at FROM ${this.nodes} WHERE false`],
      [this.heads, `SELECT session_id, owner, epoch, last_seq, last_time, clock, snapshot_seq, last_active FROM ${this.heads} WHERE false`],
      [this.sessions, `SELECT session_id, meta, persisted FROM ${this.sessions} WHERE false`],
      [this.snapshots, `SELECT session_id, seq, record FROM ${this.snapshots} WHERE false`],
      [this.log, `SELECT session_id, first_seq, last_seq, epoch, segment FROM ${this.log} WHERE false`],
    ];
  }

  /**
   * Whether the node row `n` is alive: its lease has not expired by the database's clock and its
   * advisory lock is held (a killed process's connection drops the lock at once). Node clocks never
   * enter into it.
   */
  static aliveNode(n: string): string {
    return `(${n}.lease_until > clock_timestamp() AND EXISTS (SELECT 1 FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = ${LOCK_CLASS} AND l.objid = ${n}.lock_id::oid AND l.objsubid = 2 AND l.granted))`;
  }

  /** Whether the node whose id is the expression `owner` is alive (false for a node without a row). */
  aliveOwner(owner: string): string {
    return `EXISTS (SELECT 1 FROM ${this.nodes} n WHERE n.node_id = ${owner} AND ${ClusterSql.aliveNode("n")})`;
  }

  // Node registration and the lease (the dedicated lock connection).
  readonly registryXactLock = "SELECT pg_advisory_xact_lock(hashtext($1))";
  get previousLockId(): string {
    return `SELECT lock_id FROM ${this.nodes} WHERE node_id = $1`;
  }
  /** The id after the highest one in use in this prefix's range. */
  get nextLockId(): string {
    return `SELECT COALESCE(max(lock_id), ${this.lockBase}) + 1 AS lock_id FROM ${this.nodes}
      WHERE lock_id > ${this.lockBase} AND lock_id <= ${this.lockBase + LOCK_IDS_PER_PREFIX}`;
  }
  readonly tryLock = `SELECT pg_try_advisory_lock(${LOCK_CLASS}, $1) AS locked`;
  readonly unlock = `SELECT pg_advisory_unlock(${LOCK_CLASS}, $1)`;
  get upsertNode(): string {
    return `INSERT INTO ${this.nodes} (node_id, url, lock_id, lease_until) VALUES ($1, $2, $3, clock_timestamp() + $4::integer * interval '1 millisecond')
      ON CONFLICT (node_id) DO UPDATE SET url = EXCLUDED.url, lock_id = EXCLUDED.lock_id, lease_until = EXCLUDED.lease_until`;
  }
  get renew(): string {
    return `UPDATE ${this.nodes} SET lease_until = clock_timestamp() + $2::integer * interval '1 millisecond' WHERE node_id = $1`;
  }
  get deleteNode(): string {
    return `DELETE FROM ${this.nodes} WHERE node_id = $1`;
  }
  /** Rows of nodes whose lease expired more than an hour ago: they are long gone (or will register again). */
  get pruneNodes(): string {
    return `DELETE FROM ${this.nodes} WHERE lease_until < clock_timestamp() - interval '1 hour'`;
  }
  get liveNodes(): string {
    return `SELECT node_id, url FROM ${this.nodes} n WHERE ${ClusterSql.aliveNode("n")} ORDER BY started_at, node_id`;
  }

  // Sessions.
  get create(): string {
    return `WITH h AS (INSERT INTO ${this.heads} (session_id, owner, epoch, last_seq, last_time, clock, snapshot_seq, last_active)
        VALUES ($1, $2, 1, 0, 0, 0, 0, $3) ON CONFLICT (session_id) DO NOTHING RETURNING session_id)
      INSERT INTO ${this.sessions} (session_id, meta, persisted) SELECT session_id, $4, $5 FROM h RETURNING session_id`;
  }
  /** Locks the head row (FOR UPDATE: it conflicts with the FOR KEY SHARE of snapshot writes) and says who owns it. */
  get claimInspect(): string {
    return `SELECT h.owner, n.url, ${this.aliveOwner("h.owner")} AS owner_alive,
        (EXTRACT(EPOCH FROM (n.lease_until - clock_timestamp())) * 1000)::float8 AS lease_left_ms
      FROM ${this.heads} h LEFT JOIN ${this.nodes} n ON n.node_id = h.owner WHERE h.session_id = $1 FOR UPDATE OF h`;
  }
  get claim(): string {
    return `UPDATE ${this.heads} SET owner = $2, epoch = epoch + 1
      WHERE session_id = $1 AND (owner IS NULL OR owner = $2 OR NOT ${this.aliveOwner(`${this.heads}.owner`)})
      RETURNING epoch, last_seq, last_time, clock, snapshot_seq`;
  }
  get head(): string {
    return `SELECT epoch, last_seq, last_time, clock, snapshot_seq FROM ${this.heads} WHERE session_id = $1`;
  }
  get sessionRows(): string {
    return `SELECT s.meta, s.persisted, sn.seq AS snapshot_seq, sn.record FROM ${this.heads} h
      LEFT JOIN ${this.sessions} s ON s.session_id = h.session_id LEFT JOIN ${this.snapshots} sn ON sn.session_id = h.session_id
      WHERE h.session_id = $1`;
  }
  /** Log rows holding entries after seq $2, in seq order. */
  get logRows(): string {
    return `SELECT first_seq, last_seq, epoch, segment FROM ${this.log} WHERE session_id = $1 AND last_seq > $2 ORDER BY first_seq`;
  }
  /**
   * The group commit: one segment per session, each fenced on (epoch, last_seq) and the owner.
   * Returns the ids whose segment was stored; the others were fenced.
   */
  get appendBatch(): string {
    return `WITH input AS (
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bytea[])
          AS i(id, epoch, prev_seq, new_seq, new_time, segment)),
      h AS (UPDATE ${this.heads} SET last_seq = input.new_seq, last_time = input.new_time FROM input
        WHERE ${this.heads}.session_id = input.id AND ${this.heads}.epoch = input.epoch
          AND ${this.heads}.last_seq = input.prev_seq AND ${this.heads}.owner = $7
        RETURNING input.id, input.epoch, input.prev_seq, input.new_seq, input.segment)
      INSERT INTO ${this.log} (session_id, first_seq, last_seq, epoch, segment)
        SELECT id, prev_seq + 1, new_seq, epoch, segment FROM h RETURNING session_id`;
  }
  /**
   * Stores a snapshot and trims the log under it, gated on the head row still being ours at the
   * epoch and holding the snapshot's seq ($1 id, $2 epoch, $3 seq, $4 record, $5 owner).
   */
  get putSnapshot(): string {
    return `WITH h AS (SELECT session_id FROM ${this.heads} WHERE session_id = $1 AND epoch = $2 AND owner = $5 AND last_seq >= $3 FOR KEY SHARE),
      s AS (INSERT INTO ${this.snapshots} (session_id, seq, record) SELECT session_id, $3, $4 FROM h
        ON CONFLICT (session_id) DO UPDATE SET seq = EXCLUDED.seq, record = EXCLUDED.record WHERE ${this.snapshots}.seq <= EXCLUDED.seq
        RETURNING seq),
      u AS (UPDATE ${this.heads} SET snapshot_seq = GREATEST(${this.heads}.snapshot_seq, $3) FROM h
        WHERE ${this.heads}.session_id = h.session_id RETURNING 1),
      d AS (DELETE FROM ${this.log} USING h WHERE ${this.log}.session_id = h.session_id AND ${this.log}.last_seq <= $3 RETURNING 1)
      SELECT (SELECT count(*) FROM h)::integer AS matched, (SELECT count(*) FROM s)::integer AS stored`;
  }
  get putTime(): string {
    return `UPDATE ${this.heads} SET clock = CASE WHEN $3::boolean THEN $2::bigint ELSE GREATEST(clock, $2::bigint) END
      WHERE session_id = $1 AND epoch = $4 AND owner = $5`;
  }
  get touch(): string {
    return `UPDATE ${this.heads} SET last_active = $2 WHERE session_id = $1 AND epoch = $3 AND owner = $4`;
  }
  get release(): string {
    return `UPDATE ${this.heads} SET owner = NULL WHERE session_id = $1 AND epoch = $2 AND owner = $3`;
  }
  get releaseAll(): string {
    return `UPDATE ${this.heads} SET owner = NULL FROM unnest($1::text[], $2::bigint[]) AS r(id, epoch)
      WHERE ${this.heads}.session_id = r.id AND ${this.heads}.epoch = r.epoch AND ${this.heads}.owner = $3`;
  }
  /** Deletes sessions inactive since before $1 that are not in $2 and that no live node owns. */
  get collectGarbage(): string {
    return `DELETE FROM ${this.heads} WHERE last_active < $1 AND NOT (session_id = ANY($2::text[]))
      AND (owner IS NULL OR NOT ${this.aliveOwner(`${this.heads}.owner`)}) RETURNING session_id`;
  }
  get meta(): string {
    return `SELECT meta FROM ${this.sessions} WHERE session_id = $1`;
  }
  get sessionIds(): string {
    return `SELECT session_id FROM ${this.heads} ORDER BY session_id`;
  }
}

/** 32-bit FNV-1a of a string's UTF-16 code units (the prefix is ASCII): spreads prefixes over lock ranges. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

/**
 * Creates the cluster's tables if missing. CREATE TABLE IF NOT EXISTS is not atomic (two nodes
 * starting at once race on the catalog), so a transaction-scoped advisory lock makes them take turns.
 * @throws {StorageError} if a table of one of the names exists with other columns.
 */
export async function createSchema(pool: pg.Pool, sql: ClusterSql, target: string): Promise<void> {
  await inTransaction(pool, "BEGIN", async (client) => {
    await client.query(sql.registryXactLock, [sql.registryLock]);
    for (const statement of sql.createTables) await client.query(statement);
  });
  for (const [table, probe] of sql.probes) {
    try {
      await pool.query(probe);
    } catch (cause) {
      if ((cause as { code?: unknown }).code !== "42703") throw cause;
      throw new StorageError(`table ${table} at ${target} exists but has other columns than a Lockstep cluster table: pick another prefix or drop it`, { cause });
    }
  }
}
