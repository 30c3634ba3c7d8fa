/*
 * An offline check of a cluster's stored logs, for fault tests and operators: reads every
 * session's rows in one consistent snapshot and lists whatever breaks the log's invariants.
 */
import { encodeEntries, type StreamEntry } from "@lockstep/protocol";
import type pg from "pg";
import { decodeMeta, decodeSnapshot } from "../storage/records";
import { bytesOf, countOf, headOf, logRowOf, rowKey, walkLog, type HeadRow, type LogRow } from "./pg-cluster-read";
import { checkPrefix, ClusterSql, DEFAULT_CLUSTER_PREFIX } from "./pg-cluster-sql";
import { inTransaction, loadPg } from "../storage/pg-driver";

/** One session as stored, with every entry its log rows hold. */
export interface AuditedSession {
  readonly sessionId: string;
  /** The owner node's id, or `null`. */
  readonly owner: string | null;
  readonly epoch: number;
  readonly snapshotSeq: number;
  readonly lastSeq: number;
  /** Every stored entry by seq, as {@link entryBytes} encodes it (compare with what clients received). */
  readonly entries: Map<number, Uint8Array>;
}

/** What {@link checkClusterLogs} found. */
export interface ClusterAudit {
  /** One line per problem, naming the session and row; empty when every log is sound. */
  readonly problems: string[];
  /** Every session, sorted by id (those whose head row is unreadable left out). */
  readonly sessions: AuditedSession[];
}

/** The bytes an entry is compared by: its encoding as a one-entry list (as the protocol writes it). */
export function entryBytes(entry: StreamEntry): Uint8Array {
  return encodeEntries([entry]);
}

/**
 * Checks every session of the cluster under `prefix`: its log rows run contiguously from
 * snapshot_seq + 1 (rows at or below it trimmed) to the head's last_seq, each decodes to exactly
 * its seqs, times never decrease, epochs never decrease along seq nor pass the head's, and the
 * meta and snapshot rows decode and agree with the head.
 *
 * @param source a pool (left open) or a connection string (a pool is opened and ended).
 * @example
 * ```ts
 * const { problems, sessions } = await checkClusterLogs(process.env.LOCKSTEP_PG_URL!, "lockstep_");
 * if (problems.length > 0) throw new Error(problems.join("\n"));
 * ```
 */
export async function checkClusterLogs(source: pg.Pool | string, prefix: string = DEFAULT_CLUSTER_PREFIX): Promise<ClusterAudit> {
  const sql = new ClusterSql(checkPrefix(prefix));
  const pool = typeof source === "string" ? new (await loadPg()).Pool({ connectionString: source, max: 1 }) : source;
  try {
    return await inTransaction(pool, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", (client) => audit(client, sql));
  } finally {
    if (typeof source === "string") await pool.end();
  }
}

type Row = Record<string, unknown>;

async function audit(client: pg.PoolClient, sql: ClusterSql): Promise<ClusterAudit> {
  const select = async (text: string): Promise<Row[]> => (await client.query<Row>(text)).rows;
  const heads = await select(`SELECT session_id, owner, epoch, last_seq, last_time, clock, snapshot_seq FROM ${sql.heads} ORDER BY session_id`);
  const metas = byId(await select(`SELECT session_id, meta FROM ${sql.sessions}`));
  const snapshots = byId(await select(`SELECT session_id, seq, record FROM ${sql.snapshots}`));
  const logs = new Map<string, Row[]>();
  for (const row of await select(`SELECT session_id, first_seq, last_seq, epoch, segment FROM ${sql.log} ORDER BY session_id, first_seq`)) {
    const id = String(row["session_id"]);
    logs.set(id, [...(logs.get(id) ?? []), row]);
  }
  const problems: string[] = [];
  const sessions: AuditedSession[] = [];
  for (const row of heads) {
    const id = String(row["session_id"]);
    const note = (key: string, problem: string): void => void problems.push(`session ${id}: ${key}: ${problem}`);
    let head: HeadRow;
    try {
      head = headOf(sql, id, row);
    } catch (error) {
      note(rowKey(sql, "heads", id), (error as Error).message);
      continue;
    }
    checkMetaRow(sql, id, metas.get(id), note);
    checkSnapshotRow(sql, id, head, snapshots.get(id), note);
    const rows: LogRow[] = [];
    for (const logRow of logs.get(id) ?? []) {
      try {
        rows.push(logRowOf(sql, id, logRow));
      } catch (error) {
        note(rowKey(sql, "log", id, countOf(logRow["first_seq"])), (error as Error).message);
      }
    }
    for (const r of rows) {
      if (r.lastSeq <= head.snapshotSeq) note(rowKey(sql, "log", id, r.firstSeq), `it lies wholly at or below snapshot_seq ${head.snapshotSeq} and should have been trimmed`);
      if (r.epoch > head.epoch) note(rowKey(sql, "log", id, r.firstSeq), `its epoch ${r.epoch} is past the head's ${head.epoch}`);
    }
    const walk = walkLog(sql, id, rows.filter((r) => r.lastSeq > head.snapshotSeq), head.snapshotSeq + 1, head);
    if (walk.damage !== undefined) note(walk.damage.key, walk.damage.problem);
    const entries = new Map<number, Uint8Array>();
    for (const entry of walk.decoded) entries.set(entry.seq, entryBytes(entry));
    const owner = row["owner"];
    sessions.push({ sessionId: id, owner: typeof owner === "string" ? owner : null, epoch: head.epoch, snapshotSeq: head.snapshotSeq, lastSeq: head.lastSeq, entries });
  }
  return { problems, sessions };
}

function byId(rows: readonly Row[]): Map<string, Row> {
  return new Map(rows.map((row) => [String(row["session_id"]), row]));
}

function checkMetaRow(sql: ClusterSql, id: string, row: Row | undefined, note: (key: string, problem: string) => void): void {
  const key = rowKey(sql, "sessions", id);
  const bytes = bytesOf(row?.["meta"]);
  if (bytes === undefined) return note(key, "the session has a head row but no sessions row");
  try {
    decodeMeta(key, bytes, id);
  } catch (error) {
    note(key, (error as Error).message);
  }
}

function checkSnapshotRow(sql: ClusterSql, id: string, head: HeadRow, row: Row | undefined, note: (key: string, problem: string) => void): void {
  const key = rowKey(sql, "snapshots", id);
  const record = bytesOf(row?.["record"]);
  if (record === undefined) {
    if (head.snapshotSeq !== 0) note(key, `the head says a snapshot at seq ${head.snapshotSeq} is stored, but there is none`);
    return;
  }
  try {
    const snapshot = decodeSnapshot(key, record);
    if (snapshot.seq !== countOf(row?.["seq"]) || snapshot.seq !== head.snapshotSeq) {
      note(key, `its record is at seq ${snapshot.seq}, its row says ${String(row?.["seq"])} and the head ${head.snapshotSeq}`);
    }
    if (snapshot.seq > head.lastSeq) note(key, `it is past the head's last_seq ${head.lastSeq}`);
  } catch (error) {
    note(key, (error as Error).message);
  }
}
