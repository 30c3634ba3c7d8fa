/*
 * Reading a session back from the cluster's tables (for a claim, a joiner's history and the audit),
 * checking as it goes. Every append is one transactional statement, so a torn write cannot happen:
 * anything that does not read back exactly is damage, reported as a SessionDamagedError and never
 * "recovered" by cutting the log.
 */
import type { StreamEntry } from "@lockstep/protocol";
import type pg from "pg";
import { SessionDamagedError } from "../storage/errors";
import { replayLiveViews } from "../storage/live-views";
import { corrupt, decodeMeta, decodeSegmentPrefix, decodeSnapshot, isCount, type StoredSnapshot } from "../storage/records";
import type { StoredSession } from "../storage/session-store";
import type { ClusterSql } from "./pg-cluster-sql";

/** A session's head row. */
export interface HeadRow {
  readonly epoch: number;
  readonly lastSeq: number;
  readonly lastTime: number;
  readonly clock: number;
  readonly snapshotSeq: number;
}

/** One row of the log table. */
export interface LogRow {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly epoch: number;
  readonly segment: Uint8Array;
}

/** A damaged row: the name an operator can find it by, and what is wrong. */
export interface RowProblem {
  readonly key: string;
  readonly problem: string;
}

/** What walking a session's log rows found. */
export interface LogWalk {
  /** The entries from `start` on, in order (as far as the log read correctly). */
  readonly entries: StreamEntry[];
  /** Every entry decoded, those below `start` in a row that straddles it included. */
  readonly decoded: StreamEntry[];
  /** The first thing wrong, or `undefined` if the log is sound. */
  readonly damage: RowProblem | undefined;
}

/** The name of a row in messages: `<prefix><table>/<sessionId>[/<first_seq>]`. */
export function rowKey(sql: ClusterSql, table: "heads" | "sessions" | "snapshots" | "log", id: string, firstSeq?: number): string {
  return `${sql.prefix}${table}/${id}${firstSeq === undefined ? "" : `/${firstSeq}`}`;
}

/**
 * The {@link SessionDamagedError} for a damaged row of session `id`, saying how to repair or drop
 * it (the generic remedy of `corrupt()` speaks of blob keys, which a cluster does not have).
 */
export function damagedRow(sql: ClusterSql, id: string, key: string, problem: string, cause?: unknown): SessionDamagedError {
  return withRemedy(sql, id, corrupt(key, problem, cause));
}

function withRemedy(sql: ClusterSql, id: string, error: SessionDamagedError): SessionDamagedError {
  const remedy = `Session ${id} cannot be loaded until then: restore its rows from a backup, or drop it with DELETE FROM ${sql.heads} WHERE session_id = '${id}' (its other rows go with it).`;
  return new SessionDamagedError(`${error.message} ${remedy}`, { key: error.key ?? id, cause: error.cause, sessionId: id });
}

/** A bigint column (pg returns them as strings) as a safe non-negative integer, or `undefined`. */
export function countOf(value: unknown): number | undefined {
  const n = typeof value === "string" ? Number(value) : value;
  return isCount(n) ? n : undefined;
}

/** A bytea column as a fresh Uint8Array (not the Buffer pg decoded into, which may share pooled memory). */
export function bytesOf(value: unknown): Uint8Array | undefined {
  return value instanceof Uint8Array ? new Uint8Array(value) : undefined;
}

/** Parses a head row selected as `epoch, last_seq, last_time, clock, snapshot_seq`. */
export function headOf(sql: ClusterSql, id: string, row: Record<string, unknown>): HeadRow {
  const read = (column: string): number => {
    const n = countOf(row[column]);
    if (n === undefined) throw damagedRow(sql, id, rowKey(sql, "heads", id), `${column} is ${String(row[column])}, not a non-negative safe integer`);
    return n;
  };
  const head = { epoch: read("epoch"), lastSeq: read("last_seq"), lastTime: read("last_time"), clock: read("clock"), snapshotSeq: read("snapshot_seq") };
  if (head.snapshotSeq > head.lastSeq) throw damagedRow(sql, id, rowKey(sql, "heads", id), `snapshot_seq ${head.snapshotSeq} is past last_seq ${head.lastSeq}`);
  return head;
}

/** Parses a log row selected as `first_seq, last_seq, epoch, segment`. */
export function logRowOf(sql: ClusterSql, id: string, row: Record<string, unknown>): LogRow {
  const firstSeq = countOf(row["first_seq"]);
  const lastSeq = countOf(row["last_seq"]);
  const epoch = countOf(row["epoch"]);
  const segment = bytesOf(row["segment"]);
  const key = rowKey(sql, "log", id, firstSeq ?? Number(row["first_seq"]));
  if (firstSeq === undefined || lastSeq === undefined || epoch === undefined || segment === undefined || firstSeq < 1 || lastSeq < firstSeq) {
    throw damagedRow(sql, id, key, `its first_seq ${String(row["first_seq"])}, last_seq ${String(row["last_seq"])} or epoch ${String(row["epoch"])} is not a valid range`);
  }
  return { firstSeq, lastSeq, epoch, segment };
}

/**
 * Checks log rows (in first_seq order, each ending at or after `start`) against the head: they
 * must run contiguously from `start` (the first may begin earlier, straddling the snapshot) to
 * `head.lastSeq`, each holding exactly its seqs, times never decreasing, epochs never decreasing
 * along seq, and the last entry at `head.lastTime`.
 */
export function walkLog(sql: ClusterSql, id: string, rows: readonly LogRow[], start: number, head: Pick<HeadRow, "lastSeq" | "lastTime">): LogWalk {
  const entries: StreamEntry[] = [];
  const decoded: StreamEntry[] = [];
  let expected = start;
  let previousTime = -1;
  let previousEpoch = 0;
  const fail = (key: string, problem: string): LogWalk => ({ entries, decoded, damage: { key, problem } });
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as LogRow;
    const key = rowKey(sql, "log", id, row.firstSeq);
    if (i === 0 ? row.firstSeq > start : row.firstSeq !== expected) {
      return fail(key, row.firstSeq > expected ? `the log jumps from seq ${expected - 1} to ${row.firstSeq}, so entries are missing` : `it overlaps the previous row at seq ${row.firstSeq}`);
    }
    if (row.epoch < previousEpoch) return fail(key, `its epoch ${row.epoch} is below the previous row's ${previousEpoch}: two owners wrote the log`);
    previousEpoch = row.epoch;
    let segment;
    try {
      segment = decodeSegmentPrefix(key, row.segment);
    } catch (cause) {
      return fail(key, cause instanceof Error ? cause.message : String(cause));
    }
    if (segment.problem !== undefined) return fail(key, segment.problem);
    if (segment.entries.length !== row.lastSeq - row.firstSeq + 1) {
      return fail(key, `it holds ${segment.entries.length} entries for seqs ${row.firstSeq}..${row.lastSeq}`);
    }
    for (let j = 0; j < segment.entries.length; j++) {
      const entry = segment.entries[j] as StreamEntry;
      if (entry.seq !== row.firstSeq + j) return fail(key, `entry ${j} has seq ${entry.seq}, expected ${row.firstSeq + j}`);
      if (entry.time < previousTime) return fail(key, `time goes backwards at seq ${entry.seq} (${entry.time} < ${previousTime})`);
      previousTime = entry.time;
      decoded.push(entry);
      if (entry.seq >= start) entries.push(entry);
    }
    expected = row.lastSeq + 1;
  }
  const headKey = rowKey(sql, "heads", id);
  if (expected - 1 !== head.lastSeq) {
    return fail(headKey, `last_seq is ${head.lastSeq} but the log ${rows.length === 0 ? `after the snapshot is empty (seq ${start - 1})` : `ends at seq ${expected - 1}`}`);
  }
  const last = decoded[decoded.length - 1];
  if (last !== undefined && last.time !== head.lastTime) return fail(headKey, `last_time is ${head.lastTime} but the last entry's time is ${last.time}`);
  return { entries, decoded, damage: undefined };
}

/**
 * Reads everything a node needs to continue session `id`, whose head row is `head`, in the
 * caller's transaction (one that keeps the rows still: the claim's row lock, or a repeatable-read
 * snapshot), exactly as `SessionStore.load` returns it.
 * @throws {SessionDamagedError} naming the row, for anything that does not read back exactly.
 */
export async function readStored(client: pg.ClientBase, sql: ClusterSql, id: string, head: HeadRow): Promise<StoredSession> {
  const found = (await client.query<Record<string, unknown>>(sql.sessionRows, [id])).rows[0];
  const metaBytes = bytesOf(found?.["meta"]);
  const sessionKey = rowKey(sql, "sessions", id);
  if (found === undefined || metaBytes === undefined) throw damagedRow(sql, id, sessionKey, "the session has a head row but no sessions row");
  const meta = rethrowDamage(sql, id, () => decodeMeta(sessionKey, metaBytes, id));
  const persisted = bytesOf(found["persisted"]) ?? new Uint8Array(0);
  const snapshot = readSnapshot(sql, id, found, head);
  const rows = (await client.query<Record<string, unknown>>(sql.logRows, [id, head.snapshotSeq])).rows.map((row) => logRowOf(sql, id, row));
  const walk = walkLog(sql, id, rows, head.snapshotSeq + 1, head);
  if (walk.damage !== undefined) throw damagedRow(sql, id, walk.damage.key, walk.damage.problem);
  const lastEntry = walk.entries[walk.entries.length - 1];
  const lastTime = lastEntry?.time ?? snapshot?.time ?? 0;
  return {
    meta,
    snapshot,
    entries: walk.entries,
    lastSeq: head.lastSeq,
    lastTime,
    timeWatermark: Math.max(head.clock, lastTime),
    liveViews: replayLiveViews(snapshot, walk.entries),
    persisted,
  };
}

function readSnapshot(sql: ClusterSql, id: string, found: Record<string, unknown>, head: HeadRow): StoredSnapshot | undefined {
  const key = rowKey(sql, "snapshots", id);
  const record = bytesOf(found["record"]);
  if (record === undefined) {
    if (head.snapshotSeq !== 0) throw damagedRow(sql, id, key, `the head row says a snapshot at seq ${head.snapshotSeq} is stored, but there is none`);
    return undefined;
  }
  const snapshot = rethrowDamage(sql, id, () => decodeSnapshot(key, record));
  if (snapshot.seq !== countOf(found["snapshot_seq"]) || snapshot.seq !== head.snapshotSeq) {
    throw damagedRow(sql, id, key, `its record is at seq ${snapshot.seq}, its row says ${String(found["snapshot_seq"])} and the head row ${head.snapshotSeq}`);
  }
  return snapshot;
}

function rethrowDamage<T>(sql: ClusterSql, id: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    throw error instanceof SessionDamagedError ? withRemedy(sql, id, error) : error;
  }
}
