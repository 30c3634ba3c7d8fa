#!/usr/bin/env node
// Reflector relay benchmark (issue 15), speaking the wire protocol directly (no client library):
// S sessions × C clients on 127.0.0.1, against a baseline measured in the same run: a raw `ws`
// broadcast server (a room per session, each message written to every member; no ordering, time
// stamps, limits or storage). Systems: "raw ws", the reflector on the memory store and on the
// filesystem store ("fs", a fresh data directory per run); every run starts its own server.
// Rounds alternate the systems (rotating their order), each figure is the median over rounds, and
// ratios are taken per round, then their median.
//
// Modes:
//   throughput  every client sends --messages Sends of --payload bytes as fast as its socket takes
//               them (default: about 1.2 million deliveries per run); deliveries per second
//               (frames received by clients) until every client got every frame of its session.
//               The reflector runs with its rate limits raised past the load (checking them costs
//               what it costs; nothing is refused) and no snapshots (--throughput-snapshots: the
//               default policy, clients voting and uploading as in latency mode; without
//               snapshots the whole log stays in memory, which the reflector's GC pays for).
//   latency     --rate messages per second offered in total, spread evenly over all clients (each
//               client sends rate ÷ (S × C) per second, staggered), --warmup s unrecorded then
//               --seconds s; the latency of a message is from its client's ws.send to that
//               client's receipt of it relayed (p50, p99, p99.9, max). The reflector runs with the
//               DEFAULT limits (2,000/s over 10 clients is 200 frames/s per client, well under the
//               default 1,000) and the default snapshot policy, every client voting and the
//               elected one uploading a --snapshot-bytes snapshot, as library clients would.
// In both modes the caps on connections and new sessions per address are raised: every bench
// client comes from 127.0.0.1.
//
// Where the server runs (--server): "process" (default): in a child node process of its own
// (scripts/bench/servers/child.mjs), so the harness's clients do not share its CPU time, and the
// CPU time of both sides is shown; "inprocess": in this process, with the clients (how this bench
// ran before issue 15). --pin (process only): the server on CPU 0, the harness on CPU 1.
// --cpu-prof DIR: run the children with --cpu-prof into DIR and print each profile's top self time.
// --corked-baseline (a diagnostic, not issue 15's baseline): the broadcast server corks each
// member's writes of one turn into one, as the reflector does. The throughput table also shows
// the server's write and the harness's read system calls per 1,000 deliveries (/proc/<pid>/io).
// CPU is shown as shares of one CPU over each run: the server's process, the harness's (this
// process; with --server inprocess it includes the server), "kernel net" (interrupt and softirq
// time from /proc/stat: loopback packets, processed in the kernel and charged to no process;
// caused by the run itself), and "other" (the rest of the machine). Runs wait for the machine to
// be quiet first, and a run during which "other" passed 25% of a CPU is run again (at most twice;
// at most 12 reruns in all). Default shapes: 1x10 and 100x4 (issue 15's).
//
//   node scripts/build.mjs   # the bench imports the packages' dist
//   node scripts/bench/reflector.mjs [--shapes 1x10,100x4 | --sessions 1 --clients 10] [--mode throughput|latency|both]
//        [--storage memory|fs|both] [--server process|inprocess] [--messages N] [--payload 100] [--rounds 3]
//        [--rate 2000] [--seconds 5] [--warmup 1] [--snapshot-bytes 4096] [--pin] [--cpu-prof DIR] [--corked-baseline] [--throughput-snapshots] [--quick]
// --quick: the short form for CI (both shapes, both modes, both stores, 1 round, short runs; ≤ 20 s).
// Exits 1 if a run fails (a refused join, frames that never arrive); figures never fail it.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { MessageType } from "@lockstep/protocol";
import { BenchProcesses, kernelNetMs, machineBusyMs, otherCpuMs, ownCpuMs, processTimes, startServer, syscallsOf, waitForQuietMachine } from "./servers/servers.mjs";
import { dropAll, joinRoom, joinSession, mapLimit, newSessionKeys } from "./lib/wire.mjs";
import { saturate, steady } from "./lib/load.mjs";
import { fmt, median, now, ratio, table } from "./lib/stats.mjs";
import { formatSelfTimes } from "./lib/profile.mjs";

const { values } = parseArgs({
  options: {
    shapes: { type: "string" },
    sessions: { type: "string" },
    clients: { type: "string" },
    mode: { type: "string", default: "both" },
    storage: { type: "string", default: "both" },
    server: { type: "string", default: "process" },
    messages: { type: "string" },
    payload: { type: "string", default: "100" },
    rounds: { type: "string" },
    rate: { type: "string", default: "2000" },
    seconds: { type: "string" },
    warmup: { type: "string" },
    "snapshot-bytes": { type: "string", default: "4096" },
    pin: { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
    "corked-baseline": { type: "boolean", default: false },
    "throughput-snapshots": { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
  },
});
const QUICK = values.quick;
const fail = (message) => {
  console.error(`reflector bench: ${message}`);
  process.exit(2);
};
const shapeText = values.sessions || values.clients ? `${values.sessions ?? 1}x${values.clients ?? 10}` : (values.shapes ?? "1x10,100x4");
const SHAPES = shapeText.split(",").map((s) => {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) fail(`a shape is SESSIONSxCLIENTS (e.g. 100x4), not ${JSON.stringify(s)}`);
  return { sessions: Number(m[1]), clients: Number(m[2]) };
});
const MODES = values.mode === "both" ? ["throughput", "latency"] : [values.mode];
const STORES = values.storage === "both" ? ["memory", "fs"] : [values.storage];
const WHERE = values.server;
/**
 * Sends per client in throughput mode: --messages, else enough for about 1.2 million deliveries
 * per run whatever the shape (1×10: 12,000 per client; 100×4: 750), so runs last seconds, not a
 * fraction of one. Quick: 200.
 */
const messagesFor = (shape) => (values.messages !== undefined ? Number(values.messages) : QUICK ? 200 : Math.max(200, Math.round(1.2e6 / (shape.sessions * shape.clients * shape.clients))));
const PAYLOAD = Number(values.payload);
const ROUNDS = Number(values.rounds ?? (QUICK ? 1 : 3));
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds ?? (QUICK ? 0.75 : 5));
const WARMUP = Number(values.warmup ?? (QUICK ? 0.25 : 1));
const SNAPSHOT_BYTES = Number(values["snapshot-bytes"]);
const THROUGHPUT_SNAPSHOTS = values["throughput-snapshots"];
const PROF_DIR = values["cpu-prof"];
if (!MODES.every((m) => m === "throughput" || m === "latency")) fail("--mode is throughput, latency or both");
if (!STORES.every((s) => s === "memory" || s === "fs")) fail("--storage is memory, fs or both");
if (WHERE !== "process" && WHERE !== "inprocess") fail("--server is process or inprocess");
if (values.pin && WHERE !== "process") fail("--pin needs --server process");
if (PROF_DIR && WHERE !== "process") fail("--cpu-prof needs --server process");
if (PAYLOAD < 12) fail("--payload must be at least 12 bytes (a latency message carries its client and send time)");
for (const [flag, n] of [["--messages", values.messages === undefined ? 1 : Number(values.messages)], ["--rounds", ROUNDS], ["--rate", RATE], ["--seconds", SECONDS], ["--snapshot-bytes", SNAPSHOT_BYTES]]) {
  if (!(n > 0)) fail(`${flag} must be a positive number`);
}

const scratch = mkdtempSync(join(tmpdir(), "lockstep-bench-reflector-"));
const processes = BenchProcesses.install(() => rmSync(scratch, { recursive: true, force: true }));
// Bounded whatever happens: a generous multiple of what the runs should take.
const RUN_BOUND_MS = 60_000 + (WARMUP + SECONDS) * 1000;
const expectedMs = (SHAPES.length * MODES.length * ROUNDS * (1 + STORES.length) + 12) * RUN_BOUND_MS + 300_000;
setTimeout(() => {
  console.error(`reflector bench: still running after ${(expectedMs / 60_000).toFixed(0)} min; giving up`);
  process.exit(1);
}, expectedMs).unref();
if (values.pin) execFileSync("taskset", ["-p", "-c", "1", String(process.pid)], { stdio: "ignore" });
if (PROF_DIR) mkdirSync(PROF_DIR, { recursive: true });

const CAPS = { maxConnectionsPerAddress: 100_000, newSessionsPerAddressPerMinute: 100_000, newSessionsPerMinute: 100_000 };
const MANY = 1e9;
const DEFAULT_MAX_LOG_BYTES = 32 * 1024 * 1024;
/**
 * Caps a throughput run needs beyond the defaults, so a large --messages measures instead of
 * failing: without snapshots a session's whole run stays in its log (128 bytes plus the payload
 * per entry, as the reflector counts it), past the 32 MiB default cap (4015); and bench clients
 * read as fast as they can, so the cap on unread bytes (4011, for clients that stop reading) only
 * bounds how far ahead a saturated server may get. Default runs fit: nothing changes for them.
 */
function throughputCaps(shape) {
  const logBytes = messagesFor(shape) * shape.clients * (128 + PAYLOAD);
  return { maxBufferedBytes: 1024 * 1024 * 1024, ...(THROUGHPUT_SNAPSHOTS || logBytes < DEFAULT_MAX_LOG_BYTES ? {} : { maxLogBytes: 2 * logBytes }) };
}

/** ReflectorOptions of a run (JSON-able: they may cross to a child process). */
function reflectorOptions(mode, dataDir, shape) {
  const common = { host: "127.0.0.1", port: 0, caps: CAPS, ...(dataDir ? { dataDir } : {}) };
  if (mode === "latency") return common; // default limits and snapshot policy
  return {
    ...common,
    caps: { ...CAPS, ...throughputCaps(shape) },
    ...(THROUGHPUT_SNAPSHOTS ? {} : { snapshots: { everyMessages: MANY, everyMs: 2 ** 31 - 1 } }),
    limits: { maxMessagesPerSecond: MANY, messageBurst: MANY, maxBytesPerSecond: MANY, byteBurst: MANY },
  };
}

/** One run of `system` ("raw ws", "memory", "fs") in `mode` for `shape`: its figures and the CPU time both sides used. */
async function runSystem(system, mode, shape, label) {
  const dataDir = system === "fs" ? mkdtempSync(join(scratch, "data-")) : undefined;
  const kind = system === "raw ws" ? "broadcast" : "reflector";
  const options = kind === "broadcast" ? { host: "127.0.0.1", port: 0, cork: values["corked-baseline"] } : reflectorOptions(mode, dataDir, shape);
  const server = await startServer(kind, options, { where: WHERE, processes, cpuProfDir: PROF_DIR ? join(PROF_DIR, label) : undefined, cpus: values.pin ? "0" : undefined, name: label });
  try {
    const groups = await mapLimit(Array.from({ length: shape.sessions }, (_, s) => s), 16, (s) =>
      kind === "broadcast" ? joinRoom(server.url, `room${s}`, shape.clients) : joinSession(server.url, newSessionKeys(), shape.clients, { snapshotBytes: mode === "latency" || THROUGHPUT_SNAPSHOTS ? SNAPSHOT_BYTES : 0 }),
    );
    const relayType = kind === "broadcast" ? MessageType.Send : MessageType.Relay;
    const serverCpu0 = server.cpuMs();
    const ownCpu0 = ownCpuMs();
    const busy0 = machineBusyMs();
    const kernel0 = kernelNetMs();
    const others0 = processTimes([server.pid, process.pid]);
    const serverIo0 = syscallsOf(server.pid);
    const ownIo0 = syscallsOf(process.pid);
    const t0 = now();
    const result =
      mode === "throughput"
        ? await saturate(groups, { messages: messagesFor(shape), payloadBytes: PAYLOAD, relayType })
        : await steady(groups, { rate: RATE, seconds: SECONDS, warmupSeconds: WARMUP, payloadBytes: PAYLOAD, relayType });
    const wallMs = now() - t0;
    result.serverCpu = (server.cpuMs() - serverCpu0) / wallMs;
    result.harnessCpu = (ownCpuMs() - ownCpu0) / wallMs;
    // What else ran on the machine meanwhile (other processes: a busy machine blurs every figure).
    const serverMs = WHERE === "process" ? server.cpuMs() - serverCpu0 : 0;
    const kernelMs = kernelNetMs() - kernel0;
    result.kernelCpu = kernelMs / wallMs;
    // Other processes: those seen in /proc, or at least what the machine's total leaves unexplained.
    const unexplained = machineBusyMs() - busy0 - serverMs - (ownCpuMs() - ownCpu0) - kernelMs;
    result.otherCpu = Math.max(otherCpuMs(others0, processTimes([server.pid, process.pid])), unexplained) / wallMs;
    // System calls per 1,000 deliveries (in process: the server's are the harness's).
    const deliveries = result.deliveriesPerSecond * result.seconds;
    const serverIo = syscallsOf(server.pid);
    const ownIo = syscallsOf(process.pid);
    result.serverWrites = ((serverIo.writes - serverIo0.writes) / deliveries) * 1000;
    result.harnessReads = ((ownIo.reads - ownIo0.reads) / deliveries) * 1000;
    dropAll(groups);
    return result;
  } finally {
    await server.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

const SYSTEMS = ["raw ws", ...STORES];
const pct = (x) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : "n/a");
const shapeName = (s) => `${s.sessions} session${s.sessions === 1 ? "" : "s"} × ${s.clients} clients`;
const medianOf = (runs, key) => median(runs.map((r) => r[key]));
/** Per-round ratios a[key] ÷ b[key] of two systems' runs, and their median. */
function ratios(runs, a, b, key) {
  const xs = runs[a].map((r, i) => r[key] / runs[b][i][key]);
  return { median: median(xs), rounds: xs };
}

let problems = 0;
/** A run during which other processes used more than this share of one CPU is run again. */
const CONTENDED = 0.25;
/** At most this many runs in all are run again (each at most twice), and at most this long spent waiting for quiet. */
const MAX_RERUNS = QUICK ? 0 : 12;
const QUIET_BUDGET_MS = QUICK ? 0 : 300_000;
let rerun = 0;
let notQuiet = 0;
let quietWaited = 0;
const dataFs = (() => {
  try {
    const type = statfsSync(scratch).type;
    return { 0xef53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683e: "btrfs" }[type] ?? `fs type 0x${type.toString(16)}`;
  } catch {
    return "unknown fs";
  }
})();
console.log(
  `reflector bench: server ${WHERE === "process" ? `in its own process${values.pin ? " (pinned to CPU 0, harness on CPU 1)" : ""}` : "in the harness's process"}, ` +
    `${values["corked-baseline"] ? "baseline CORKED (diagnostic), " : ""}${PAYLOAD}-byte payloads, ${ROUNDS} round(s) alternating ${SYSTEMS.join(" / ")}, Node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()[0].toFixed(2)}, fs data dirs on ${dataFs} (${scratch})`,
);
const summary = [];
for (const shape of SHAPES) {
  for (const mode of MODES) {
    const runs = Object.fromEntries(SYSTEMS.map((s) => [s, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = SYSTEMS.map((_, i) => SYSTEMS[(i + round) % SYSTEMS.length]);
      for (const system of order) {
        const label = `${system.replace(" ", "")}-${mode}-${shape.sessions}x${shape.clients}-r${round + 1}`;
        try {
          // Runs while other processes kept a CPU busy say little: wait for quiet, and run again
          // (twice at most) when something else took more than CONTENDED of a CPU meanwhile.
          let result;
          for (let attempt = 0; ; attempt++) {
            const waitStart = now();
            const budget = QUIET_BUDGET_MS - quietWaited;
            if (budget > 0 && !(await waitForQuietMachine({ maxWaitMs: budget }))) notQuiet++;
            quietWaited += now() - waitStart;
            result = await runSystem(system, mode, shape, attempt === 0 ? label : `${label}-again${attempt}`);
            if (!(result.otherCpu > CONTENDED) || attempt === 2 || rerun === MAX_RERUNS) break;
            rerun++;
          }
          runs[system].push(result);
        } catch (error) {
          problems++;
          console.error(`${label}: ${error instanceof Error ? error.message : String(error)}`);
          runs[system].push({});
        }
      }
    }
    console.log("");
    if (mode === "throughput") {
      console.log(`throughput, ${shapeName(shape)}, ${fmt(messagesFor(shape))} Sends per client as fast as possible${THROUGHPUT_SNAPSHOTS ? ", default snapshot policy (clients vote and upload)" : ", no snapshots"}; deliveries/s (median of ${ROUNDS})`);
      const rows = [["system", "deliveries/s", "÷ raw ws", "rounds ÷ raw ws", "server CPU", "harness CPU", "kernel net", "other CPU", "server writes/1k", "harness reads/1k"]];
      for (const s of SYSTEMS) {
        const r = s === "raw ws" ? undefined : ratios(runs, s, "raw ws", "deliveriesPerSecond");
        rows.push([s, fmt(medianOf(runs[s], "deliveriesPerSecond")), r ? r.median.toFixed(2) : "", r ? r.rounds.map((x) => x.toFixed(2)).join(" ") : "", pct(medianOf(runs[s], "serverCpu")), pct(medianOf(runs[s], "harnessCpu")), pct(medianOf(runs[s], "kernelCpu")), pct(medianOf(runs[s], "otherCpu")), fmt(medianOf(runs[s], "serverWrites")), fmt(medianOf(runs[s], "harnessReads"))]);
      }
      console.log(table(rows));
      const shapeKey = `${shape.sessions}x${shape.clients}`;
      if (runs.memory) summary.push({ figure: `relay memory ÷ raw ws, ${shapeKey}`, value: ratios(runs, "memory", "raw ws", "deliveriesPerSecond").median, target: shapeKey === "1x10" ? "≥ 1.5" : shapeKey === "100x4" ? "≥ 1.2" : "" });
      if (runs.memory && runs.fs) {
        const r = ratios(runs, "fs", "memory", "deliveriesPerSecond");
        console.log(`fs ÷ memory: ${r.median.toFixed(2)} (rounds ${r.rounds.map((x) => x.toFixed(2)).join(" ")})`);
        summary.push({ figure: `saturating throughput fs ÷ memory, ${shapeKey}`, value: r.median, target: "≥ 0.9" });
      }
    } else {
      const perClient = RATE / (shape.sessions * shape.clients);
      console.log(`latency, ${shapeName(shape)}, ${fmt(RATE)} msg/s offered in total (${fmt(perClient, perClient < 10 ? 1 : 0)}/s per client), ${WARMUP} s warm-up + ${SECONDS} s; send → own relay, ms (median of ${ROUNDS})`);
      const rows = [["system", "p50", "p99", "p99.9", "max", "p50 ÷ raw", "p99 ÷ raw", "samples", "lost", "offered/s", "send lag p99", "server CPU", "harness CPU", "kernel net", "other CPU"]];
      for (const s of SYSTEMS) {
        const base = s === "raw ws" ? undefined : [ratios(runs, s, "raw ws", "p50").median.toFixed(2), ratios(runs, s, "raw ws", "p99").median.toFixed(2)];
        const lost = runs[s].reduce((n, r) => n + (r.lost ?? 0), 0);
        if (lost > 0) problems++;
        rows.push([s, fmt(medianOf(runs[s], "p50"), 3), fmt(medianOf(runs[s], "p99"), 3), fmt(medianOf(runs[s], "p999"), 3), fmt(medianOf(runs[s], "max"), 2), base?.[0] ?? "", base?.[1] ?? "", fmt(medianOf(runs[s], "samples")), String(lost), fmt(medianOf(runs[s], "offeredPerSecond")), fmt(medianOf(runs[s], "lateP99"), 2), pct(medianOf(runs[s], "serverCpu")), pct(medianOf(runs[s], "harnessCpu")), pct(medianOf(runs[s], "kernelCpu")), pct(medianOf(runs[s], "otherCpu"))]);
      }
      console.log(table(rows));
      const shapeKey = `${shape.sessions}x${shape.clients}`;
      if (runs.memory && runs.fs) {
        const p50 = ratios(runs, "fs", "memory", "p50");
        const p99 = ratios(runs, "fs", "memory", "p99");
        console.log(`fs ÷ memory: p50 ${p50.median.toFixed(2)} (rounds ${p50.rounds.map((x) => x.toFixed(2)).join(" ")}), p99 ${p99.median.toFixed(2)} (rounds ${p99.rounds.map((x) => x.toFixed(2)).join(" ")})`);
        summary.push({ figure: `latency fs ÷ memory p50, ${shapeKey}`, value: p50.median, target: "≤ 2" });
        summary.push({ figure: `latency fs ÷ memory p99, ${shapeKey}`, value: p99.median, target: shapeKey === "1x10" ? "≤ 1.5" : "" });
      }
    }
  }
}

if (summary.length > 0) {
  console.log("");
  console.log(`summary (issue 15 targets apply to 1x10 and 100x4 at ${fmt(RATE)} msg/s, ${PAYLOAD}-byte payloads)`);
  const met = (v, t) => {
    const m = /^([≥≤]) ([\d.]+)$/.exec(t);
    if (!m || !Number.isFinite(v)) return "";
    return (m[1] === "≥" ? v >= Number(m[2]) : v <= Number(m[2])) ? "met" : "MISSED";
  };
  console.log(table([["figure", "value", "target", ""], ...summary.map((s) => [s.figure, Number.isFinite(s.value) ? s.value.toFixed(2) : "n/a", s.target || "(none)", met(s.value, s.target)])]));
}
console.log("");
console.log(
  `machine: CPU shares are of one CPU; "kernel net" is the kernel's irq and softirq time (loopback packets, caused by the run), "other CPU" everything else on the machine; ${rerun} run(s) were run again because other processes took > ${CONTENDED * 100}% of a CPU, ` +
    `${notQuiet} started without the machine getting quiet (< 10% of a CPU busy elsewhere; ${(quietWaited / 1000).toFixed(0)} s of at most ${QUIET_BUDGET_MS / 1000} s spent waiting)`,
);
if (PROF_DIR) {
  console.log("");
  console.log(`CPU profiles of the servers (${PROF_DIR}):`);
  for (const label of readdirSync(PROF_DIR).sort()) {
    for (const file of readdirSync(join(PROF_DIR, label)).filter((f) => f.endsWith(".cpuprofile"))) {
      console.log(`${label}:`);
      console.log(formatSelfTimes(join(PROF_DIR, label, file), 12).join("\n"));
    }
  }
}
if (problems > 0) console.error(`reflector bench: ${problems} run(s) failed or lost messages`);
process.exit(problems > 0 ? 1 : 0);
