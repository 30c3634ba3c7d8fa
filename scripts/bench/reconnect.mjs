#!/usr/bin/env node
// Reconnect benchmark (issue 14): how long a session takes to be live again after a 2 s outage of
// its reflector, when the client resumes versus when it has to rejoin from scratch.
//   - one reflector in its own process (the CLI, filesystem store in a fresh temp directory), a
//     session of 2 clients in this process (the built @lockstep/client) whose model holds
//     --entries entries, each one event of the stream, with a snapshot at 3/4 of them (so a rejoin
//     gets a snapshot plus a log to replay);
//   - the reflector is killed (SIGKILL) and, --outage-ms later, restarted on the same port and
//     data directory; right after the restart client 1 publishes one event (queued while offline);
//   - "resume": the reflector keeps a dropped view for its grace period (default 10 s), so both
//     clients resume: same root view and model objects (asserted), the reflector logs view.resumed;
//   - "full rejoin" (the baseline): the reflector is started with --view-grace-ms 0, so the views
//     exited and both clients reboot from snapshot + log: a new root view and model (asserted).
// Figures per run, for the slower of the two clients: restart → status "connected" (what the issue
// asks; it includes the wait for the client's next backoff attempt, which does not depend on the
// mode), socket open → "connected" (the client's own work once the reflector answers), restart →
// the event published after the restart applied, and restart → reflector listening. Runs alternate
// the two modes; each starts from a fresh reflector, data directory and session. Once both are
// live the replicas' states are compared byte for byte at one more event (exit code 1 if they
// differ or an assertion fails).
//
//   node scripts/build.mjs && node scripts/bench/reconnect.mjs [--runs 5] [--entries 2000] [--outage-ms 2000] [--quick] [--verbose]
// --quick  the short form for CI: 2 runs of each mode (about 20 s).
// Everything runs on 127.0.0.1, is bounded in time and stops by itself; the bench kills only the
// reflectors it started (by PID) and removes its temp directory however it ends.
import { Model, Session, View } from "@lockstep/client";
import { findRecords } from "../probe/lib/fs-log.mjs";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { WebSocket } from "ws";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    entries: { type: "string", default: "2000" },
    "outage-ms": { type: "string", default: "2000" },
    quick: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
  },
});
const RUNS = values.quick ? 2 : Number(values.runs);
const ENTRIES = Number(values.entries);
const OUTAGE_MS = Number(values["outage-ms"]);
for (const [flag, n, min] of [["--runs", RUNS, 1], ["--entries", ENTRIES, 4], ["--outage-ms", OUTAGE_MS, 0]]) {
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`reconnect bench: ${flag} must be an integer ≥ ${min}`);
    process.exit(2);
  }
}
const SNAPSHOT_EVERY = Math.floor((ENTRIES * 3) / 4);
const HOST = "127.0.0.1";
const ROOT = join(import.meta.dirname, "..", "..");
const CLI = join(ROOT, "reflector", "bin", "lockstep-reflector.js");
/** Longest any one step may take (a join, the setup, a reconnect, a teardown). */
const STEP_MS = 30_000;
/** Whatever goes wrong, the whole run stops after this. */
const DEADLINE_MS = 60_000 + RUNS * 2 * 45_000;

const print = (line) => void process.stdout.write(line + "\n");
const note = (line) => void process.stderr.write(line + "\n");
const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const p90 = (xs) => percentile([...xs].sort((a, b) => a - b), 90);
const ms = (x) => `${x.toFixed(0)} ms`;
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

function withTimeout(promise, timeoutMs, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until(pred, timeoutMs, what) {
  const end = now() + timeoutMs;
  while (!pred()) {
    if (now() > end) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(5);
  }
}

// ---------------------------------------------------------------- what the bench owns
const tmp = mkdtempSync(join(tmpdir(), "lockstep-bench-reconnect-"));
const children = new Set();
process.on("exit", () => {
  for (const child of children) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));
setTimeout(() => {
  note(`reconnect bench: not done after ${DEADLINE_MS / 1000} s, giving up`);
  process.exit(1);
}, DEADLINE_MS).unref();

// The library's console lines (a lost connection is a warning) are kept out of the report.
const libraryLog = [];
if (!values.verbose) {
  for (const method of ["log", "info", "warn", "error", "debug"]) {
    console[method] = (...parts) => {
      libraryLog.push(parts.map(String).join(" "));
      if (libraryLog.length > 200) libraryLog.shift();
    };
  }
}

/** A port that was free a moment ago on 127.0.0.1 (the reflector is restarted on it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The reflector CLI in a process of its own, its JSON log lines parsed. */
class ReflectorProcess {
  constructor({ port, dataDir, graceZero }) {
    const args = [CLI, "--host", HOST, "--port", String(port), "--data-dir", dataDir, "--log-level", "info", "--snapshot-messages", String(SNAPSHOT_EVERY)];
    if (graceZero) args.push("--view-grace-ms", "0");
    this.url = `ws://${HOST}:${port}/`;
    this.events = [];
    this.listeningAt = undefined;
    this.stderr = "";
    this.child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    children.add(this.child);
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
    this.exited.then(() => children.delete(this.child));
    let buffered = "";
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (chunk) => {
      buffered += chunk;
      for (let i = buffered.indexOf("\n"); i >= 0; i = buffered.indexOf("\n")) {
        this.#line(buffered.slice(0, i));
        buffered = buffered.slice(i + 1);
      }
    });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (chunk) => void (this.stderr = (this.stderr + chunk).slice(-2000)));
  }

  #line(line) {
    const at = now();
    try {
      const { event, fields } = JSON.parse(line);
      // The CLI's own line once it listens: {"event":"ready","fields":{"url":…}}.
      if (event === "ready") this.listeningAt ??= at;
      this.events.push({ at, event, fields });
    } catch {
      // not a log line
    }
  }

  count(event) {
    return this.events.filter((e) => e.event === event).length;
  }

  listening() {
    return withTimeout(
      Promise.race([
        until(() => this.listeningAt !== undefined, STEP_MS, "reflector listening"),
        this.exited.then(({ code }) => {
          throw new Error(`the reflector exited (code ${code}) before listening: ${this.stderr.trim()}`);
        }),
      ]),
      STEP_MS,
      "reflector start",
    );
  }

  /** SIGTERM (a clean shutdown), SIGKILL if it takes more than 5 s. */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    try {
      await withTimeout(this.exited, 5000, "reflector shutdown");
    } catch {
      this.child.kill("SIGKILL");
      await this.exited;
    }
  }
}

// ---------------------------------------------------------------- the app
const TEXT = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore";

class Journal extends Model {
  init() {
    this.entries = [];
    this.lastMark = "";
    this.lastCheck = "";
    this.subscribe("bench", "add", this.add);
    this.subscribe("bench", "mark", this.mark);
    this.subscribe("bench", "check", this.check);
  }
  add({ from, n, text }) {
    this.entries.push({ from, n, text, at: this.now() });
  }
  mark(id) {
    this.lastMark = id;
  }
  check(id) {
    this.lastCheck = id;
  }
}
Journal.register("ReconnectBench.Journal");

/** A ws socket that notes when it opened (the client's last attempt is the one that reached the restarted reflector). */
const socketNoting = (opens) => (url) => {
  opens.tries++;
  const ws = new WebSocket(url, { maxPayload: 1024 * 1024 * 1024 });
  ws.once("open", () => opens.push(now()));
  return ws;
};

function joinClient(url, name, opens) {
  return withTimeout(
    Session.join({ appId: "bench.reconnect", name, password: "bench", model: Journal, view: View, reflector: url, socket: socketNoting(opens), autoSleep: false }),
    STEP_MS,
    "Session.join",
  );
}

/**
 * Whether a session's snapshot is on disk (the reflector logs snapshot.stored before its put
 * resolves; killed before that, it restarts from the whole log): a put record of a
 * sessions/<id>/snapshot key in the filesystem store's log (written, so it survives a kill -9).
 */
function snapshotOnDisk(dataDir) {
  return findRecords(dataDir, /sessions\/[A-Za-z0-9_-]+\/snapshot/g).some((r) => r.kind === 1);
}

/** SHA-256 of each session's state right after the entry at which `ready(session)` first holds, and that entry's seq. */
function stateWhen(sessions, ready) {
  return Promise.all(
    sessions.map(
      (s) =>
        new Promise((resolve) => {
          const stop = s.afterEntry((seq) => {
            if (!ready(s)) return;
            stop();
            resolve({ seq, hash: sha256(s.stateBytes()) });
          });
        }),
    ),
  );
}

// ---------------------------------------------------------------- one run
/** One outage in `mode` ("resume" | "full"): returns its figures; throws if an assertion fails. */
async function measure(mode, run) {
  const graceZero = mode === "full";
  const dataDir = join(tmp, `${mode}-${run}`);
  mkdirSync(dataDir);
  const port = await freePort();
  let reflector = new ReflectorProcess({ port, dataDir, graceZero });
  const sessions = [];
  try {
    await reflector.listening();
    const opens = [Object.assign([], { tries: 0 }), Object.assign([], { tries: 0 })];
    for (let i = 0; i < 2; i++) sessions.push(await joinClient(reflector.url, `${mode}-${run}`, opens[i]));

    // The state: ENTRIES events, half from each client, and the snapshot at 3/4 of them.
    await Promise.all(
      sessions.map(async (s, i) => {
        for (let n = i; n < ENTRIES; n += 2) {
          s.view.publish("bench", "add", { from: i, n, text: `${i}/${n} ${TEXT}` });
          // Each in its own turn, so each is its own entry (a turn's publishes travel as one).
          await new Promise((resolve) => setImmediate(resolve));
        }
      }),
    );
    await until(() => sessions.every((s) => s.model.entries.length === ENTRIES && s.pendingEvents === 0), STEP_MS, "setup: every entry applied");
    await until(() => reflector.count("snapshot.stored") > 0 && snapshotOnDisk(dataDir), STEP_MS, "setup: snapshot stored on disk");

    const before = sessions.map((s) => ({ view: s.view, model: s.model }));
    const t = sessions.map(() => ({ connected: undefined, applied: undefined }));
    let armed = false;
    const markId = `mark-${mode}-${run}`;
    const stops = sessions.flatMap((s, i) => [
      s.on("status", (status) => {
        if (armed && status === "connected") t[i].connected ??= now();
      }),
      s.afterEntry(() => {
        if (t[i].applied !== undefined || s.model.lastMark !== markId) return;
        t[i].applied = now();
      }),
    ]);

    // The outage.
    const killedAt = now();
    reflector.child.kill("SIGKILL");
    await withTimeout(reflector.exited, 5000, "reflector SIGKILL");
    await until(() => sessions.every((s) => s.status !== "connected"), 5000, "clients noticing the outage");
    await sleep(killedAt + OUTAGE_MS - now());
    armed = true;
    const restartedAt = now();
    reflector = new ReflectorProcess({ port, dataDir, graceZero });
    sessions[0].view.publish("bench", "mark", markId);
    await reflector.listening();
    await until(() => t.every((x) => x.connected !== undefined && x.applied !== undefined), STEP_MS, `${mode}: both clients connected and the event applied`);
    for (const stop of stops) stop();
    // Both live: the replicas must hold the same state at one entry they both process.
    const checkId = `check-${mode}-${run}`;
    const states = stateWhen(sessions, (s) => s.model.lastCheck === checkId);
    sessions[1].view.publish("bench", "check", checkId);
    const [a, b] = await withTimeout(states, STEP_MS, "the check event");

    // What happened must be what the mode says.
    const failures = [];
    const resumed = reflector.count("view.resumed");
    const joined = reflector.count("view.joined");
    for (let i = 0; i < 2; i++) {
      const sameView = sessions[i].view === before[i].view;
      const sameModel = sessions[i].model === before[i].model;
      if (mode === "resume" && !(sameView && sameModel)) failures.push(`client ${i + 1} did not resume (same view: ${sameView}, same model: ${sameModel})`);
      if (mode === "full" && (sameView || sameModel)) failures.push(`client ${i + 1} kept its ${sameView ? "view" : "model"}: not a full rejoin`);
      if (sessions[i].model.entries.length !== ENTRIES) failures.push(`client ${i + 1} has ${sessions[i].model.entries.length} entries, not ${ENTRIES}`);
    }
    if (mode === "resume" && (resumed !== 2 || joined !== 0)) failures.push(`reflector logged ${resumed} view.resumed and ${joined} view.joined, expected 2 and 0`);
    if (mode === "full" && (resumed !== 0 || joined !== 2)) failures.push(`reflector logged ${resumed} view.resumed and ${joined} view.joined, expected 0 and 2`);
    if (a.seq !== b.seq || a.hash !== b.hash) failures.push(`the replicas' states differ after the check event (#${a.seq} vs #${b.seq})`);
    const loaded = reflector.events.find((e) => e.event === "session.loaded")?.fields ?? {};
    if (loaded.snapshotSeq === undefined) failures.push("the restarted reflector loaded no snapshot");
    if (failures.length) {
      const fields = (f) => Object.entries(f ?? {}).filter(([k]) => k !== "sessionId").map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
      const log = reflector.events.map((e) => `${ms(e.at - restartedAt)} ${e.event} ${fields(e.fields)}`);
      const seqs = sessions.map((s, i) => `client ${i + 1}: viewId ${s.viewId}, joined at ${ms(t[i].connected - restartedAt)}`);
      throw new Error(`${failures.join("; ")}\n    ${seqs.join("\n    ")}\n    the restarted reflector logged:\n      ${log.join("\n      ")}`);
    }

    const slower = t[0].connected >= t[1].connected ? 0 : 1;
    const openedAt = opens[slower].filter((at) => at <= t[slower].connected).at(-1);
    return {
      connected: t[slower].connected - restartedAt,
      work: t[slower].connected - openedAt,
      applied: Math.max(t[0].applied, t[1].applied) - restartedAt,
      listening: reflector.listeningAt - restartedAt,
      attempts: opens[slower].tries - 2, // connections tried but the first join and the one that worked
      snapshotSeq: loaded.snapshotSeq,
      logEntries: loaded.entries,
      lastSeq: loaded.lastSeq,
    };
  } finally {
    await Promise.all(sessions.map((s) => withTimeout(s.leave(), 8000, "leave").catch(() => undefined)));
    await reflector.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- the runs
const results = { resume: [], full: [] };
let failed = false;
for (let run = 0; run < RUNS; run++) {
  for (const mode of ["resume", "full"]) {
    try {
      const r = await measure(mode, run);
      results[mode].push(r);
      note(`  run ${run + 1}/${RUNS} ${mode.padEnd(6)}: restart→connected ${ms(r.connected)} (socket open→connected ${ms(r.work)}), event applied ${ms(r.applied)}, listening ${ms(r.listening)}`);
    } catch (error) {
      failed = true;
      note(`  run ${run + 1}/${RUNS} ${mode}: FAILED: ${error instanceof Error ? error.message : String(error)}`);
      if (libraryLog.length) note(`  last client log lines:\n    ${libraryLog.slice(-5).join("\n    ")}`);
    }
  }
}

const sample = results.full[0] ?? results.resume[0];
print(
  `reconnect after a ${OUTAGE_MS / 1000} s outage (reflector SIGKILLed, restarted on the same port and fs data dir), 2 clients, ` +
    `${ENTRIES} entries${sample ? ` (restart loads snapshot #${sample.snapshotSeq} + ${sample.logEntries} log entries, to #${sample.lastSeq})` : ""}; ` +
    `${results.resume.length} resume / ${results.full.length} full runs, slower client of each run; median / p90`,
);
const rows = [
  ["resume", results.resume],
  ["full rejoin (baseline)", results.full],
];
const cell = (xs, key) => (xs.length ? `${ms(median(xs.map((r) => r[key])))} / ${ms(p90(xs.map((r) => r[key])))}` : "-");
print(`${"mode".padEnd(23)} ${"restart→connected".padEnd(18)} ${"socket open→connected".padEnd(22)} ${"restart→event applied".padEnd(22)} ${"connected÷applied".padEnd(18)} restart→listening`);
for (const [label, xs] of rows) {
  const ratio = xs.length ? `${(median(xs.map((r) => r.connected)) / median(xs.map((r) => r.applied))).toFixed(2)}` : "-";
  print(`${label.padEnd(23)} ${cell(xs, "connected").padEnd(18)} ${cell(xs, "work").padEnd(22)} ${cell(xs, "applied").padEnd(22)} ${ratio.padEnd(18)} ${cell(xs, "listening")}`);
}
if (results.resume.length && results.full.length) {
  const ratio = (key) => (median(results.full.map((r) => r[key])) / median(results.resume.map((r) => r[key]))).toFixed(2);
  print(`ratio full ÷ resume (medians): restart→connected ${ratio("connected")}×, socket open→connected ${ratio("work")}×, restart→event applied ${ratio("applied")}×`);
  const attempts = [...results.resume, ...results.full].map((r) => r.attempts);
  print(`(restart→connected includes the wait for the client's next backoff attempt: ${Math.min(...attempts)}–${Math.max(...attempts)} failed attempts during the outage)`);
}
process.exit(failed || !results.resume.length || !results.full.length ? 1 : 0);
