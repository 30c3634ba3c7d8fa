#!/usr/bin/env node
// The cluster fault test (issue 18): PostgreSQL and 3 reflector nodes (`--cluster`) as real
// processes on loopback, tens of sessions of clients publishing (raw wire clients that follow
// redirects and rotate through every node's URL, plus real @lockstep/client replicas), and the
// faults a cluster must survive:
//   1. SIGKILL of an owner (restarted afterwards, a new nodeId);
//   2. SIGSTOP of an owner for 2 s: no takeover, no disconnect;
//   3. SIGSTOP of an owner past its lease: taken over; once resumed it sends nothing more (witness
//      connections that never give up on it watch) and gives its sessions up;
//   4. simultaneous first joins of new sessions on every node: one owner, one stream;
//   5. SIGTERM: the node drains (Redirect + 4017 to a live node) and exits 0; restarted;
//   6. a PostgreSQL restart (scripts/postgres.sh restart): every session goes on.
// Then, over everything: the stored logs (the store's audit and a direct reading) contiguous, no
// seq twice, times and epochs never decreasing; every (session, seq) any connection received
// equal to storage (or, trimmed by a snapshot, to what the others got); every acknowledged
// publish in the stream exactly once, none twice; real replicas identical; no joined connection
// closed unless a fault of its own node (or PostgreSQL's) explains it. Exit 1 on any failure.
//
//   node scripts/build.mjs && node scripts/cluster/faults.mjs [--quick] [--minutes 10] [--keep] [--verbose]
// --quick    the test command's form: each fault once, 12 sessions (about a minute).
// without    the soak: 40+ sessions, the faults repeated (SIGKILL most often) for --minutes.
// --keep     keep the node logs (printed path).
// Everything runs on 127.0.0.1 and is bounded in time; only processes it started are stopped, by
// PID, however it ends.
import { parseArgs } from "node:util";
import { TestCluster } from "./lib/cluster.mjs";
import { Load } from "./lib/load.mjs";
import { checkReplicas } from "./lib/replicas.mjs";
import { FaultRun, drain, killOwner, pauseLong, pauseShort, restartPostgres, simultaneousJoins } from "./lib/steps.mjs";
import { compareReadings, readStorage, storeAudit } from "./lib/storage.mjs";
import { ms, now, percentile, sleep, withTimeout } from "./lib/time.mjs";
import { judge } from "./lib/verdict.mjs";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    minutes: { type: "string", default: "10" },
    keep: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
    "lease-ms": { type: "string", default: "5000" },
    "renew-ms": { type: "string", default: "1000" },
  },
});
const QUICK = args.quick;
const MINUTES = Number(args.minutes);
const LEASE_MS = Number(args["lease-ms"]);
const RENEW_MS = Number(args["renew-ms"]);
if (!(MINUTES > 0) || !(LEASE_MS > 0) || !(RENEW_MS > 0)) {
  console.error("faults: --minutes, --lease-ms and --renew-ms must be positive numbers");
  process.exit(2);
}
const SHAPE = QUICK
  ? { raw: 9, snapshotting: 3, clients: [3], real: 3, rate: 8, simultaneous: 3 }
  : { raw: 40, snapshotting: 36, clients: [2, 3, 4], real: 4, rate: 5, simultaneous: 4 };
const DEADLINE_MS = QUICK ? 170_000 : MINUTES * 60_000 + 240_000;
const started = now();

const print = (line) => void process.stdout.write(line + "\n");
const log = (line) => print(`[${((now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`);

// The client library's console lines (a lost connection is a warning) stay out of the report.
const libraryLog = [];
if (!args.verbose) {
  for (const method of ["log", "info", "warn", "error", "debug"]) {
    console[method] = (...parts) => {
      libraryLog.push(parts.map(String).join(" "));
      if (libraryLog.length > 200) libraryLog.shift();
    };
  }
}

const cluster = new TestCluster({
  size: 3,
  keep: args.keep,
  clusterArgs: ["--lease-ms", String(LEASE_MS), "--renew-ms", String(RENEW_MS)],
  extraArgs: ["--snapshot-messages", "200", "--new-sessions-per-address-per-minute", "100000", "--max-connections-per-address", "100000"],
});
let load;
process.on("exit", () => {
  load?.terminate();
  cluster.cleanup();
});
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));
setTimeout(() => {
  print(`faults: not done after ${DEADLINE_MS / 1000} s, giving up (FAIL)`);
  process.exit(1);
}, DEADLINE_MS).unref();

/**
 * Sessions at the start, owners spread over the nodes: raw ones and real replicas. Most raw ones
 * answer snapshot rounds (as every real client does, so their logs get trimmed); the others keep
 * their whole log, so takeovers also read long logs.
 */
async function populate() {
  const jobs = [];
  for (let i = 0; i < SHAPE.raw; i++) {
    const clients = SHAPE.clients[i % SHAPE.clients.length];
    jobs.push(() => load.addRaw(clients, i % cluster.size, { snapshots: i < SHAPE.snapshotting }));
  }
  for (let i = 0; i < SHAPE.real; i++) jobs.push(() => load.addReal(2, i % cluster.size));
  // A few at a time: every first Join creates a session, and the rest follow it.
  for (let i = 0; i < jobs.length; i += 6) await Promise.all(jobs.slice(i, i + 6).map((job) => job()));
}

/** The faults, once each (quick) or repeated until the soak's time is up. */
async function faults(run) {
  const cycle = QUICK
    ? [killOwner, pauseShort, pauseLong, (r) => simultaneousJoins(r, SHAPE.simultaneous), drain, restartPostgres]
    : [killOwner, pauseShort, killOwner, pauseLong, (r) => simultaneousJoins(r, SHAPE.simultaneous, { retire: true }), drain, killOwner, restartPostgres];
  const end = started + MINUTES * 60_000;
  let round = 0;
  do {
    round++;
    if (!QUICK) log(`soak round ${round}`);
    for (const fault of cycle) {
      await fault(run);
      await run.crashed();
      // Steady load between faults, so each starts from a cluster that is fully live.
      await run.waitLive(now(), 20_000, "between faults");
      await sleep(QUICK ? 500 : 3000);
      if (!QUICK && now() > end) break;
    }
  } while (!QUICK && now() < end);
}

/** Quiet, let in-flight publishes come back, compare the real replicas, leave, stop the nodes. */
async function finish(run) {
  load.quiet();
  const wire = load.active.filter((c) => c.published instanceof Map);
  await withTimeout((async () => { while (wire.some((c) => c.inFlight > 0)) await sleep(25); })(), 10_000, "in-flight publishes").catch(() =>
    run.problems.push(`publishes still unanswered 10 s after the load stopped: ${wire.filter((c) => c.inFlight > 0).map((c) => c.record.label).join(", ")}`),
  );
  const replicas = { sessions: 0, items: 0, sent: 0 };
  for (const g of load.groups.filter((g) => g.kind === "real")) {
    try {
      const points = await checkReplicas(g.clients, `check-${g.n}`);
      replicas.sessions++;
      const [a] = points;
      for (const p of points.slice(1)) {
        if (p.seq !== a.seq || p.hash !== a.hash) run.problems.push(`real replicas of s${g.n} differ: ${a.label} #${a.seq} ${a.hash.slice(0, 12)} vs ${p.label} #${p.seq} ${p.hash.slice(0, 12)}`);
      }
      if (new Set(a.items).size !== a.items.length) run.problems.push(`real replicas of s${g.n}: an item was applied twice (duplicate publish)`);
      replicas.items += a.items.length;
      replicas.sent += g.clients.reduce((n, c) => n + c.sent, 0);
    } catch (error) {
      run.problems.push(`real replicas of s${g.n}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  await run.crashed();
  run.windows.push({ node: "*", from: now(), to: Infinity }); // the teardown closes everything
  await load.stop();
  const stops = await cluster.stopNodes();
  await run.crashed({ restart: false });
  for (const [i, s] of stops.entries()) if (s.code !== 0 && !s.crashed) run.problems.push(`${cluster.nodes[i].name}: final SIGTERM exited ${s.code ?? s.signal}${s.killed ? " (killed)" : ""}`);
  return replicas;
}

function summary(run, verdict, storage, audit, replicas) {
  const f = run.failovers;
  const figure = (xs) => (xs.length ? `p50 ${ms(percentile(xs, 50))}, p99 ${ms(percentile(xs, 99))}, max ${ms(Math.max(...xs))} (n=${xs.length})` : "-");
  const c = verdict.counts;
  print("");
  print(`faults run: SIGKILL ×${run.counts.kill}, 2 s SIGSTOP ×${run.counts.pauseShort}, SIGSTOP past the lease ×${run.counts.pauseLong}, simultaneous first joins ×${run.counts.simultaneous}, drain ×${run.counts.drain}, PostgreSQL restart ×${run.counts.postgres}`);
  print(`sessions ${c.sessions} (${load.groups.filter((g) => g.kind === "real").length} of real replicas), clients ${load.clients.length}, connections ${c.connections} (${c.closesExplained} closed by a fault of their node)`);
  print(`stored entries ${c.entriesStored}, entries received ${c.entriesReceived}; raw publishes ${c.publishes} (${c.acked} acknowledged); real replicas: ${replicas.sessions} sessions compared, ${replicas.items} items applied of ${replicas.sent} published`);
  print(`store audit: ${audit.error ?? `${audit.problems.length} problems over ${audit.sessions.size} sessions`}; direct reading: ${storage.problems.length} problems`);
  print(`failover, fault → every client of the owner's sessions live again (rejoined + a new Relay):`);
  print(`  SIGKILL                ${figure(f.kill)}`);
  print(`  SIGSTOP past the lease ${figure(f.pause)}`);
  print(`  SIGTERM drain          ${figure(f.drain)}`);
  print(`  PostgreSQL restart     ${figure(f.postgres)} (all sessions)`);
}

async function main() {
  log(`cluster fault test: ${QUICK ? "quick" : `soak, ${MINUTES} min`}; lease ${LEASE_MS} ms, renewal ${RENEW_MS} ms; Node ${process.version}`);
  await cluster.start();
  log(`PostgreSQL and ${cluster.size} nodes up: ${cluster.urls.join(" ")}`);
  load = new Load(cluster, { rate: SHAPE.rate, realRate: 5, silenceMs: 3500, snapshotBytes: 256 });
  const run = new FaultRun(cluster, load, { leaseMs: LEASE_MS, log });
  let replicas = { sessions: 0, items: 0, sent: 0 };
  let storage = { problems: [], sessions: new Map() };
  let audit = { problems: [], sessions: new Map() };
  try {
    await populate();
    load.publish();
    await run.waitLive(now(), 15_000, "the load starting");
    log(`${load.groups.length} sessions, ${load.clients.length} clients publishing`);
    await faults(run);
    replicas = await finish(run);
  } catch (error) {
    run.problems.push(`harness error: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    load.terminate();
    await cluster.stopNodes().catch(() => undefined);
  }
  try {
    storage = await readStorage(cluster.postgresUrl);
  } catch (error) {
    run.problems.push(`could not read storage: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    audit = await storeAudit(cluster.postgresUrl);
  } catch (error) {
    audit = { problems: [], sessions: new Map(), error: `failed: ${error instanceof Error ? error.message : String(error)}` };
    run.problems.push(`store audit ${audit.error}`);
  }
  const verdict = judge(load.groups, storage, run.windows);
  const readings = audit.error ? [] : compareReadings(audit, storage);
  const problems = [...run.problems, ...audit.problems.map((p) => `store audit: ${p}`), ...storage.problems.map((p) => `storage: ${p}`), ...readings.map((p) => `audit vs table: ${p}`), ...verdict.problems];
  summary(run, verdict, storage, audit, replicas);
  print("");
  if (problems.length) {
    print(`FAIL: ${problems.length} problems`);
    for (const p of problems.slice(0, 60)) print(`  - ${p}`);
    if (problems.length > 60) print(`  … and ${problems.length - 60} more`);
    if (args.verbose && libraryLog.length) print(`last client library lines:\n  ${libraryLog.slice(-10).join("\n  ")}`);
  } else print(`PASS in ${((now() - started) / 1000).toFixed(0)} s`);
  await cluster.stop();
  process.exit(problems.length ? 1 : 0);
}

await main();
