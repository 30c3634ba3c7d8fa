#!/usr/bin/env node
// Cluster bench (issue 18): PostgreSQL and 3 reflector nodes (`--cluster`) as real processes on
// loopback.
//   Failover: sessions of raw clients (every node's URL listed, following redirects: the fault
//   test's clients) publish steadily; the node owning the most sessions is SIGKILLed (then
//   restarted), SIGSTOPped past its lease (then resumed), or SIGTERMed (it drains; then
//   restarted). Per client of its sessions: fault → live again (rejoined and received a new
//   Relay); p50/p99 over every client of every run, per kind of fault.
//   Throughput per node: many sessions × clients sending as fast as their sockets take frames
//   (scripts/bench/lib/load.mjs, saturating), against a single reflector (`--postgres`, no
//   --cluster) on the same PostgreSQL, against one cluster node alone, and against the 3 nodes
//   with the sessions spread over them; relayed messages/s and the ratios to the single
//   reflector, all measured in the same run.
// Correctness is checked as in the fault test (every received entry equals storage, every
// acknowledged publish stored once, no unexplained disconnect, the stored logs sound); only a
// failed check fails the bench, never a figure.
//
//   node scripts/build.mjs && node scripts/bench/cluster.mjs [--quick] [--runs 5] [--keep]
// --quick  the test command's form: one run of each fault, a small throughput load (~40 s).
import { parseArgs } from "node:util";
import { MessageType } from "@lockstep/protocol";
import { TestCluster } from "../cluster/lib/cluster.mjs";
import { Load } from "../cluster/lib/load.mjs";
import { FaultRun, drain, killOwner, pauseLong } from "../cluster/lib/steps.mjs";
import { compareReadings, readStorage, storeAudit } from "../cluster/lib/storage.mjs";
import { ms, now, percentile, sleep } from "../cluster/lib/time.mjs";
import { judge } from "../cluster/lib/verdict.mjs";
import { saturate } from "./lib/load.mjs";
import { fmt, ratio, table } from "./lib/stats.mjs";
import { dropAll, joinSession, mapLimit, newSessionKeys } from "./lib/wire.mjs";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string", default: "5" },
    keep: { type: "boolean", default: false },
  },
});
const QUICK = args.quick;
const RUNS = QUICK ? 1 : Number(args.runs);
if (!Number.isSafeInteger(RUNS) || RUNS < 1) {
  console.error("cluster bench: --runs must be an integer ≥ 1");
  process.exit(2);
}
const LEASE_MS = 5000;
const FAILOVER = QUICK ? { sessions: 9, clients: 2 } : { sessions: 24, clients: 3 };
const THROUGHPUT = QUICK ? { sessions: 6, clients: 3, messages: 300 } : { sessions: 24, clients: 4, messages: 1000, repeats: 3 };
const DEADLINE_MS = QUICK ? 120_000 : 120_000 + RUNS * 60_000;
const started = now();

const print = (line) => void process.stdout.write(line + "\n");
const log = (line) => print(`[${((now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`);

const cluster = new TestCluster({
  size: 3,
  keep: args.keep,
  // Every reflector at one log level: the throughput comparison must not measure logging.
  logLevel: "warn",
  clusterArgs: ["--lease-ms", String(LEASE_MS), "--renew-ms", "1000"],
  extraArgs: ["--new-sessions-per-address-per-minute", "100000", "--max-connections-per-address", "100000"],
});
let load;
process.on("exit", () => {
  load?.terminate();
  cluster.cleanup();
});
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));
setTimeout(() => {
  print(`cluster bench: not done after ${DEADLINE_MS / 1000} s, giving up (FAIL)`);
  process.exit(1);
}, DEADLINE_MS).unref();

/** {@link throughputOnce} `repeats` times (fresh sessions each time); the run with the median figure. */
async function throughput(urlOf) {
  const results = [];
  for (let i = 0; i < (THROUGHPUT.repeats ?? 1); i++) results.push(await throughputOnce(urlOf));
  return results.sort((a, b) => a.relayed - b.relayed)[results.length >> 1];
}

/** Saturating load on `sessions` sessions, session i created (and so owned) at `urlOf(i)`; relayed messages/s. */
async function throughputOnce(urlOf) {
  const { sessions, clients, messages } = THROUGHPUT;
  const groups = await mapLimit(Array.from({ length: sessions }, (_, i) => i), 6, (i) => joinSession(urlOf(i), newSessionKeys(), clients));
  try {
    const r = await saturate(groups, { messages, payloadBytes: 32, relayType: MessageType.Relay, timeoutMs: 90_000 });
    // Each message is delivered to every client of its session: deliveries ÷ clients = messages ordered.
    return { relayed: r.deliveriesPerSecond / clients, deliveries: r.deliveriesPerSecond, seconds: r.seconds };
  } finally {
    dropAll(groups);
  }
}

async function failovers(run) {
  for (let r = 0; r < RUNS; r++) {
    for (const fault of [killOwner, pauseLong, drain]) {
      await fault(run);
      await run.crashed();
      await run.waitLive(now(), 20_000, "between faults");
      await sleep(300);
    }
  }
}

async function main() {
  log(`cluster bench: ${QUICK ? "quick" : "full"}, ${RUNS} run(s) of each fault; lease ${LEASE_MS} ms; Node ${process.version}`);
  await cluster.start();
  load = new Load(cluster, { rate: 5, silenceMs: 3500 });
  const run = new FaultRun(cluster, load, { leaseMs: LEASE_MS, log });
  const figures = {};
  try {
    // Failover.
    for (let i = 0; i < FAILOVER.sessions; i += 6) {
      await Promise.all(Array.from({ length: Math.min(6, FAILOVER.sessions - i) }, (_, k) => load.addRaw(FAILOVER.clients, (i + k) % cluster.size)));
    }
    load.publish();
    await run.waitLive(now(), 15_000, "the load starting");
    log(`failover: ${load.groups.length} sessions × ${FAILOVER.clients} clients publishing 5 msgs/s each`);
    await failovers(run);
    load.quiet();
    await sleep(500);
    run.windows.push({ node: "*", from: now(), to: Infinity });
    await load.stop();

    // Throughput: the same PostgreSQL, three set-ups one after the other.
    const single = await cluster.startStandalone();
    figures.single = await throughput(() => single.url);
    await single.terminate();
    log(`throughput, single reflector (--postgres): ${fmt(figures.single.relayed)} relayed msgs/s`);
    await cluster.nodes[1].terminate();
    await cluster.nodes[2].terminate();
    figures.one = await throughput(() => cluster.nodes[0].url);
    log(`throughput, one cluster node alone: ${fmt(figures.one.relayed)} relayed msgs/s`);
    await Promise.all([cluster.nodes[1].start(), cluster.nodes[2].start()]);
    figures.three = await throughput((i) => cluster.nodes[i % 3].url);
    log(`throughput, 3 cluster nodes: ${fmt(figures.three.relayed)} relayed msgs/s in all`);
    await cluster.stopNodes();
  } catch (error) {
    run.problems.push(`bench error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    load.terminate();
    await cluster.stopNodes().catch(() => undefined);
  }

  // Correctness of the failover part.
  const problems = [...run.problems];
  try {
    const storage = await readStorage(cluster.postgresUrl);
    const audit = await storeAudit(cluster.postgresUrl);
    problems.push(...audit.problems.map((p) => `store audit: ${p}`), ...storage.problems.map((p) => `storage: ${p}`), ...compareReadings(audit, storage));
    problems.push(...judge(load.groups, storage, run.windows).problems);
  } catch (error) {
    problems.push(`checks failed: ${error instanceof Error ? error.message : String(error)}`);
  }

  const f = run.failovers;
  const row = (label, xs) => [label, xs.length ? ms(percentile(xs, 50)) : "-", xs.length ? ms(percentile(xs, 99)) : "-", xs.length ? ms(Math.max(...xs)) : "-", String(xs.length)];
  print("");
  print(`failover (fault → every client of the owner's sessions rejoined and got a new Relay), ${RUNS} run(s) each, lease ${LEASE_MS} ms, client silence limit 3.5 s:`);
  print(table([["fault", "p50", "p99", "max", "clients"], row("SIGKILL", f.kill), row(`SIGSTOP ${(LEASE_MS + 2000) / 1000} s (past the lease)`, f.pause), row("SIGTERM drain", f.drain)]));
  if (figures.single && figures.one && figures.three) {
    const { sessions, clients, messages } = THROUGHPUT;
    print("");
    print(`throughput, ${sessions} sessions × ${clients} clients × ${messages} msgs of 32 bytes (saturating; median of ${THROUGHPUT.repeats ?? 1}), same PostgreSQL:`);
    print(
      table([
        ["set-up", "relayed msgs/s", "per node", "per node ÷ single"],
        ["single reflector (--postgres)", fmt(figures.single.relayed), fmt(figures.single.relayed), "1.00"],
        ["one cluster node alone", fmt(figures.one.relayed), fmt(figures.one.relayed), ratio(figures.one.relayed, figures.single.relayed)],
        ["3 cluster nodes", fmt(figures.three.relayed), fmt(figures.three.relayed / 3), ratio(figures.three.relayed / 3, figures.single.relayed)],
      ]),
    );
    print(`3 nodes in all ÷ single: ${ratio(figures.three.relayed, figures.single.relayed)} (one machine of 2 cores runs the nodes, PostgreSQL and the load)`);
  }
  print("");
  if (problems.length) {
    print(`FAIL: ${problems.length} problems`);
    for (const p of problems.slice(0, 40)) print(`  - ${p}`);
  } else print(`checks passed in ${((now() - started) / 1000).toFixed(0)} s`);
  await cluster.stop();
  process.exit(problems.length ? 1 : 0);
}

await main();
