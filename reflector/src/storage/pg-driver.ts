// The PostgreSQL driver as both PostgreSQL stores use it (pg-store.ts, the cluster's). Types only:
// pg itself is loaded on first use (loadPg), so a reflector on another store never loads it.
import type pg from "pg";
import { StorageError } from "./errors";

/**
 * The `pg` module, loaded on first use. Its default export, the one form that works under both
 * esbuild's ESM output (pg's `esm/index.mjs` has a default export) and jest's CommonJS transform
 * (where the default is `module.exports`).
 */
export async function loadPg(): Promise<typeof pg> {
  try {
    return (await import("pg")).default;
  } catch (cause) {
    throw new StorageError(`cannot load the PostgreSQL driver (the pg package): ${errorText(cause)}; install it next to @lockstep/reflector (npm install pg)`, { cause });
  }
}

/** Where a connection string points, without its password (it ends up in logs). */
export function describeTarget(connectionString: string | undefined): string {
  if (connectionString === undefined) return "the server named by the PG* environment variables";
  try {
    const url = new URL(connectionString);
    return `${url.protocol}//${url.username === "" ? "" : `${url.username}@`}${url.host}${url.pathname}`;
  } catch {
    return "the configured server";
  }
}

/** The SQLSTATE (or Node error code) of a driver error, if it has one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The error's message with its code, for messages to an operator. */
export function errorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = sqlState(error);
  // Node's AggregateError (every address refused) has an empty message but a code.
  if (code === undefined || message.includes(code)) return message || "unknown error";
  return message === "" ? code : `${message} (${code})`;
}

/** What an operator can do about a driver error. */
export function hint(error: unknown): string {
  const code = sqlState(error) ?? "";
  const message = error instanceof Error ? error.message : "";
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EHOSTUNREACH" || code === "ETIMEDOUT" || /timeout/i.test(message)) {
    return "check that PostgreSQL is running and reachable at that host and port";
  }
  if (code === "28P01" || code === "28000") return "check the user and password in the connection string";
  if (code === "3D000") return "create the database first (createdb) or fix its name in the connection string";
  if (code === "42501") return "grant the user CREATE and read/write rights on Lockstep's tables";
  if (code === "42P01") return "a Lockstep table was dropped while in use; open the store again (restart the reflector) to recreate it";
  if (code === "53100") return "free disk space on the database server";
  if (code.startsWith("57P") || code.startsWith("08") || /terminated|ECONNRESET/i.test(message)) {
    return "the server closed the connection; retry once it is back";
  }
  return "check the database server and its logs, then retry";
}

/** Whether retrying the same statement may succeed: a deadlock or a serialization failure. */
export function isRetryable(error: unknown): boolean {
  const code = sqlState(error);
  return code === "40P01" || code === "40001";
}

/**
 * Runs `body` in one transaction on a pooled connection. A connection that cannot even roll back
 * is discarded rather than returned to the pool.
 */
export async function inTransaction<T>(pool: pg.Pool, begin: string, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A checked-out client whose connection dies between two statements (the server restarting)
  // emits "error", which would crash the process with nobody listening; the pool listens only
  // while the client is idle. The failed statement (or COMMIT) rejects on its own.
  const onError = (error: Error): void => void (broken ??= error);
  client.on("error", onError);
  try {
    await client.query(begin);
    const result = await body(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch((rollback: Error) => (broken = rollback));
    throw error;
  } finally {
    client.off("error", onError);
    client.release(broken);
  }
}
