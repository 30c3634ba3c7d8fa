// The pass criteria that hold for a whole run, over what every connection recorded and what the
// cluster stored: nothing received is missing from storage or differs from it or from what another
// connection got at that seq, every acknowledged publish is in the stream exactly once, no publish
// twice, session time never going back, and no joined connection closed unless a fault of its own
// node (or of PostgreSQL) explains it.

/** Where `client`'s publishes are: the raw client's `published` map (real replicas are checked by their model). */
const isWire = (c) => c.published instanceof Map;

/**
 * Compares every group's records with `storage` (readStorage). `windows`: faults as { node (name,
 * or "*" for all), from, to } during which that node's connections may close. Returns { problems,
 * counts }.
 */
export function judge(groups, storage, windows) {
  const problems = [];
  const counts = { sessions: 0, entriesStored: 0, entriesReceived: 0, publishes: 0, acked: 0, connections: 0, closesExplained: 0 };
  for (const g of groups) {
    counts.sessions++;
    const all = [...g.clients, ...(g.witnesses ?? [])];
    const stored = storage.sessions.get(g.sessionId);
    if (stored === undefined) {
      problems.push(`session s${g.n} (${g.sessionId}) is not in storage`);
      continue;
    }
    counts.entriesStored += stored.entries.size;
    // The stream as far as anyone knows it: storage, then what clients received of trimmed seqs.
    const stream = new Map(stored.entries);
    for (const c of all) {
      for (const v of c.record.violations) problems.push(v);
      for (const [seq, r] of c.record.received) {
        counts.entriesReceived++;
        const s = stored.entries.get(seq);
        if (s !== undefined) {
          if (s.fp !== r.fp) problems.push(`${c.record.label}: #${seq} (from ${r.node}) differs from the stored entry (altered or forked)`);
          continue;
        }
        if (seq > stored.lastSeq) {
          problems.push(`${c.record.label}: received #${seq} (from ${r.node}) but the stored log ends at #${stored.lastSeq} (a relayed entry lost)`);
          continue;
        }
        if (seq > stored.snapshotSeq) {
          problems.push(`${c.record.label}: received #${seq} (from ${r.node}), which storage lacks below its head #${stored.lastSeq}`);
          continue;
        }
        // Trimmed by a snapshot: compare with the other connections only.
        const other = stream.get(seq);
        if (other === undefined) stream.set(seq, r);
        else if (other.fp !== r.fp) problems.push(`${c.record.label}: #${seq} (from ${r.node}) differs from what another connection got (fork)`);
      }
    }
    // Time never goes back along seq, in storage and in what clients got.
    const seqs = [...stream.keys()].sort((a, b) => a - b);
    let lastTime = -1;
    for (const seq of seqs) {
      const t = stream.get(seq).time;
      if (t < lastTime) problems.push(`s${g.n}: #${seq} at session time ${t} after ${lastTime}`);
      lastTime = Math.max(lastTime, t);
    }
    // Each publish at most once in the stream, each acknowledged one exactly once.
    const at = new Map();
    for (const seq of seqs) {
      const pub = stream.get(seq).pub;
      if (pub === undefined) continue;
      if (at.has(pub)) problems.push(`s${g.n}: publish ${pub} appears twice, at #${at.get(pub)} and #${seq} (duplicate)`);
      else at.set(pub, seq);
    }
    for (const c of g.clients.filter(isWire)) {
      for (const [n, p] of c.published) {
        counts.publishes++;
        if (p.ackedAt === undefined) continue;
        counts.acked++;
        const seq = at.get(`${c.tag}:${n}`);
        if (seq === undefined) problems.push(`${c.record.label}: its message ${n} was acknowledged (relayed back at #${p.seq}) but is not in the session's stream (lost)`);
        else if (seq !== p.seq) problems.push(`${c.record.label}: its message ${n} was relayed back at #${p.seq} but is stored at #${seq}`);
      }
    }
    // Disconnects: a joined connection that closed must be explained by a fault of its node.
    for (const c of all) {
      for (const conn of c.record.conns) {
        counts.connections++;
        if (conn.syncAt === undefined || conn.closedAt === undefined || conn.by === "leave" || conn.by === "teardown") continue;
        const explained = windows.some((w) => (w.node === "*" || w.node === conn.node) && conn.closedAt >= w.from && conn.closedAt <= w.to);
        if (explained) counts.closesExplained++;
        else problems.push(`${c.record.label}: its connection to ${conn.node} closed (${conn.code ?? "?"}${conn.by && conn.by !== "server" ? `, ${conn.by}` : ""}${conn.reason ? ` "${conn.reason}"` : ""}) at ${(conn.closedAt / 1000).toFixed(1)} s with no fault of that node then (a session on a surviving node saw a disconnect)`);
      }
    }
  }
  return { problems, counts };
}
