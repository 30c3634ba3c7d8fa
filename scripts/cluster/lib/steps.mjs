// The faults of the cluster test, one function each, run against a live cluster under load. Each
// records the window in which its node's connections may close, what it must (not) have changed,
// and how long its clients took to be live again (rejoined and received a new Relay).
import { readHeads } from "./storage.mjs";
import { MessageType } from "@lockstep/protocol";
import { waitFor } from "./cluster.mjs";
import { ms, now, percentile, sleep } from "./time.mjs";

/** The state of one run that the faults share. */
export class FaultRun {
  constructor(cluster, load, { leaseMs, log }) {
    Object.assign(this, { cluster, load, leaseMs, log });
    this.windows = [];
    this.problems = [];
    this.failovers = { kill: [], pause: [], drain: [], postgres: [] };
    this.counts = { kill: 0, pauseShort: 0, pauseLong: 0, simultaneous: 0, drain: 0, postgres: 0 };
  }

  #crashesSeen = 0;

  /** Reports nodes that died without being told to since the last call, and starts them again. */
  async crashed({ restart = true } = {}) {
    const crashes = this.cluster.crashes.slice(this.#crashesSeen);
    this.#crashesSeen = this.cluster.crashes.length;
    for (const c of crashes) this.problems.push(`${c.node} crashed (exit ${c.code ?? c.signal}): ${c.stderr.split("\n").filter((l) => /Error|error/.test(l)).slice(0, 3).join(" | ") || c.stderr.slice(-300)}`);
    const restarted = restart ? await this.cluster.restartCrashed() : [];
    if (restarted.length) this.log(`  ${restarted.join(", ")} crashed: restarted`);
  }

  /** Our sessions by the URL of their owner (heads joined with nodes). */
  async owners() {
    const heads = await readHeads(this.cluster.postgresUrl);
    const byUrl = new Map();
    for (const g of this.load.groups) {
      const h = heads.get(g.sessionId);
      if (h?.ownerUrl === undefined) continue;
      if (!byUrl.has(h.ownerUrl)) byUrl.set(h.ownerUrl, []);
      byUrl.get(h.ownerUrl).push(g);
    }
    return { heads, byUrl };
  }

  /** The running node owning the most of our sessions (real-replica sessions weigh more: they must see faults too). */
  async busiest() {
    const { heads, byUrl } = await this.owners();
    let best;
    let bestScore = -1;
    for (const node of this.cluster.nodes) {
      if (!node.running) continue;
      const groups = byUrl.get(node.url) ?? [];
      const score = groups.length + 3 * groups.filter((g) => g.kind === "real").length;
      if (score > bestScore) [best, bestScore] = [node, score];
    }
    return { node: best, groups: byUrl.get(best.url) ?? [], heads };
  }

  /** Clients joined on `node` right now. */
  on(node) {
    return this.load.active.filter((c) => {
      const conn = c.record.current;
      return conn?.node === node.name && conn.syncAt !== undefined && conn.closedAt === undefined;
    });
  }

  /** Waits until every client is live with an entry since `since`; a problem (not a throw) if not within `timeoutMs`. */
  async waitLive(since, timeoutMs, what) {
    try {
      await waitFor(() => this.load.notLive(since).length === 0, timeoutMs, what);
      return true;
    } catch {
      const stuck = this.load.notLive(since);
      const where = stuck.slice(0, 8).map((c) => {
        const conn = c.record.current;
        return `${c.record.label} (${conn ? `${conn.node}, ${conn.syncAt === undefined ? "not joined" : conn.closedAt === undefined ? "joined" : `closed ${conn.code}`}` : "no connection"})`;
      });
      this.problems.push(`${what}: ${stuck.length} clients not live again within ${timeoutMs / 1000} s: ${where.join(", ")}${stuck.length > 8 ? " …" : ""}`);
      return false;
    }
  }

  /** What `clients` did after `t0`, for a problem report: each one's connections since then. */
  static story(clients, t0) {
    return clients
      .map((c) => {
        const conns = c.record.conns.filter((k) => (k.closedAt ?? Infinity) >= t0);
        const one = (k) => `${k.node}${k.syncAt !== undefined ? ` joined +${(k.syncAt - t0).toFixed(0)}ms` : ""}${k.firstRelayAt !== undefined ? ` relay +${(k.firstRelayAt - t0).toFixed(0)}ms` : ""}${k.closedAt !== undefined ? ` closed ${k.code} ${k.by ?? ""} +${(k.closedAt - t0).toFixed(0)}ms` : ""}`;
        return `${c.record.label} [${conns.map(one).join("; ")}]`;
      })
      .join(", ");
  }

  /** The clients among `clients` that did not rejoin after `t0` (see liveAgain). */
  static notBack(clients, t0) {
    return clients.filter((c) => !c.record.conns.some((k) => k.syncAt !== undefined && k.syncAt > t0 && k.firstRelayAt !== undefined));
  }

  /** Waits (at most `timeoutMs`) until each of `clients` rejoined after `t0` and got a Relay there. */
  static async back(clients, t0, timeoutMs = 10_000) {
    await waitFor(() => FaultRun.notBack(clients, t0).length === 0, timeoutMs, "").catch(() => undefined);
  }

  /** Each of `clients`: ms from `t0` to its first Relay on a connection joined after `t0`. */
  static liveAgain(clients, t0) {
    const out = [];
    for (const c of clients) {
      const conn = c.record.conns.find((k) => k.syncAt !== undefined && k.syncAt > t0 && k.firstRelayAt !== undefined);
      if (conn !== undefined) out.push(conn.firstRelayAt - t0);
    }
    return out;
  }

  note(fault, node, groups, affected, times) {
    const figure = times.length ? `live again p50 ${ms(percentile(times, 50))}, max ${ms(Math.max(...times))}` : "no client measured";
    this.log(`  ${fault} ${node.name}: ${groups.length} sessions, ${affected.length} clients on it; ${figure}`);
  }
}

/** 1. SIGKILL of the busiest owner; its clients go elsewhere; then it restarts (a new nodeId). */
export async function killOwner(run) {
  const { node, groups } = await run.busiest();
  const affected = run.on(node);
  const t0 = now();
  const window = { node: node.name, from: t0, to: Infinity };
  run.windows.push(window);
  await node.kill();
  await run.waitLive(t0, 25_000, `after SIGKILL of ${node.name}`);
  await FaultRun.back(affected, t0);
  const times = FaultRun.liveAgain(affected, t0);
  run.failovers.kill.push(...times);
  if (times.length < affected.length) run.problems.push(`SIGKILL ${node.name}: ${affected.length - times.length} of its ${affected.length} clients never rejoined: ${FaultRun.story(FaultRun.notBack(affected, t0), t0)}`);
  await node.start();
  window.to = now();
  run.counts.kill++;
  run.note("fault 1: SIGKILL", node, groups, affected, times);
}

/** 2. SIGSTOP of the busiest owner for 2 s: no takeover, no disconnect, and it goes on. */
export async function pauseShort(run) {
  const { node, groups, heads } = await run.busiest();
  const affected = run.on(node);
  const before = new Map(groups.map((g) => [g.sessionId, heads.get(g.sessionId)]));
  const conns = new Map(affected.map((c) => [c, c.record.current]));
  const problemsBefore = run.problems.length;
  node.signal("SIGSTOP");
  await sleep(2000);
  node.signal("SIGCONT");
  const tc = now();
  await run.waitLive(tc, 15_000, `after a 2 s SIGSTOP of ${node.name}`);
  const after = await readHeads(run.cluster.postgresUrl);
  for (const [id, h] of before) {
    const a = after.get(id);
    if (a?.owner !== h.owner || a?.epoch !== h.epoch) {
      run.problems.push(`2 s SIGSTOP of ${node.name}: session ${id} changed owner/epoch (${h.owner}@${h.epoch} → ${a?.owner}@${a?.epoch}): a short pause caused a takeover`);
    }
  }
  for (const [c, conn] of conns) {
    if (c.record.current !== conn || conn.closedAt !== undefined) run.problems.push(`2 s SIGSTOP of ${node.name}: ${c.record.label} lost its connection (code ${conn.code}, ${conn.by})`);
  }
  run.counts.pauseShort++;
  run.log(`  fault 2: 2 s SIGSTOP ${node.name}: ${groups.length} sessions, ${affected.length} clients; owners, epochs and connections unchanged: ${run.problems.length === problemsBefore ? "yes" : "NO"}`);
}

/**
 * 3. SIGSTOP of the busiest owner past its lease: its sessions are taken over; once resumed it
 * sends nothing more on them (watched by witness connections that never give up on it) and closes.
 */
export async function pauseLong(run) {
  const { node, groups, heads } = await run.busiest();
  const witnesses = [];
  for (const g of groups.filter((g) => g.kind === "raw")) witnesses.push(await run.load.addWitness(g, node.url));
  const affected = run.on(node);
  const before = new Map(groups.map((g) => [g.sessionId, heads.get(g.sessionId)]));
  const t0 = now();
  const window = { node: node.name, from: t0, to: Infinity };
  run.windows.push(window);
  node.signal("SIGSTOP");
  await sleep(run.leaseMs + 2000);
  const tc = now();
  for (const w of witnesses) w.watchFrom(tc);
  node.signal("SIGCONT");
  await run.waitLive(tc, 25_000, `after a ${(run.leaseMs + 2000) / 1000} s SIGSTOP of ${node.name}`);
  try {
    await waitFor(() => witnesses.every((w) => w.record.current.closedAt !== undefined), 10_000, "");
  } catch {
    run.problems.push(`${node.name} resumed after its lease expired but kept ${witnesses.filter((w) => w.record.current.closedAt === undefined).length} of ${witnesses.length} witness connections open 10 s later (it must give its sessions up)`);
  }
  await FaultRun.back(affected, t0);
  window.to = now();
  // Taken over: the epoch moved on (another node claimed it, or the resumed node claimed it anew
  // once its lease was back, when clients came back to it: either way its old ownership is fenced).
  const after = await readHeads(run.cluster.postgresUrl);
  let reclaimed = 0;
  for (const [id, h] of before) {
    const a = after.get(id);
    if (!(a?.epoch > h.epoch)) run.problems.push(`SIGSTOP past the lease of ${node.name}: session ${id} was not taken over (${h.owner}@${h.epoch} → ${a?.owner}@${a?.epoch})`);
    else if (a.owner === h.owner) reclaimed++;
  }
  const codes = new Map();
  for (const w of witnesses) {
    const conn = w.record.current;
    codes.set(conn.code, (codes.get(conn.code) ?? 0) + 1);
    // The Error frame a close carries (its code 4018) is part of the close; anything else is not.
    const sent = conn.after.filter((f) => !(f.type === MessageType.Error && f.code === 4018));
    if (sent.length > 0) {
      const frames = sent.map((f) => `0x${f.type.toString(16)}${f.seq !== undefined ? `#${f.seq}` : ""}@+${(f.at - tc).toFixed(0)}ms`);
      run.problems.push(`${node.name} sent ${sent.length} frames to ${w.record.label} after SIGCONT, past its lease (it must send nothing more): ${frames.slice(0, 10).join(" ")}`);
    }
  }
  const times = FaultRun.liveAgain(affected, t0);
  run.failovers.pause.push(...times);
  if (times.length < affected.length) run.problems.push(`SIGSTOP past the lease of ${node.name}: ${affected.length - times.length} of its ${affected.length} clients never rejoined: ${FaultRun.story(FaultRun.notBack(affected, t0), t0)}`);
  run.counts.pauseLong++;
  run.note(`fault 3: ${(run.leaseMs + 2000) / 1000} s SIGSTOP`, node, groups, affected, times);
  if (reclaimed) run.log(`    ${reclaimed} of its sessions claimed anew by ${node.name} itself once its lease was back (their clients came back to it)`);
  run.log(`    ${witnesses.length} witnesses closed with ${[...codes].map(([c, n]) => `${c}×${n}`).join(", ")}; frames after SIGCONT (the close's Error frame included): ${witnesses.reduce((n, w) => n + w.record.current.after.length, 0)}`);
}

/**
 * 4. `count` new sessions, each joined at once on every node: one owner, one stream. `retire`
 * (the soak): the sessions of the previous call leave, so the load stays the same size.
 */
export async function simultaneousJoins(run, count, { retire = false } = {}) {
  const problemsBefore = run.problems.length;
  if (retire && run.simultaneous) await run.load.retire(run.simultaneous);
  const groups = await Promise.all(Array.from({ length: count }, () => run.load.addSimultaneous({ snapshots: retire })));
  run.simultaneous = groups;
  try {
    await waitFor(() => groups.every((g) => g.clients.every((c) => c.record.lastSeq >= g.clients.length)), 10_000, "");
  } catch {
    run.problems.push(`simultaneous first joins: not every client saw every view-join within 10 s`);
  }
  const heads = await readHeads(run.cluster.postgresUrl);
  const epochs = [];
  for (const g of groups) {
    const h = heads.get(g.sessionId);
    epochs.push(h?.epoch);
    const nodes = new Set(g.clients.map((c) => c.record.current.node));
    const owner = run.cluster.nodeOf(h?.ownerUrl ?? "")?.name;
    if (nodes.size !== 1 || owner === undefined || !nodes.has(owner)) {
      run.problems.push(`simultaneous first joins of s${g.n}: clients ended on ${[...nodes].join(", ")}, the head names ${owner ?? "no owner"} (epoch ${h?.epoch})`);
    }
    for (let seq = 1; seq <= g.clients.length; seq++) {
      const fps = new Set(g.clients.map((c) => c.record.received.get(seq)?.fp));
      if (fps.size !== 1 || fps.has(undefined)) run.problems.push(`simultaneous first joins of s${g.n}: the clients' streams differ at #${seq}`);
    }
  }
  for (const g of groups) for (const c of g.clients) c.publish();
  run.counts.simultaneous += count;
  run.log(`  fault 4: ${count} sessions joined at once on all ${run.cluster.size} nodes: epochs ${epochs.join(", ")}; one owner and one stream each: ${run.problems.length === problemsBefore ? "yes" : "NO"}`);
}

/** 5. SIGTERM of the busiest owner: it hands its clients over (Redirect + 4017) and exits 0; then it restarts. */
export async function drain(run) {
  const { node, groups } = await run.busiest();
  const affected = run.on(node);
  const conns = new Map(affected.map((c) => [c, c.record.current]));
  const t0 = now();
  const window = { node: node.name, from: t0, to: Infinity };
  run.windows.push(window);
  const status = await node.terminate(15_000);
  if (status.code !== 0) run.problems.push(`SIGTERM of ${node.name}: exited with ${status.code ?? status.signal}${status.killed ? " (killed after 15 s)" : ""}, not 0`);
  await run.waitLive(t0, 20_000, `after the drain of ${node.name}`);
  await FaultRun.back(affected, t0);
  const codes = new Map();
  for (const [c, conn] of conns) {
    codes.set(conn.code, (codes.get(conn.code) ?? 0) + 1);
    if (conn.code !== 4017 || conn.redirect === undefined) run.problems.push(`drain of ${node.name}: ${c.record.label} was closed with ${conn.code}${conn.redirect ? "" : " and no Redirect"}, not handed over (Redirect + 4017)`);
  }
  const times = FaultRun.liveAgain(affected, t0);
  run.failovers.drain.push(...times);
  await node.start();
  window.to = now();
  run.counts.drain++;
  run.note("fault 5: SIGTERM drain", node, groups, affected, times);
  run.log(`    drained clients closed with ${[...codes].map(([c, n]) => `${c}×${n}`).join(", ") || "-"}`);
}

/** 6. scripts/postgres.sh restart: every session goes on afterwards. */
export async function restartPostgres(run) {
  const t0 = now();
  const window = { node: "*", from: t0, to: Infinity };
  run.windows.push(window);
  const took = await run.cluster.restartPostgres();
  const back = now();
  const ok = await run.waitLive(back, 30_000, "after the PostgreSQL restart");
  const all = now() - t0;
  window.to = now();
  const closed = run.load.active.filter((c) => c.record.conns.some((k) => k.closedAt !== undefined && k.closedAt >= t0 && k.syncAt !== undefined)).length;
  if (ok) run.failovers.postgres.push(all);
  run.counts.postgres++;
  run.log(`  fault 6: PostgreSQL restart (${ms(took)}): every session live again ${ms(all)} after it began; ${closed} clients reconnected`);
}
