// What the cluster stored in PostgreSQL, read directly (schema: the cluster store's tables), and
// the store's own audit (reflector/src/cluster/pg-cluster-audit.ts). The fault test compares what
// clients received with this.
import { createHash } from "node:crypto";
import { decodeEntries, MessageType } from "@lockstep/protocol";
import { importFromRepo, pg } from "./source.mjs";
import { fingerprint, parsePublish } from "./tap.mjs";

const SEGMENT_TAG = 0x4c; // "L", format 1: encodeSegment in reflector/src/storage/records.ts
const SEGMENT_FORMAT = 1;

async function withClient(url, fn) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Every session's head: sessionId → { owner (nodeId or null), ownerUrl, epoch, lastSeq }. */
export function readHeads(url, prefix = "lockstep_") {
  return withClient(url, async (c) => {
    const { rows } = await c.query(`SELECT h.session_id, h.owner, h.epoch, h.last_seq, n.url FROM ${prefix}heads h LEFT JOIN ${prefix}nodes n ON n.node_id = h.owner`);
    return new Map(rows.map((r) => [r.session_id, { owner: r.owner, ownerUrl: r.url ?? undefined, epoch: Number(r.epoch), lastSeq: Number(r.last_seq) }]));
  });
}

/** The node rows: nodeId → url. */
export function readNodes(url, prefix = "lockstep_") {
  return withClient(url, async (c) => {
    const { rows } = await c.query(`SELECT node_id, url FROM ${prefix}nodes`);
    return new Map(rows.map((r) => [r.node_id, r.url]));
  });
}

/**
 * Every stored session: { owner, epoch, lastSeq, lastTime, snapshotSeq, entries: Map seq → { fp,
 * time, epoch, pub } } and the problems this reading found (the schema's invariants: rows
 * contiguous from snapshot_seq + 1 to last_seq, no seq twice, times and epochs never decreasing
 * along seq, each row's entries numbered first_seq … last_seq).
 */
export function readStorage(url, prefix = "lockstep_") {
  return withClient(url, async (c) => {
    const heads = await c.query(`SELECT session_id, owner, epoch, last_seq, last_time, snapshot_seq FROM ${prefix}heads ORDER BY session_id`);
    const log = await c.query(`SELECT session_id, first_seq, last_seq, epoch, segment FROM ${prefix}log ORDER BY session_id, first_seq`);
    const sessions = new Map();
    const problems = [];
    for (const h of heads.rows) {
      sessions.set(h.session_id, {
        owner: h.owner,
        epoch: Number(h.epoch),
        lastSeq: Number(h.last_seq),
        lastTime: Number(h.last_time),
        snapshotSeq: Number(h.snapshot_seq),
        entries: new Map(),
        rows: [],
      });
    }
    for (const row of log.rows) {
      const s = sessions.get(row.session_id);
      if (s === undefined) {
        problems.push(`log row ${row.session_id}/${row.first_seq} has no head row`);
        continue;
      }
      s.rows.push(row);
    }
    for (const [id, s] of sessions) {
      let expected = s.snapshotSeq + 1;
      let lastTime = -1;
      let lastEpoch = 0;
      for (const row of s.rows) {
        const first = Number(row.first_seq);
        const last = Number(row.last_seq);
        const epoch = Number(row.epoch);
        // Rows at or below the snapshot may linger until the trim commits; they must still agree.
        if (last <= s.snapshotSeq) continue;
        // The first row kept may straddle the snapshot (a segment is trimmed whole, once all of it is below).
        const straddles = expected === s.snapshotSeq + 1 && first < expected && last >= expected && lastEpoch === 0;
        if (first !== expected && !straddles) problems.push(`${id}: log row starts at #${first}, expected #${expected} (${first > expected ? "gap" : "overlap"})`);
        if (epoch < lastEpoch) problems.push(`${id}: row #${first}–#${last} has epoch ${epoch} after epoch ${lastEpoch} (an older owner wrote after a newer one)`);
        lastEpoch = Math.max(lastEpoch, epoch);
        const seg = row.segment;
        if (seg.length < 2 || seg[0] !== SEGMENT_TAG || seg[1] !== SEGMENT_FORMAT) {
          problems.push(`${id}: row #${first} is not a format-1 log segment`);
          expected = last + 1;
          continue;
        }
        let entries;
        try {
          entries = decodeEntries(seg.subarray(2));
        } catch (error) {
          problems.push(`${id}: row #${first} does not decode: ${error instanceof Error ? error.message : String(error)}`);
          expected = last + 1;
          continue;
        }
        if (entries.length !== last - first + 1) problems.push(`${id}: row #${first}–#${last} holds ${entries.length} entries`);
        for (const [i, e] of entries.entries()) {
          if (e.seq !== first + i) problems.push(`${id}: row #${first} holds #${e.seq} at position ${i}`);
          if (s.entries.has(e.seq)) problems.push(`${id}: #${e.seq} stored twice`);
          if (e.time < lastTime) problems.push(`${id}: #${e.seq} at time ${e.time} after time ${lastTime}`);
          lastTime = Math.max(lastTime, e.time);
          const parsed = e.type === MessageType.Relay ? parsePublish(e.payload) : undefined;
          s.entries.set(e.seq, { fp: fingerprint(e), time: e.time, epoch, pub: parsed ? `${parsed.tag}:${parsed.n}` : undefined });
        }
        expected = last + 1;
      }
      if (s.lastSeq > s.snapshotSeq && expected !== s.lastSeq + 1) problems.push(`${id}: log ends at #${expected - 1} but the head says #${s.lastSeq}`);
      if (s.lastSeq > 0 && s.lastTime < lastTime) problems.push(`${id}: head time ${s.lastTime} behind the log's ${lastTime}`);
      delete s.rows;
    }
    return { sessions, problems };
  });
}

/**
 * The cluster store's own audit of every stored log (checkClusterLogs, also exported as
 * auditClusterLogs): its problems (empty when sound), and each session's entries as fingerprints
 * (seq → fp, as tap.mjs computes them), to compare with the direct reading. Throws if the module
 * or its function is missing.
 */
export async function storeAudit(url, prefix = "lockstep_") {
  const mod = await importFromRepo("reflector/src/cluster/pg-cluster-audit.ts");
  const audit = mod.auditClusterLogs ?? mod.checkClusterLogs;
  if (typeof audit !== "function") throw new Error("reflector/src/cluster/pg-cluster-audit.ts exports neither auditClusterLogs nor checkClusterLogs");
  const result = await audit(url, prefix);
  const sessions = new Map();
  for (const s of result.sessions ?? []) {
    const entries = new Map();
    for (const [seq, bytes] of s.entries) entries.set(seq, createHash("sha256").update(bytes).digest("base64url").slice(0, 24));
    sessions.set(s.sessionId, { lastSeq: s.lastSeq, snapshotSeq: s.snapshotSeq, entries });
  }
  return { problems: (result.problems ?? []).map(String), sessions };
}

/** Where the store's audit and the direct reading disagree about what is stored. */
export function compareReadings(audit, storage) {
  const problems = [];
  for (const [id, s] of storage.sessions) {
    const a = audit.sessions.get(id);
    if (a === undefined) {
      problems.push(`${id}: in the heads table but not in the store's audit`);
      continue;
    }
    if (a.lastSeq !== s.lastSeq || a.snapshotSeq !== s.snapshotSeq) problems.push(`${id}: the audit says #${a.snapshotSeq}–#${a.lastSeq}, the table #${s.snapshotSeq}–#${s.lastSeq}`);
    for (const [seq, e] of s.entries) {
      if (a.entries.get(seq) !== e.fp) problems.push(`${id}: #${seq} differs between the audit and the direct reading`);
    }
  }
  return problems;
}
