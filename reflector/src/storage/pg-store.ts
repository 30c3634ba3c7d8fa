// Types only: pg itself is loaded by createPostgresStore when it creates a pool (see loadPg), so a
// reflector on the filesystem or memory store never loads it.
import type pg from "pg";
import { checkKey, checkPrefix, type BlobStore } from "./blob-store";
import { StorageError } from "./errors";
import { describeTarget, errorText, hint, inTransaction, loadPg, sqlState } from "./pg-driver";

/** Table used when {@link PostgresStoreOptions.table} is not given. */
export const DEFAULT_POSTGRES_TABLE = "lockstep_blobs";
/** Default of {@link PostgresStoreOptions.connectionTimeoutMillis}. */
export const DEFAULT_POSTGRES_CONNECT_TIMEOUT_MS = 10_000;

// A plain, unqualified identifier that fits PostgreSQL's 63-byte name limit. Always double-quoted in
// SQL, so it is used exactly as written (case included).
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Options of {@link createPostgresStore}. Give `connectionString` or `pool`, not both. */
export interface PostgresStoreOptions {
  /**
   * Where to connect, e.g. `postgres://user:password@127.0.0.1:5432/lockstep`. The store creates a
   * pool for it and ends the pool on `close()`. Without it (and without `pool`), the standard
   * `PGHOST`/`PGPORT`/`PGUSER`/`PGPASSWORD`/`PGDATABASE` environment variables apply.
   */
  readonly connectionString?: string;
  /**
   * A pool you own, used instead of creating one. `close()` leaves it open: end it yourself, and
   * listen for its `"error"` events (idle connections that break).
   */
  readonly pool?: pg.Pool;
  /**
   * Table holding the blobs, created if missing. A plain SQL identifier (`[A-Za-z_][A-Za-z0-9_]*`,
   * at most 63 characters), used as written, case included. Default {@link DEFAULT_POSTGRES_TABLE}.
   */
  readonly table?: string;
  /**
   * How long to wait for a new connection before failing, in ms (only for a pool the store creates).
   * Default {@link DEFAULT_POSTGRES_CONNECT_TIMEOUT_MS}.
   */
  readonly connectionTimeoutMillis?: number;
}

/**
 * A {@link BlobStore} in one PostgreSQL table (`key text COLLATE "C" PRIMARY KEY, value bytea`),
 * for reflectors whose sessions should live in a database server. A put is one upsert statement:
 * atomic, and durable once it resolves (the server has committed it; keep `synchronous_commit` on,
 * its default). `list` uses the primary-key index with byte order (`COLLATE "C"`), which for the
 * ASCII keys allowed is the UTF-16 order the contract promises.
 *
 * Opening connects once, creating the table if it does not exist, so a wrong URL or a server that
 * is down fails here rather than on the first write.
 *
 * @example
 * ```ts
 * const storage = await createPostgresStore({ connectionString: "postgres://lockstep@db.internal:5432/lockstep" });
 * const reflector = await startReflector({ storage }); // reflector.close() closes the store
 * ```
 * @throws {StorageError} (as a rejection) for invalid options, or if the server cannot be reached
 * or the table cannot be created or read.
 */
export async function createPostgresStore(options: PostgresStoreOptions = {}): Promise<BlobStore> {
  const table = options.table ?? DEFAULT_POSTGRES_TABLE;
  if (typeof table !== "string" || !TABLE_NAME.test(table)) {
    throw new StorageError(`invalid PostgreSQL table name ${JSON.stringify(table)}: use a plain identifier of [A-Za-z_][A-Za-z0-9_]*, at most 63 characters`);
  }
  if (options.pool !== undefined && (options.connectionString !== undefined || options.connectionTimeoutMillis !== undefined)) {
    throw new StorageError("give createPostgresStore either a pool or connectionString/connectionTimeoutMillis, not both: an injected pool is configured by its owner");
  }
  const timeout = options.connectionTimeoutMillis ?? DEFAULT_POSTGRES_CONNECT_TIMEOUT_MS;
  if (!(Number.isInteger(timeout) && timeout >= 0)) {
    throw new StorageError(`option connectionTimeoutMillis must be a non-negative integer of ms, got ${String(timeout)}`);
  }
  const owned = options.pool === undefined;
  const target = options.pool !== undefined ? "the injected pool's server" : describeTarget(options.connectionString);
  const pool =
    options.pool ??
    new (await loadPg()).Pool({
      ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : {}),
      connectionTimeoutMillis: timeout,
    });
  // An idle connection that breaks (server restart, network cut) is reported as a pool "error"
  // event, which would crash the process if nobody listened. The pool already discards the broken
  // connection and the next query opens a new one, so there is nothing else to do.
  if (owned) pool.on("error", () => undefined);
  const sql = new Statements(table);
  try {
    await createTable(pool, sql, table, target);
  } catch (cause) {
    if (owned) await pool.end().catch(() => undefined);
    if (cause instanceof StorageError) throw cause;
    throw new StorageError(`cannot open the PostgreSQL store (table "${table}" at ${target}): ${errorText(cause)}; ${hint(cause)}`, { cause });
  }
  return new PostgresStore(pool, owned, sql, table, target);
}

/** The SQL of one table, built once (the identifier is validated, so quoting it is enough). */
class Statements {
  readonly create: string;
  readonly probe: string;
  readonly get: string;
  readonly put: string;
  readonly delete: string;
  readonly deleteMany: string;
  readonly listAll: string;
  readonly listRange: string;

  constructor(table: string) {
    const t = `"${table}"`;
    this.create = `CREATE TABLE IF NOT EXISTS ${t} (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL)`;
    this.probe = `SELECT key, value FROM ${t} WHERE false`;
    this.get = `SELECT value FROM ${t} WHERE key = $1`;
    this.put = `INSERT INTO ${t} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`;
    this.delete = `DELETE FROM ${t} WHERE key = $1`;
    this.deleteMany = `DELETE FROM ${t} WHERE key = ANY($1::text[])`;
    // Explicit collations keep the order (and the range below) byte-wise even on a table created
    // by hand without COLLATE "C"; on ours they match the primary-key index, which then serves them.
    this.listAll = `SELECT key FROM ${t} ORDER BY key COLLATE "C"`;
    // A range rather than LIKE, so '_' and '%' in a prefix are ordinary characters.
    this.listRange = `SELECT key FROM ${t} WHERE key COLLATE "C" >= $1 AND key COLLATE "C" < $2 ORDER BY key COLLATE "C"`;
  }
}

async function createTable(pool: pg.Pool, sql: Statements, table: string, target: string): Promise<void> {
  // CREATE TABLE IF NOT EXISTS is not atomic: two stores creating the same new table at once race
  // on the catalog, and the loser fails on the table, its row type or its index, with one of
  // several codes. A transaction-scoped advisory lock on the table's name makes them take turns.
  await inTransaction(pool, "BEGIN", async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`lockstep:${table}`]);
    await client.query(sql.create);
  });
  try {
    await pool.query(sql.probe);
  } catch (cause) {
    if (sqlState(cause) !== "42703") throw cause;
    throw new StorageError(`table "${table}" at ${target} exists but lacks the columns key (text) and value (bytea): pick another table name or drop it`, { cause });
  }
}

class PostgresStore implements BlobStore {
  readonly #pool: pg.Pool;
  readonly #owned: boolean;
  readonly #sql: Statements;
  readonly #table: string;
  readonly #target: string;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  constructor(pool: pg.Pool, owned: boolean, sql: Statements, table: string, target: string) {
    this.#pool = pool;
    this.#owned = owned;
    this.#sql = sql;
    this.#table = table;
    this.#target = target;
  }

  get location(): string {
    return `PostgreSQL table "${this.#table}" at ${this.#target}`;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#track("read", key, async () => {
      checkKey(key);
      const result = await this.#pool.query<{ value: Buffer }>(this.#sql.get, [key]);
      const value = result.rows[0]?.value;
      // A fresh Uint8Array, not the Buffer pg decoded into (which may share Node's pooled memory).
      return value === undefined ? undefined : new Uint8Array(value);
    });
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.#track("write", key, async () => {
      checkKey(key);
      if (!(value instanceof Uint8Array)) throw new StorageError(`put ${JSON.stringify(key)}: value must be a Uint8Array`, { key });
      // Copied now: the caller may reuse its array while the query waits for a connection.
      await this.#pool.query(this.#sql.put, [key, Buffer.from(value)]);
    });
  }

  delete(key: string): Promise<void> {
    return this.#track("delete", key, async () => {
      checkKey(key);
      await this.#pool.query(this.#sql.delete, [key]);
    });
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#track("delete", keys[0] ?? "", async () => {
      for (const key of keys) checkKey(key);
      // One statement, so all of them or none: one round trip where a delete per key took one each.
      if (keys.length > 0) await this.#pool.query(this.#sql.deleteMany, [keys]);
    });
  }

  list(prefix: string): Promise<string[]> {
    return this.#track("list", prefix, async () => {
      checkPrefix(prefix);
      const result =
        prefix.length === 0
          ? await this.#pool.query<{ key: string }>(this.#sql.listAll)
          : await this.#pool.query<{ key: string }>(this.#sql.listRange, [prefix, upperBound(prefix)]);
      return result.rows.map((row) => row.key);
    });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inFlight]);
      if (this.#owned) await this.#pool.end();
    })();
    return this.#closing;
  }

  #track<T>(verb: string, key: string, operation: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) {
      return Promise.reject(new StorageError(`the PostgreSQL store (table "${this.#table}") was closed; open it again with createPostgresStore()`));
    }
    const promise = operation().catch((cause: unknown) => {
      if (cause instanceof StorageError) throw cause;
      throw new StorageError(`cannot ${verb} ${JSON.stringify(key)} in PostgreSQL table "${this.#table}" at ${this.#target}: ${errorText(cause)}; ${hint(cause)}`, {
        cause,
        key,
      });
    });
    this.#inFlight.add(promise);
    const forget = (): void => void this.#inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }
}

/**
 * The smallest string above every string that starts with `prefix`: the prefix with its last code
 * unit incremented. Prefix characters are ASCII below `~`, so the result stays ASCII.
 */
function upperBound(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
