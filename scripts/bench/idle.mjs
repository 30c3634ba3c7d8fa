#!/usr/bin/env node
// Idle-session benchmark (issue 15, figure 4): what --sessions stored, idle sessions cost a
// reflector on the filesystem store (the default): RSS, and disk per session.
//
//   1. Baseline: a reflector on an empty data directory; its RSS once settled after start (no
//      CPU use, RSS steady), then after --joins sessions were created and joined (clients staying).
//   2. Creation, over the wire protocol, the realistic way: for each session a raw client joins
//      (creating it), sends --before Sends of --payload bytes one at a time (each relayed, so each
//      one append), answers the snapshot round that follows (vote, then a --snapshot-bytes upload),
//      sends --after more Sends, and leaves. --concurrency sessions at a time. This reflector runs
//      with snapshots after --before + 1 entries (the ViewJoin and the Sends) and raised caps on
//      sessions created per address; it is stopped cleanly (SIGTERM) afterwards.
//   3. Disk: every file and directory under the data directory, as `du` counts it (allocated
//      blocks) and as apparent bytes, divided by the sessions: the whole cost, layout whatever it is
//      (the filesystem store's one directory per session, or a log-structured store's files).
//   4. Restart: a reflector (default options) on that data directory; its start time, RSS once
//      settled (and its peak meanwhile: the start scans every session's activity record), RSS
//      after --idle-seconds more of idleness, RSS and live heap right after a full GC, then
//      --joins of the stored sessions joined again (each Sync checked: the snapshot and the log
//      after it are there) and RSS again.
// Why "idle": the allocations of opening the log (records parsed, activity records read) grow V8's
// young generation (with 10,000 sessions to two 8 MB semi-spaces; to the 16 MB maximum before the
// index moved off the heap), and V8 keeps that size until its memory reducer sees the process
// idle (about 40 s later on Node 20, though not in every run within a minute) and gives it back. The RSS "after start" includes those pages; the
// RSS "idle" is what the reflector holds from then on (when the reducer ran). The baseline
// reflector is measured the same way.
// Printed: RSS and live heap of both reflectors, the difference per stored session, and disk per
// session. Targets (issue 15): 10,000 stored idle sessions < 100 MB RSS (judged both right after
// start and after the idle wait), < 5 KB of disk each.
//
//   node scripts/build.mjs && node scripts/bench/idle.mjs [--sessions 10000] [--joins 10] [--concurrency 64] [--idle-seconds 60] [--quick] [--keep]
// --quick: 500 sessions and no idle wait (for CI). --keep: keep the data directory (its path is printed).
// Everything is on 127.0.0.1 and bounded in time; the bench stops only the reflectors it started
// (by PID) and removes its temp directory however it ends. Exits 1 if a step fails.
import { mkdtempSync, readdirSync, rmSync, lstatSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { MessageType, decodeServerMessage, encodeClientMessage, encodeSend } from "@lockstep/protocol";
import { randomBytes } from "node:crypto";
import { BenchProcesses, cpuMsOf, startServer } from "./servers/servers.mjs";
import { answerSnapshots, mapLimit, newSessionKeys, openSocket } from "./lib/wire.mjs";
import { fmt, now, sleep, table, withTimeout } from "./lib/stats.mjs";

const { values } = parseArgs({
  options: {
    sessions: { type: "string" },
    joins: { type: "string", default: "10" },
    concurrency: { type: "string", default: "64" },
    before: { type: "string", default: "4" },
    after: { type: "string", default: "3" },
    payload: { type: "string", default: "100" },
    "snapshot-bytes": { type: "string", default: "1024" },
    "idle-seconds": { type: "string" },
    quick: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
  },
});
const SESSIONS = Number(values.sessions ?? (values.quick ? 500 : 10_000));
const JOINS = Number(values.joins);
const CONCURRENCY = Number(values.concurrency);
const BEFORE = Number(values.before);
const AFTER = Number(values.after);
const PAYLOAD = Number(values.payload);
const SNAPSHOT_BYTES = Number(values["snapshot-bytes"]);
const IDLE_SECONDS = Number(values["idle-seconds"] ?? (values.quick ? 0 : 60));
for (const [flag, n, min] of [["--idle-seconds", IDLE_SECONDS, 0], ["--sessions", SESSIONS, 1], ["--joins", JOINS, 0], ["--concurrency", CONCURRENCY, 1], ["--before", BEFORE, 0], ["--after", AFTER, 0], ["--payload", PAYLOAD, 1], ["--snapshot-bytes", SNAPSHOT_BYTES, 1]]) {
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`idle bench: ${flag} must be an integer ≥ ${min}`);
    process.exit(2);
  }
}
const MB = 1024 * 1024;
const STEP_MS = 60_000;
const scratch = mkdtempSync(join(tmpdir(), "lockstep-bench-idle-"));
const processes = BenchProcesses.install(() => {
  if (values.keep) process.stderr.write(`idle bench: files kept in ${scratch}\n`);
  else rmSync(scratch, { recursive: true, force: true });
});
// Creation is the long step: about 10 ms of reflector work per session on 2 CPUs, bounded generously.
setTimeout(() => {
  console.error("idle bench: still running after its time bound; giving up");
  process.exit(1);
}, 5 * 60_000 + SESSIONS * 60 + 2 * IDLE_SECONDS * 1000).unref();

/** The next frame of `type` on `ws` (decoded); rejects on an Error frame, a close, or after `timeoutMs`. */
function nextFrame(ws, type, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no frame 0x${type.toString(16)} within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (data) => {
      if (data[1] === type) finish(undefined, decodeServerMessage(data));
      else if (data[1] === MessageType.Error) finish(new Error(`refused: ${decodeServerMessage(data).message}`));
    };
    const onClose = (code) => finish(new Error(`closed with ${code}`));
    const finish = (error, msg) => {
      clearTimeout(timer);
      ws.off("message", onMessage);
      ws.off("close", onClose);
      if (error) reject(error);
      else resolve(msg);
    };
    ws.on("message", onMessage);
    ws.once("close", onClose);
  });
}

/** Joins `keys`'s session with one raw client; resolves with the socket and its Sync. */
async function join1(url, keys) {
  const ws = await openSocket(url);
  const sync = nextFrame(ws, MessageType.Sync);
  ws.send(encodeClientMessage({ type: MessageType.Join, sessionId: keys.sessionId, persistentId: keys.persistentId, viewId: keys.viewId ?? randomBytes(9).toString("base64url"), tps: 20, auth: keys.auth, viewData: new Uint8Array(0) }));
  return { ws, sync: await sync };
}

/** Sends one Send and waits for its Relay (the client is alone in its session: the next Relay is its own). */
async function sendAndWait(ws, payload) {
  const relayed = nextFrame(ws, MessageType.Relay);
  ws.send(encodeSend(payload));
  await relayed;
}

/** One stored session, made as a client would make it: join, Sends, a snapshot, more Sends, Leave. */
async function createSession(url, keys) {
  const { ws } = await join1(url, keys);
  answerSnapshots(ws, SNAPSHOT_BYTES);
  const payload = randomBytes(PAYLOAD);
  const snapshotAsked = nextFrame(ws, MessageType.UploadRequest);
  for (let i = 0; i < BEFORE; i++) await sendAndWait(ws, payload);
  // The request follows the last of these Sends; answerSnapshots votes and uploads.
  await snapshotAsked;
  for (let i = 0; i < AFTER; i++) await sendAndWait(ws, payload);
  const closed = new Promise((resolve) => ws.once("close", resolve));
  ws.send(encodeClientMessage({ type: MessageType.Leave }));
  await withTimeout(closed, 10_000, "a Leave's close");
}

/** RSS once the reflector is idle: its CPU below 2% over 500 ms and RSS within 1 MB over five samples (at most `maxMs`). */
async function settledRss(server, maxMs = 30_000) {
  const end = now() + maxMs;
  const samples = [];
  let peak = server.rss();
  for (;;) {
    const cpu0 = cpuMsOf(server.pid);
    const t0 = now();
    // Sampled every 100 ms for the peak; judged over 500 ms windows.
    for (let i = 0; i < 5; i++) {
      await sleep(100);
      peak = Math.max(peak, server.rss());
    }
    const busy = (cpuMsOf(server.pid) - cpu0) / (now() - t0);
    samples.push(server.rss());
    const last = samples.slice(-5);
    if ((busy < 0.02 && last.length === 5 && Math.max(...last) - Math.min(...last) < MB) || now() > end) return { rss: samples.at(-1), peak, settled: now() <= end };
  }
}

/** RSS after `seconds` more of idleness (NaN when `seconds` is 0). */
async function idleRss(server, seconds) {
  if (seconds === 0) return { rss: NaN };
  await sleep(seconds * 1000);
  return { rss: server.rss() };
}

/** Live heap and buffers after a full GC, and RSS right after it. */
async function afterGc(server) {
  const m = await server.memory();
  return { heap: m ? m.heapUsed + m.arrayBuffers : NaN, rss: server.rss() };
}

/** Files and directories under `dir`: apparent bytes of files, allocated bytes (blocks) of both, and counts. */
function usage(dir) {
  const u = { bytes: 0, allocated: 0, files: 0, dirs: 0 };
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const st = lstatSync(path);
      u.allocated += st.blocks * 512;
      if (st.isDirectory()) {
        u.dirs++;
        walk(path);
      } else {
        u.files++;
        u.bytes += st.size;
      }
    }
  };
  walk(dir);
  return u;
}

const reflectorCaps = { maxConnectionsPerAddress: 100_000, newSessionsPerAddressPerMinute: 1_000_000, newSessionsPerMinute: 1_000_000 };

// 1. Baseline: an empty data directory.
const emptyDir = mkdtempSync(join(scratch, "empty-"));
const base = await startServer("reflector", { host: "127.0.0.1", port: 0, dataDir: emptyDir, caps: reflectorCaps }, { where: "process", processes, name: "empty" });
const baseStart = await settledRss(base);
const baseIdle = await idleRss(base, IDLE_SECONDS);
const baseGc = await afterGc(base);
const baseClients = await mapLimit(Array.from({ length: JOINS }), 8, () => join1(base.url, newSessionKeys()));
const baseJoined = await settledRss(base);
for (const c of baseClients) c.ws.terminate();
await base.stop();

// 2. Creation.
const dataDir = mkdtempSync(join(scratch, "data-"));
const creator = await startServer(
  "reflector",
  { host: "127.0.0.1", port: 0, dataDir, caps: reflectorCaps, snapshots: { everyMessages: BEFORE + 1, everyMs: 2 ** 31 - 1 } },
  { where: "process", processes, name: "creator", stepMs: STEP_MS },
);
const keys = Array.from({ length: SESSIONS }, () => newSessionKeys());
const createStart = now();
let created = 0;
const progress = setInterval(() => process.stderr.write(`idle bench: ${created}/${SESSIONS} sessions created\n`), 15_000);
await mapLimit(keys, CONCURRENCY, async (k) => {
  await createSession(creator.url, k);
  created++;
});
clearInterval(progress);
const createSeconds = (now() - createStart) / 1000;
const creatorRss = creator.rss();
await creator.stop();

// 3. Disk.
const disk = usage(dataDir);

// 4. Restart on the stored sessions.
const startAt = now();
const restarted = await startServer("reflector", { host: "127.0.0.1", port: 0, dataDir }, { where: "process", processes, name: "restarted", stepMs: STEP_MS });
const listenMs = now() - startAt;
const afterStart = await settledRss(restarted);
const afterIdle = await idleRss(restarted, IDLE_SECONDS);
const restartedGc = await afterGc(restarted);
const sample = keys.slice(0, JOINS);
const rejoined = await mapLimit(sample, 8, (k) => join1(restarted.url, k));
// Each Sync must carry the stored snapshot and the log after it (the --after Sends and the ViewExit).
const problems = rejoined.filter(({ sync }) => sync.snapshot.length !== SNAPSHOT_BYTES || sync.entries.filter((e) => e.type === MessageType.Relay).length !== AFTER);
const afterJoins = await settledRss(restarted);
for (const c of rejoined) c.ws.terminate();
await restarted.stop();

const mb = (b) => (Number.isNaN(b) ? "not measured" : `${fmt(b / MB, 1)} MB`);
const perSession = (b) => (Number.isNaN(b) ? "" : `${fmt(b / SESSIONS, 0)} B`);
console.log(`idle-session bench: ${fmt(SESSIONS)} stored sessions on the filesystem store (each: ${BEFORE} Sends, a ${fmt(SNAPSHOT_BYTES)}-byte snapshot, ${AFTER} Sends, a Leave; ${PAYLOAD}-byte payloads), Node ${process.version}`);
console.log(`created in ${createSeconds.toFixed(1)} s over the wire (${fmt(SESSIONS / createSeconds)}/s, ${CONCURRENCY} at a time; creating reflector's RSS at the end ${mb(creatorRss)})`);
console.log("");
console.log(
  table([
    ["reflector", "RSS after start", "peak RSS at start", `RSS idle ${IDLE_SECONDS} s more`, "RSS after a GC", "live heap+buffers", `RSS after ${JOINS} joins`, "settled"],
    ["empty data dir (baseline)", mb(baseStart.rss), mb(baseStart.peak), mb(baseIdle.rss), mb(baseGc.rss), mb(baseGc.heap), mb(baseJoined.rss), baseStart.settled && baseJoined.settled ? "yes" : "no"],
    [`${fmt(SESSIONS)} stored sessions`, mb(afterStart.rss), mb(afterStart.peak), mb(afterIdle.rss), mb(restartedGc.rss), mb(restartedGc.heap), mb(afterJoins.rss), afterStart.settled && afterJoins.settled ? "yes" : "no"],
    ["difference", mb(afterStart.rss - baseStart.rss), mb(afterStart.peak - baseStart.peak), mb(afterIdle.rss - baseIdle.rss), mb(restartedGc.rss - baseGc.rss), mb(restartedGc.heap - baseGc.heap), mb(afterJoins.rss - baseJoined.rss), ""],
    ["per stored session", perSession(afterStart.rss - baseStart.rss), perSession(afterStart.peak - baseStart.peak), perSession(afterIdle.rss - baseIdle.rss), perSession(restartedGc.rss - baseGc.rss), perSession(restartedGc.heap - baseGc.heap), perSession(afterJoins.rss - baseJoined.rss), ""],
  ]),
);
console.log(`restarted reflector listening ${fmt(listenMs)} ms after spawn (node start included); ${JOINS - problems.length}/${JOINS} rejoined sessions had their snapshot and ${AFTER} Relays after it`);
console.log("");
console.log(
  table([
    ["disk (whole data dir)", "total", "per session"],
    ["allocated (du)", mb(disk.allocated), perSession(disk.allocated)],
    ["apparent bytes", mb(disk.bytes), perSession(disk.bytes)],
    ["files", fmt(disk.files), fmt(disk.files / SESSIONS, 1)],
    ["directories", fmt(disk.dirs), fmt(disk.dirs / SESSIONS, 1)],
  ]),
);
const kb = (b) => b / 1000;
console.log("");
const verdict = (b) => (Number.isNaN(b) ? "not measured" : b < 100 * MB ? "met" : "MISSED");
console.log(`targets (issue 15): RSS with ${fmt(SESSIONS)} stored sessions < 100 MB: right after start ${mb(afterStart.rss)} (${verdict(afterStart.rss)}), after ${IDLE_SECONDS} s more of idleness ${mb(afterIdle.rss)} (${verdict(afterIdle.rss)}); disk ${fmt(kb(disk.allocated / SESSIONS), 2)} KB allocated, ${fmt(kb(disk.bytes / SESSIONS), 2)} KB apparent per session (< 5 KB: allocated ${disk.allocated / SESSIONS < 5000 ? "met" : "MISSED"}, apparent ${disk.bytes / SESSIONS < 5000 ? "met" : "MISSED"})`);
if (SESSIONS !== 10_000) console.log(`(the targets are for 10,000 sessions; this run stored ${fmt(SESSIONS)})`);
if (problems.length > 0) {
  console.error(`idle bench: ${problems.length} rejoined session(s) lacked their snapshot or log`);
  process.exit(1);
}
process.exit(0);
