#!/usr/bin/env node
// Attack probe (issue 12): replays attacks against a reflector running in its own process, prints
// one line with a figure per attack, checks each figure against its target, prints a table and
// exits 1 if any target is missed. Each attack is an independent function with a reflector of its
// own (fresh data directory, fresh RSS baseline), so one missing defence never masks another.
//
//   node scripts/build.mjs && node scripts/probe/attacks.mjs [--quick] [--only 1,4,7] [--keep] [--verbose]
//
// --quick  the test command's mode: the whole run takes ≤ ~60 s on 2 cores; where a full-size run
//          would take long the reflector starts with a higher per-connection byte rate (attacks 2
//          and 4, same volumes and caps) or the attack is shorter (3, 8). Without it: the issue's
//          figures at default limits (about 2 minutes).
// --only   run only these attacks (numbers, comma-separated).
// --keep   keep the temp directory (reflector logs, data directories) and print its path.
// --verbose  pass the client library's console output through (it is swallowed otherwise).
//
// Everything runs on 127.0.0.1, is bounded in count and time and stops by itself. The probe kills
// only the processes it started, by PID, and removes its temp directory when it exits.
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import net from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import {
  CloseCode,
  DEFAULT_LIMITS,
  MessageType,
  PersistOutcome,
  decodeServerMessage,
  encodeClientMessage,
  encodeJoinAuth,
  encodeSend,
  toBase64Url,
} from "@lockstep/protocol";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    keep: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
    "flood-child": { type: "string" },
  },
});
const QUICK = args.quick;

// ============================================================================ constants

const MiB = 1024 * 1024;
const MB = 1_000_000;
const ROOT = join(import.meta.dirname, "..", "..");
const SELF = join(import.meta.dirname, "attacks.mjs");
const LAUNCHER = join(import.meta.dirname, "reflector-child.mjs");
const CLI = join(ROOT, "reflector", "bin", "lockstep-reflector.js");
/** Open files a spawned reflector may have (attack 7 opens thousands of sockets). */
const FD_LIMIT = 16384;
/** The reflector caps of SPEC-issue12 (ReflectorCaps defaults); the reflector does not export them. */
const CAPS = {
  maxConnectionsPerAddress: 256,
  joinTimeoutMs: 5_000,
  maxBufferedBytes: 16 * MiB,
  maxLogBytes: 32 * MiB,
  newSessionsPerAddressPerMinute: 60,
};
const LIMITS = DEFAULT_LIMITS;

/**
 * Attack 7 opens thousands of sockets in this process too: with a low open-files limit, run again
 * under `ulimit -n` raised (as far as the hard limit allows).
 */
function ensureFdLimit() {
  if (args["flood-child"] || process.env.LOCKSTEP_PROBE_FD_RAISED) return;
  const soft = Number(/Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? Infinity);
  if (soft >= 8192) return;
  const rerun = spawnSync("bash", ["-c", `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n hard; exec "$0" "$@"`, process.execPath, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, LOCKSTEP_PROBE_FD_RAISED: "1" },
  });
  process.exit(rerun.status ?? 1);
}
ensureFdLimit();

// ============================================================================ small helpers

const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const range = (n) => Array.from({ length: n }, (_, i) => i);
const sha256 = (data) => createHash("sha256").update(data).digest();
const b64sha = (text) => toBase64Url(new Uint8Array(sha256(text)));
const randomId = (bytes = 32) => toBase64Url(new Uint8Array(randomBytes(bytes)));
const mb = (bytes) => `${(bytes / MB).toFixed(1)} MB`;
const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const tally = (counts, key) => void (counts[key] = (counts[key] ?? 0) + 1);
const fmtTally = (counts) => Object.entries(counts).map(([k, v]) => `${v}×${k}`).join(", ") || "none";
const percentile = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);
const print = (line) => void process.stdout.write(line + "\n");

/** Resolves true once `pred()` holds, false after `timeoutMs`. */
async function until(pred, timeoutMs, everyMs = 20) {
  const end = now() + timeoutMs;
  while (!pred()) {
    if (now() > end) return false;
    await sleep(everyMs);
  }
  return true;
}

/** `promise`, or a rejection naming `what` after `ms`. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${secs(ms)}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A token bucket on the client side, so a sender stays under the reflector's per-connection rate. */
class Pacer {
  constructor(perSecond, burst) {
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = burst;
    this.at = now();
  }
  async take(n) {
    for (;;) {
      const t = now();
      this.tokens = Math.min(Math.max(this.burst, n), this.tokens + ((t - this.at) * this.perSecond) / 1000);
      this.at = t;
      if (this.tokens >= n) {
        this.tokens -= n;
        return;
      }
      await sleep(((n - this.tokens) / this.perSecond) * 1000);
    }
  }
}

// ============================================================================ processes and temp dirs

const TMP = args["flood-child"] ? undefined : mkdtempSync(join(tmpdir(), "lockstep-probe-"));
// Attack 11 runs a reflector as nobody, which must reach its directory inside this one.
if (TMP) chmodSync(TMP, 0o755);
/** Every process this probe started, by PID: killed (by PID) if the probe ends early. */
const started = new Map();

function track(child) {
  started.set(child.pid, child);
  child.once("exit", () => started.delete(child.pid));
  return child;
}

process.on("exit", () => {
  for (const pid of started.keys()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  if (TMP === undefined) return;
  if (args.keep) process.stderr.write(`probe files kept in ${TMP}\n`);
  else rmSync(TMP, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));

let dirCount = 0;
/** A fresh directory under the probe's temp dir. */
function freshDir(name) {
  const dir = join(TMP, `${name}-${++dirCount}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Starts a reflector in its own process (scripts/probe/reflector-child.mjs, raising the open-files
 * limit first) with `options` (ReflectorOptions as JSON) and waits for its "listening" line.
 * Its stdout/stderr go to TMP/<name>.log. `cpus` pins it (taskset list, e.g. "0").
 */
async function spawnReflector(name, options = {}, { dataDir = freshDir(name), port = 0, cpus } = {}) {
  const logPath = join(TMP, `${name}.log`);
  const log = createWriteStream(logPath, { flags: "a" });
  const config = JSON.stringify({ host: "127.0.0.1", port, dataDir, logLevel: "warn", ...options });
  const child = track(
    spawn("bash", ["-c", `ulimit -n ${FD_LIMIT} 2>/dev/null || true; exec ${cpus ? `taskset -c ${cpus} ` : ""}"$0" "$@"`, process.execPath, "--expose-gc", LAUNCHER, config], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`reflector ${name} did not listen within 15 s (log: ${logPath})`)), 15_000);
    const onData = (chunk) => {
      seen = (seen + chunk).slice(-4096);
      const m = /Lockstep reflector listening on (ws:\/\/\S+)/.exec(seen);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off("data", onData);
      resolve(m[1]);
    };
    child.stdout.on("data", onData);
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`reflector ${name} exited (${code}) before listening: ${readFileSync(logPath, "utf8").trim().slice(-300)}`));
    });
  });
  const pid = child.pid;
  const memoryWaiters = [];
  let tail = "";
  child.stdout.on("data", (chunk) => {
    tail += chunk;
    let nl;
    while ((nl = tail.indexOf("\n")) >= 0) {
      const line = tail.slice(0, nl);
      tail = tail.slice(nl + 1);
      if (line.startsWith("probe-memory ")) memoryWaiters.shift()?.(JSON.parse(line.slice(13)));
    }
  });
  return {
    name,
    pid,
    url,
    port: Number(new URL(url).port),
    dataDir,
    logPath,
    exited,
    /** The reflector's process.memoryUsage() after a full GC (live heap and buffers), or undefined. */
    memory() {
      if (!started.has(pid)) return Promise.resolve(undefined);
      const reply = new Promise((resolve) => memoryWaiters.push(resolve));
      child.kill("SIGUSR2");
      return withTimeout(reply, 5000, "memory report").catch(() => undefined);
    },
    /** SIGTERM, then SIGKILL after 5 s; resolves with the exit status. */
    async stop() {
      if (!started.has(pid)) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      const status = await exited;
      clearTimeout(timer);
      return status;
    },
  };
}

/** What an attack holds: cleanups run in reverse order when it ends, however it ends. */
class Scope {
  #cleanups = [];
  defer(fn) {
    this.#cleanups.push(fn);
  }
  async reflector(name, options, extra) {
    const r = await spawnReflector(name, options, extra);
    this.defer(() => r.stop());
    return r;
  }
  async close() {
    for (const fn of this.#cleanups.reverse()) {
      try {
        await withTimeout(Promise.resolve().then(fn), 10_000, "cleanup");
      } catch {
        // best effort: the exit handler kills what is left
      }
    }
  }
}

// ============================================================================ measuring the reflector

/** The process's resident set size in bytes, from /proc/<pid>/status (VmRSS); NaN if gone. */
function rss(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Samples RSS every `everyMs` until stop(); stop() returns the peak. */
function sampleRss(pid, everyMs = 100) {
  let peak = rss(pid);
  const timer = setInterval(() => {
    const v = rss(pid);
    if (v > peak) peak = v;
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const v = rss(pid);
      return v > peak ? v : peak;
    },
  };
}

/** RSS once it stopped growing (five samples 250 ms apart within 1 MB), or after `maxMs`. */
async function settledRss(pid, maxMs = 5000) {
  const samples = [rss(pid)];
  const end = now() + maxMs;
  while (now() < end) {
    await sleep(250);
    samples.push(rss(pid));
    const last = samples.slice(-5);
    if (last.length === 5 && Math.max(...last) - Math.min(...last) < MB) break;
  }
  return samples.at(-1);
}

/** ", live buffers +X MB": growth of the reflector's ArrayBuffers and heap after a GC (what it still holds). */
function liveBuffers(before, after) {
  if (!before || !after) return "";
  const held = after.arrayBuffers + after.heapUsed - (before.arrayBuffers + before.heapUsed);
  return `, of which live heap and buffers +${mb(held)}`;
}

/** Total size of the files under `dir`: `bytes` (apparent) and `allocated` (blocks on disk). */
function dirUsage(dir) {
  const usage = { bytes: 0, allocated: 0 };
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return usage;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    try {
      const st = statSync(p);
      usage.allocated += st.blocks * 512;
      if (e.isDirectory()) {
        const sub = dirUsage(p);
        usage.bytes += sub.bytes;
        usage.allocated += sub.allocated;
      } else usage.bytes += st.size;
    } catch {
      // removed meanwhile
    }
  }
  return usage;
}

/** GET /health of a reflector: {status, sessions, connections}. */
async function health(port) {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return res.json();
}

/** The filesystem store's directory of a session (upper case is escaped as ^lower: reflector/src/storage/fs-names.ts). */
function sessionDir(dataDir, sessionId) {
  return join(dataDir, "sessions", sessionId.replace(/[A-Z]/g, (c) => "^" + c.toLowerCase()));
}

function sessionDirs(dataDir) {
  try {
    return readdirSync(join(dataDir, "sessions"));
  } catch {
    return [];
  }
}

// ============================================================================ raw protocol client

/** Keys of a session an attacker (or raw client) creates: any token, verifier = SHA-256(token), random check. */
function newIdentity({ sessionId = randomId(), persistentId = randomId() } = {}) {
  const token = randomBytes(32);
  return { sessionId, persistentId, token, verifier: sha256(token), check: randomBytes(48) };
}

function joinFrame(id, viewId) {
  const auth = encodeJoinAuth({ token: id.token, verifier: id.verifier, check: id.check, slot: "", slotToken: new Uint8Array(0) });
  return encodeClientMessage({
    type: MessageType.Join,
    sessionId: id.sessionId,
    persistentId: id.persistentId,
    viewId,
    tps: 20,
    auth,
    viewData: new Uint8Array(0),
  });
}

/** A Join that was refused: the close code (or HTTP status) and the reflector's message. */
class Refused extends Error {
  constructor(code, message) {
    super(`refused ${code}${message ? `: ${message}` : ""}`);
    this.code = code;
  }
}

/** Opens a WebSocket; rejects with Refused(`HTTP nnn`) if the upgrade is refused. */
function openWs(url, { maxPayload = 256 * MiB } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload, perMessageDeflate: false, handshakeTimeout: 10_000 });
    ws.on("error", (error) => reject(error));
    ws.once("unexpected-response", (req, res) => {
      reject(new Refused(`HTTP ${res.statusCode}`));
      res.resume();
      req.destroy();
    });
    ws.once("open", () => resolve(ws));
    ws.once("close", (code) => reject(new Refused(code, "closed before open")));
  });
}

/** One raw protocol connection: counts frames by type, remembers the Error frame and the close. */
class RawClient {
  constructor(ws) {
    this.ws = ws;
    this.received = new Map();
    this.error = undefined;
    this.onFrame = undefined;
    this.closeCode = undefined;
    this.closed = new Promise((resolve) =>
      ws.once("close", (code, reason) => {
        this.closeCode = code;
        resolve({ code, reason: String(reason) });
      }),
    );
    ws.on("message", (data, isBinary) => {
      if (!isBinary || data.length < 2) return;
      const type = data[1];
      this.received.set(type, (this.received.get(type) ?? 0) + 1);
      if (type === MessageType.Error) this.error = decodeServerMessage(data);
      this.onFrame?.(type, data);
    });
  }
  get open() {
    return this.ws.readyState === WebSocket.OPEN;
  }
  count(type) {
    return this.received.get(type) ?? 0;
  }
  send(frame) {
    if (!this.open) return false;
    this.ws.send(frame);
    return true;
  }
  /** The next frame of `type`, decoded; rejects if the socket closes first or after `timeoutMs`. */
  next(type, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const previous = this.onFrame;
      const timer = setTimeout(() => done(new Error(`no frame 0x${type.toString(16)} within ${timeoutMs} ms`)), timeoutMs);
      const done = (error, msg) => {
        clearTimeout(timer);
        this.onFrame = previous;
        if (error) reject(error);
        else resolve(msg);
      };
      this.onFrame = (t, data) => {
        previous?.(t, data);
        if (t === type) done(undefined, decodeServerMessage(data));
      };
      this.closed.then(({ code }) => done(new Refused(code, this.error?.message)));
    });
  }
  leave() {
    this.send(Uint8Array.of(1, MessageType.Leave));
    this.ws.close(1000);
  }
  terminate() {
    this.ws.terminate();
  }
}

/**
 * Joins (or creates) the session `id` with a raw Join and resolves with the client once its Sync
 * arrived (`client.sync`); rejects with Refused(close code) if the reflector refuses it.
 * `onFrame(type, bytes)` sees every frame after the Sync, from the first one on.
 */
async function rawJoin(url, id, { viewId = randomId(12), onFrame, timeoutMs = 10_000 } = {}) {
  const ws = await openWs(url);
  const client = new RawClient(ws);
  client.sync = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Refused("timeout", `no Sync within ${timeoutMs} ms`));
      ws.terminate();
    }, timeoutMs);
    client.onFrame = (type, data) => {
      if (type !== MessageType.Sync) return;
      clearTimeout(timer);
      client.onFrame = onFrame;
      resolve(decodeServerMessage(data));
    };
    client.closed.then(({ code, reason }) => {
      clearTimeout(timer);
      reject(new Refused(code, client.error?.message ?? reason));
    });
    ws.send(joinFrame(id, viewId));
  });
  client.viewId = viewId;
  return client;
}

// ============================================================================ honest clients (the real library)

const CLIENT_URL = import.meta.resolve("@lockstep/client");
/**
 * A fresh instance of the client library: its class registry is a module singleton, and every
 * registered class is part of the versionId, so each code version gets a module instance of its own.
 */
const loadClient = (tag) => import(`${CLIENT_URL}?probe=${tag}`);

/** Library console output, kept out of the probe's report unless --verbose. */
const libraryLog = [];
if (!args.verbose && !args["flood-child"]) {
  for (const method of ["log", "info", "warn", "error", "debug"]) {
    console[method] = (...parts) => {
      libraryLog.push(parts.map(String).join(" "));
      if (libraryLog.length > 500) libraryLog.shift();
    };
  }
}

function honestJoin(client, model, { url, appId, name, password, socket }) {
  return withTimeout(
    client.Session.join({ appId, name, password, model, view: client.View, reflector: url, step: "auto", ...(socket ? { socket } : {}) }),
    20_000,
    "Session.join",
  );
}

/** A root model counting "probe/inc" events (and "probe/mark" markers, to compare replicas at one point). */
function counterModel(client, classId) {
  class Counter extends client.Model {
    init() {
      this.count = 0;
      this.marks = 0;
      this.subscribe("probe", "inc", this.inc);
      this.subscribe("probe", "mark", this.mark);
    }
    inc() {
      this.count++;
    }
    mark() {
      this.marks++;
    }
  }
  Counter.register(classId);
  return Counter;
}

/** SHA-256 of each session's state right after the entry at which `ready(session)` first holds. */
function hashesWhen(sessions, ready, timeoutMs = 10_000) {
  return withTimeout(
    Promise.all(
      sessions.map(
        (s) =>
          new Promise((resolve) => {
            if (ready(s)) return resolve(sha256(s.stateBytes()).toString("hex"));
            const stop = s.afterEntry(() => {
              if (!ready(s)) return;
              stop();
              resolve(sha256(s.stateBytes()).toString("hex"));
            });
          }),
      ),
    ),
    timeoutMs,
    "replicas reaching the marker",
  );
}

/**
 * The public ids a code version has (persistentId and sessionId, as the client API shows them),
 * learned by a throwaway join against a separate in-process reflector: they depend only on public
 * things (appId, name, options, code), not on the password.
 */
async function learnPublicIds(versions, appId, name) {
  const { startReflector, silentLogger } = await import("@lockstep/reflector");
  const elsewhere = await startReflector({ port: 0, logger: silentLogger });
  try {
    const sessionIds = [];
    let persistentId;
    for (const { client, model } of versions) {
      const s = await honestJoin(client, model, { url: elsewhere.url, appId, name, password: "anything: public ids do not depend on it" });
      sessionIds.push(s.id);
      persistentId = s.persistentId;
      await withTimeout(s.leave(), 8000, "leave");
    }
    return { persistentId, sessionIds };
  } finally {
    await elsewhere.close();
  }
}

// ============================================================================ attack 1: unfinished pre-join messages

const ZERO_MIB = Buffer.alloc(MiB);

/** A masked client frame header with a 64-bit length and an all-zero mask key (so zero bytes stay zero). */
function wsHeader(fin, opcode, length) {
  const h = Buffer.alloc(14);
  h[0] = (fin ? 0x80 : 0) | opcode;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h;
}

/** Splits unmasked server frames off `buf`, calling `onFrame(opcode, payload)`; returns the rest. */
function parseServerFrames(buf, onFrame) {
  while (buf.length >= 2) {
    let length = buf[1] & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (buf.length < 4) break;
      length = buf.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (buf.length < 10) break;
      length = Number(buf.readBigUInt64BE(2));
      offset = 10;
    }
    if (buf.length < offset + length) break;
    onFrame(buf[0] & 0x0f, buf.subarray(offset, offset + length));
    buf = buf.subarray(offset + length);
  }
  return buf;
}

/**
 * A hand-rolled WebSocket client that, before any Join, streams `bytes` of one message that never
 * finishes: one frame declaring `declared` bytes, or (fragmented) 1 MiB non-final fragments.
 * Resolves once the reflector closed it (close frame or TCP close) or at `giveUpAt`.
 */
function unfinishedMessage(port, { fragmented, bytes, declared, giveUpAt }) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const result = { sent: 0, closedAt: undefined, how: undefined };
    let finished = false;
    let upgraded = false;
    let inbox = Buffer.alloc(0);
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const closed = (how) => {
      if (finished) return; // our own destroy at giveUpAt
      if (result.closedAt === undefined) {
        result.closedAt = now();
        result.how = how;
      }
      finish();
    };
    const timer = setTimeout(finish, giveUpAt - now());
    socket.on("error", () => closed("reset"));
    socket.on("close", () => closed("tcp close"));
    socket.on("end", () => closed("tcp close"));
    socket.on("data", (chunk) => {
      inbox = Buffer.concat([inbox, chunk]);
      if (!upgraded) {
        const end = inbox.indexOf("\r\n\r\n");
        if (end < 0) return;
        const status = /^HTTP\/1\.1 (\d+)/.exec(inbox.subarray(0, end).toString("latin1"))?.[1];
        inbox = inbox.subarray(end + 4);
        if (status !== "101") return closed(`HTTP ${status}`);
        upgraded = true;
        pump();
      }
      inbox = parseServerFrames(inbox, (opcode, payload) => {
        if (opcode === 8) closed(`close ${payload.length >= 2 ? payload.readUInt16BE(0) : 1005}`);
      });
    });
    socket.once("connect", () => {
      socket.write(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    const drained = () =>
      new Promise((r) => {
        const t = setTimeout(r, Math.max(0, giveUpAt - now()));
        const done = () => {
          clearTimeout(t);
          socket.off("drain", done);
          socket.off("close", done);
          r();
        };
        socket.once("drain", done);
        socket.once("close", done);
      });
    async function pump() {
      if (!fragmented) socket.write(wsHeader(true, 0x2, declared));
      while (result.sent < bytes && !finished && now() < giveUpAt) {
        if (fragmented) socket.write(wsHeader(false, result.sent === 0 ? 0x2 : 0x0, ZERO_MIB.length));
        const more = socket.write(ZERO_MIB);
        result.sent += ZERO_MIB.length;
        if (!more) await drained();
      }
    }
  });
}

async function attack1(scope) {
  const sockets = 50;
  const bytes = 40 * MiB;
  const r = await scope.reflector("a1");
  const before = await settledRss(r.pid, 2000);
  const peak = sampleRss(r.pid);
  const t0 = now();
  const results = await Promise.all(
    range(sockets).map((i) => unfinishedMessage(r.port, { fragmented: i % 2 === 1, bytes, declared: 60 * MiB, giveUpAt: t0 + 7000 })),
  );
  const peakRss = peak.stop();
  const settled = await settledRss(r.pid, 3000);
  const closedIn5s = results.filter((x) => x.closedAt !== undefined && x.closedAt - t0 <= 5000).length;
  const slowest = Math.max(...results.map((x) => (x.closedAt ?? Infinity) - t0));
  const sent = results.reduce((sum, x) => sum + x.sent, 0);
  const how = {};
  for (const x of results) tally(how, x.how ?? "still open");
  const growth = peakRss - before;
  return {
    figure: `RSS +${mb(growth)} peak (+${mb(settled - before)} settled); ${closedIn5s}/${sockets} closed ≤ 5 s (slowest ${Number.isFinite(slowest) ? secs(slowest) : "never"}; ${fmtTally(how)}); ${mib(sent)} written in all`,
    ok: growth < 50 * MB && closedIn5s === sockets,
  };
}

// ============================================================================ attack 2: a member that stops reading

async function attack2(scope) {
  // Quick mode sends half as much at twice the per-connection byte rate: 6 s instead of 25 s. (Much
  // faster makes the reflector's garbage between GCs, not what it holds, dominate its RSS.)
  const total = QUICK ? 128 * MiB : 250 * MiB;
  const senderCount = 6;
  const rate = QUICK ? 4 * MiB : LIMITS.maxBytesPerSecond;
  const payload = randomBytes(256_000);
  const frameBytes = encodeSend(payload).length;
  // The log cap is attack 4's business: raise it so that 250 MiB of unsnapshotted traffic is allowed.
  const r = await scope.reflector("a2", { caps: { maxLogBytes: 4096 * MiB }, limits: { maxBytesPerSecond: rate } });
  const id = newIdentity();
  const receiver = await rawJoin(r.url, id);
  const stalled = await rawJoin(r.url, id);
  stalled.ws._socket.pause(); // never reads again: the kernel buffers fill, then the reflector's queue
  const senders = await Promise.all(range(senderCount).map(() => rawJoin(r.url, id)));
  for (const c of [receiver, stalled, ...senders]) scope.defer(() => c.terminate());
  const honest = [receiver, ...senders];
  const connectionsBefore = (await health(r.port)).connections;
  const before = await settledRss(r.pid, 2000);
  const memBefore = await r.memory();
  const peak = sampleRss(r.pid);
  // Paced below maxBytesPerSecond (and without its burst) so honest readers never lag behind.
  const perSender = Math.ceil(total / frameBytes / senderCount);
  const frame = encodeSend(payload);
  let sent = 0;
  const t0 = now();
  await Promise.all(
    senders.map(async (s) => {
      const pacer = new Pacer(0.9 * rate, MiB);
      for (let i = 0; i < perSender && s.open; i++) {
        await pacer.take(frameBytes);
        if (s.send(frame)) sent++;
      }
    }),
  );
  const sendMs = now() - t0;
  await until(() => honest.every((c) => c.count(MessageType.Relay) >= sent || !c.open), 20_000);
  const peakRss = peak.stop();
  const settled = await settledRss(r.pid, 3000);
  const live = liveBuffers(memBefore, await r.memory());
  const connectionsAfter = (await health(r.port)).connections;
  const droppedByServer = connectionsAfter === connectionsBefore - 1 && honest.every((c) => c.open);
  // Read again: a SlowReader close (4011) queued behind the data, or a reset if it was terminated.
  stalled.ws._socket.resume();
  const stalledClose = await Promise.race([stalled.closed.then((c) => c.code), sleep(5000).then(() => "still open")]);
  const receivedAll = honest.filter((c) => c.count(MessageType.Relay) >= sent).length;
  const closedHonest = honest.filter((c) => !c.open).map((c) => c.closeCode);
  const growth = settled - before;
  const stalledOk = stalledClose === CloseCode.SlowReader || droppedByServer;
  return {
    figure:
      `RSS +${mb(growth)} settled${live} (peak +${mb(peakRss - before)}) while ${mib(sent * frameBytes)} went out in ${secs(sendMs)}; ` +
      `stalled reader: ${droppedByServer ? "dropped by the reflector" : "still connected at the reflector"}, close ${stalledClose} ` +
      `after ${stalled.count(MessageType.Relay)} relays read; others received ${receivedAll}/${honest.length} × ${sent}` +
      (closedHonest.length ? `; honest members closed: ${closedHonest.join(", ")}` : ""),
    ok: growth < 100 * MB && stalledOk && receivedAll === honest.length,
  };
}

// ============================================================================ attack 3: ping / any-frame flood

/**
 * Child-process role (`--flood-child JSON`): joins a session it creates and floods one frame type
 * as fast as it can, rejoining whenever it is closed, for `seconds`; prints a JSON report.
 */
async function floodChild({ url, kind, seconds }) {
  const id = newIdentity();
  const frame =
    kind === "ping"
      ? encodeClientMessage({ type: MessageType.Ping, id: 1 })
      : encodeClientMessage({ type: MessageType.SnapshotVote, seq: 1, hash: new Uint8Array(randomBytes(32)) });
  const end = now() + seconds * 1000;
  const report = { kind, connections: 0, frames: 0, closes: {}, refusals: {} };
  while (now() < end) {
    let c;
    try {
      c = await rawJoin(url, id, { timeoutMs: 3000 });
      report.connections++;
    } catch (error) {
      tally(report.refusals, error.code ?? error.message);
      await sleep(20);
      continue;
    }
    while (c.open && now() < end) {
      if (c.ws.bufferedAmount < MiB) {
        for (let i = 0; i < 256; i++) c.ws.send(frame);
        report.frames += 256;
      }
      await new Promise((r) => setImmediate(r));
    }
    if (c.open) c.terminate();
    else tally(report.closes, (await c.closed).code);
  }
  process.stdout.write(JSON.stringify(report) + "\n");
}

function spawnFlooder(url, kind, seconds, pinning) {
  const node = [process.execPath, SELF, "--flood-child", JSON.stringify({ url, kind, seconds })];
  const argv = pinning ? ["taskset", "-c", pinning.others, "nice", "-n", "19", ...node] : node;
  const child = track(spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] }));
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  const killer = setTimeout(() => child.kill("SIGKILL"), (seconds + 15) * 1000);
  return new Promise((resolve) =>
    child.once("exit", () => {
      clearTimeout(killer);
      try {
        resolve(JSON.parse(out.trim().split("\n").at(-1)));
      } catch {
        resolve({ kind, connections: 0, frames: 0, closes: {}, refusals: { "flooder crashed": 1 } });
      }
    }),
  );
}

/** CPU lists for attack 3 (reflector alone on CPU 0, everything else on the rest), or undefined without taskset or a second CPU. */
function cpuPinning() {
  const cpus = availableParallelism();
  if (cpus < 2 || spawnSync("taskset", ["-V"]).status !== 0) return undefined;
  return { reflector: "0", others: cpus === 2 ? "1" : `1-${cpus - 1}`, all: `0-${cpus - 1}` };
}

/** Sets this process's CPU affinity (every thread). */
function pinSelf(cpus) {
  spawnSync("taskset", ["-a", "-cp", cpus, String(process.pid)], { stdio: "ignore" });
}

/** A sender and a receiver in a session of their own: Send at `rate`/s, time from Send to Relay. */
async function latencyPair(url) {
  const id = newIdentity();
  const sentAt = new Map();
  const latencies = [];
  await rawJoin(url, id, {
    onFrame: (type, data) => {
      if (type !== MessageType.Relay) return;
      const { payload } = decodeServerMessage(data);
      const n = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
      const t = sentAt.get(n);
      if (t === undefined) return;
      sentAt.delete(n);
      latencies.push(now() - t);
    },
  });
  const sender = await rawJoin(url, id);
  let n = 0;
  return {
    async measure(ms, rate = 100) {
      latencies.length = 0;
      sentAt.clear();
      const end = now() + ms;
      let next = now();
      while (now() < end) {
        const payload = Buffer.alloc(4);
        payload.writeUInt32BE(n);
        sentAt.set(n++, now());
        sender.send(encodeSend(payload));
        next += 1000 / rate;
        await sleep(next - now());
      }
      await until(() => sentAt.size === 0, 3000);
      const sorted = [...latencies].sort((a, b) => a - b);
      return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), samples: sorted.length, lost: sentAt.size };
    },
  };
}

async function attack3(scope) {
  // p99 of 100 samples a second: with fewer than ~800 samples a single flood connection's burst
  // (one 64 KiB read of tiny frames is parsed whole before the limit closes it) decides the p99.
  const seconds = QUICK ? 8 : 10;
  // On a small machine the flooder's own CPU would slow the measuring side down, which is no
  // property of the reflector (a real attacker runs elsewhere): the reflector gets CPU 0 to itself,
  // the flooder runs niced beside the probe on the others, so the probe preempts it.
  const pinning = cpuPinning();
  const r = await scope.reflector("a3", {}, { cpus: pinning?.reflector });
  if (pinning) {
    pinSelf(pinning.others);
    scope.defer(() => pinSelf(pinning.all));
  }
  const pair = await latencyPair(r.url);
  await pair.measure(500); // warm-up
  const unloaded = await pair.measure(seconds * 1000);
  const ms = (x) => `${x.toFixed(1)}`;
  // Guard against a sub-millisecond baseline turning scheduler noise into a miss.
  const limit = 2 * Math.max(unloaded.p99, 1);
  const parts = [`unloaded p50/p99 ${ms(unloaded.p50)}/${ms(unloaded.p99)} ms (limit under flood ${ms(limit)})`];
  let ok = true;
  for (const kind of ["ping", "vote"]) {
    const flood = spawnFlooder(r.url, kind, seconds + 1, pinning);
    await sleep(500);
    const loaded = await pair.measure(seconds * 1000);
    const report = await flood;
    const limited = report.closes[CloseCode.RateLimited] ?? 0;
    const good = limited > 0 && loaded.p99 <= limit && loaded.lost === 0;
    ok &&= good;
    parts.push(
      `${kind} flood: p50/p99 ${ms(loaded.p50)}/${ms(loaded.p99)} ms${loaded.lost ? ` (${loaded.lost} lost)` : ""}, ` +
        `flooder closed ${limited}× 4005 in ${report.connections} joins (closes ${fmtTally(report.closes)}, ${(report.frames / 1e6).toFixed(1)} M frames)`,
    );
  }
  if (pinning) parts.push(`reflector pinned to CPU ${pinning.reflector}, probe and niced flooder on ${pinning.others}`);
  return { figure: parts.join("; "), ok };
}

// ============================================================================ attack 4: a session that never snapshots

async function attack4(scope) {
  // Quick mode only raises the byte rate: the default 32 MiB cap is then reached in ~2 s (a smaller
  // cap would be quicker still, but under maxLogMemoryBytes' 8 MiB it hides what the log keeps in memory).
  const cap = CAPS.maxLogBytes;
  const rate = QUICK ? 16 * MiB : LIMITS.maxBytesPerSecond;
  const options = QUICK ? { limits: { maxBytesPerSecond: rate } } : {};
  const r = await scope.reflector("a4", options);
  const id = newIdentity();
  const frame = encodeSend(randomBytes(256_000));
  const before = await settledRss(r.pid, 2000);
  const memBefore = await r.memory();
  const peak = sampleRss(r.pid);
  const pacer = new Pacer(0.9 * rate, LIMITS.byteBurst / 2);
  const deadline = now() + (QUICK ? 15_000 : 120_000);
  const closes = {};
  let sent = 0;
  let logFullAfter;
  let atCap = NaN; // RSS once the cap is reached, before the reconnect (whose Sync carries the whole log)
  let refusedAgain = false;
  let last;
  while (now() < deadline && sent < 2 * cap && !refusedAgain) {
    let c;
    try {
      c = await rawJoin(r.url, id);
    } catch (error) {
      tally(closes, `join ${error.code}`);
      if (logFullAfter !== undefined && error.code === CloseCode.LogFull) refusedAgain = true;
      await sleep(200);
      continue;
    }
    last = c;
    if (logFullAfter !== undefined) {
      // Cap reached before: one more Send must be refused too (the client never voted, so no snapshot trimmed the log).
      c.send(frame);
      const code = await Promise.race([c.closed.then((x) => x.code), sleep(3000).then(() => "accepted")]);
      tally(closes, code);
      refusedAgain = code === CloseCode.LogFull;
      break;
    }
    while (c.open && now() < deadline && sent < 2 * cap) {
      await pacer.take(frame.length);
      if (c.send(frame)) sent += frame.length;
    }
    const code = await Promise.race([c.closed.then((x) => x.code), sleep(2000).then(() => "open")]);
    tally(closes, code);
    if (code === CloseCode.LogFull && logFullAfter === undefined) {
      logFullAfter = sent;
      atCap = await settledRss(r.pid, 3000);
    }
  }
  const peakRss = peak.stop();
  await sleep(500);
  const disk = dirUsage(r.dataDir).bytes;
  const settled = await settledRss(r.pid, 4000);
  const live = liveBuffers(memBefore, await r.memory());
  last?.leave();
  const afterLeave = await settledRss(r.pid, 4000);
  const growth = settled - before;
  const diskLimit = cap * 1.05 + MiB;
  return {
    figure:
      `RSS +${mb(growth)} settled${live} (${Number.isNaN(atCap) ? "" : `+${mb(atCap - before)} at the cap, before the reconnect and its ${mib(cap)} Sync; `}peak +${mb(peakRss - before)}), ` +
      `+${mb(afterLeave - before)} after it left; disk ${mib(disk)} (log cap ${mib(cap)}); ` +
      `${logFullAfter === undefined ? `no LogFull after ${mib(sent)} sent` : `LogFull after ${mib(logFullAfter)} sent, ${refusedAgain ? "refused again on reconnect" : "NOT refused on reconnect"}`}` +
      ` (closes ${fmtTally(closes)})`,
    ok: growth < 100 * MB && disk <= diskLimit && logFullAfter !== undefined && refusedAgain,
  };
}

// ============================================================================ attack 5: slot squatting

/** The same document app in two code versions (different class source), saving with persistSession. */
function squatDoc(client, version) {
  let cls;
  if (version === 1) {
    cls = class SquatDoc extends client.Model {
      static persistDelay = 0;
      init(_options, persisted) {
        this.text = persisted?.text ?? "";
        this.subscribe("doc", "set", this.set);
      }
      set(text) {
        this.text = text;
        this.persistSession(() => ({ text: this.text }));
      }
    };
  } else {
    cls = class SquatDoc extends client.Model {
      static persistDelay = 0;
      init(_options, persisted) {
        this.restored = persisted ?? null;
        this.text = persisted?.text ?? "(nothing restored)";
        this.generation = 2;
      }
    };
  }
  cls.register("Probe.SquatDoc");
  return cls;
}

/** Joins a session of its own and uploads junk to every slot in `slots` (PersistChunk, else PersistUpload). */
async function squatSlots(url, slots, persistentId) {
  const id = newIdentity({ persistentId });
  const slotToken = new Uint8Array(randomBytes(32));
  const outcomes = {};
  let chunks = true;
  let c;
  for (const slot of slots) {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!c?.open) c = await rawJoin(url, id);
      const data = new Uint8Array(randomBytes(64));
      const common = { slot, token: slotToken, seq: c.sync.seq + 1, hash: new Uint8Array(randomBytes(32)), size: 20 };
      c.send(
        chunks
          ? encodeClientMessage({ type: MessageType.PersistChunk, ...common, total: data.length, offset: 0, data })
          : encodeClientMessage({ type: MessageType.PersistUpload, ...common, blob: data }),
      );
      try {
        const ack = await c.next(MessageType.PersistAck, 2000);
        tally(outcomes, Object.keys(PersistOutcome).find((k) => PersistOutcome[k] === ack.outcome) ?? ack.outcome);
        break;
      } catch (error) {
        if (!chunks) {
          tally(outcomes, `error ${error.code ?? error.message}`);
          break;
        }
        chunks = false; // an older reflector: no PersistChunk yet
      }
    }
  }
  c?.leave();
  return { outcomes, method: chunks ? "PersistChunk" : "PersistUpload" };
}

async function attack5(scope) {
  const r = await scope.reflector("a5");
  const appId = "probe.squat";
  const name = `notes-${randomId(6)}`;
  const password = "correct horse battery staple";
  const v1 = await loadClient("a5v1");
  const v2 = await loadClient("a5v2");
  const V1 = squatDoc(v1, 1);
  const V2 = squatDoc(v2, 2);
  // Everything the attacker can compute: public ids (H(appId/name), the sessionIds of both code
  // versions) and a few hashes of the appId a slot might be named by.
  const pub = await learnPublicIds([{ client: v1, model: V1 }, { client: v2, model: V2 }], appId, name);
  const slots = [
    ...new Set([
      pub.persistentId,
      b64sha(`${appId}/${name}`),
      ...pub.sessionIds,
      b64sha(appId),
      b64sha(`lockstep/v1/app-salt/${appId}`),
      b64sha(`lockstep/v2/persist/session/${pub.persistentId}`),
    ]),
  ];
  const squat = await squatSlots(r.url, slots, pub.persistentId);
  const text = `saved by v1 ${randomId(6)}`;
  const steps = [];
  let ok = false;
  try {
    const a = await honestJoin(v1, V1, { url: r.url, appId, name, password });
    steps.push("v1 joined");
    a.view.publish("doc", "set", text);
    if (!(await until(() => a.model.text === text, 5000))) throw new Error("v1 never applied its own event");
    await withTimeout(a.flushPersistence(), 8000, "flushPersistence");
    steps.push("saved");
    await withTimeout(a.leave(), 8000, "leave");
    const b = await honestJoin(v2, V2, { url: r.url, appId, name, password });
    steps.push("v2 joined");
    const restored = b.model.restored?.text;
    await withTimeout(b.leave(), 8000, "leave");
    ok = restored === text;
    steps.push(ok ? "v2 got the saved data in init" : `v2 init got ${JSON.stringify(restored ?? null)}`);
  } catch (error) {
    steps.push(`FAILED: ${error.message}`);
  }
  return {
    figure: `squatted ${slots.length} public slots via ${squat.method} (${fmtTally(squat.outcomes)}); honest: ${steps.join(" → ")}`,
    ok,
  };
}

// ============================================================================ attack 6: session squatting

async function attack6(scope) {
  const r = await scope.reflector("a6");
  const client = await loadClient("a6");
  const Counter = counterModel(client, "Probe.SquatCounter");
  const appId = "probe.session-squat";
  const name = `room-${randomId(6)}`;
  const password = "the honest password";
  const pub = await learnPublicIds([{ client, model: Counter }], appId, name);
  // The attacker creates the session the honest app would have had without keyed ids, with its own verifier.
  let squat;
  try {
    const c = await rawJoin(r.url, newIdentity({ sessionId: pub.sessionIds[0], persistentId: pub.persistentId }));
    scope.defer(() => c.terminate());
    c.send(encodeSend(randomBytes(100))); // and litters it
    squat = "attacker created the public sessionId with its own verifier";
  } catch (error) {
    squat = `attacker's Join of the public sessionId ${error.message}`;
  }
  const steps = [];
  let ok = false;
  try {
    const a = await honestJoin(client, Counter, { url: r.url, appId, name, password });
    scope.defer(() => a.leave());
    const b = await honestJoin(client, Counter, { url: r.url, appId, name, password });
    scope.defer(() => b.leave());
    steps.push("2/2 joined");
    const hashes = hashesWhen([a, b], (s) => s.model.marks >= 1);
    a.view.publish("probe", "inc");
    a.view.publish("probe", "mark");
    const [ha, hb] = await hashes;
    const counts = [a.model.count, b.model.count];
    steps.push(`event counted ${counts.join("/")}`, ha === hb ? "states equal" : "states DIFFER");
    ok = counts.every((n) => n === 1) && ha === hb;
  } catch (error) {
    steps.push(`FAILED: ${error.message}`);
  }
  return { figure: `${squat}; honest: ${steps.join(", ")}`, ok };
}

// ============================================================================ attack 7: sockets that never join

async function attack7(scope) {
  const attempts = 3000;
  const r = await scope.reflector("a7");
  const opened = [];
  const refused = {};
  let lastOpenedAt = 0;
  const t0 = now();
  for (let i = 0; i < attempts; i += 100) {
    await Promise.all(
      range(Math.min(100, attempts - i)).map(async () => {
        try {
          const c = new RawClient(await openWs(r.url));
          c.closedAt = undefined;
          c.closed.then(() => (c.closedAt = now()));
          opened.push(c);
          lastOpenedAt = now();
        } catch (error) {
          tally(refused, error instanceof Refused ? error.code : (error.code ?? error.message));
        }
      }),
    );
  }
  scope.defer(() => opened.forEach((c) => c.terminate()));
  const openMs = now() - t0;
  const window = CAPS.joinTimeoutMs + 1000;
  await until(() => opened.every((c) => !c.open), Math.max(0, lastOpenedAt + window - now()), 50);
  const stillOpen = opened.filter((c) => c.open).length;
  const lastClosedAt = Math.max(...opened.map((c) => c.closedAt ?? Infinity));
  const codes = {};
  for (const c of opened) if (c.closeCode !== undefined) tally(codes, c.closeCode);
  const lastClose = opened.length === 0 ? "none opened" : Number.isFinite(lastClosedAt) ? `last closed ${secs(lastClosedAt - lastOpenedAt)} after the last opened` : "not all closed";
  return {
    figure:
      `${attempts} attempts in ${secs(openMs)}: ${opened.length} opened, refused ${fmtTally(refused)}; ` +
      `closes ${fmtTally(codes)}, ${lastClose}; ${stillOpen} still open ${secs(window)} after the last opened`,
    ok: stillOpen === 0,
  };
}

// ============================================================================ attack 8: session creation flood

async function attack8(scope) {
  const seconds = QUICK ? 5 : 10;
  const r = await scope.reflector("a8");
  const end = now() + seconds * 1000;
  let created = 0;
  let createdBeforeRefusal;
  const refusals = {};
  const worker = async () => {
    while (now() < end) {
      try {
        const c = await rawJoin(r.url, newIdentity(), { timeoutMs: 5000 });
        created++;
        c.leave();
      } catch (error) {
        createdBeforeRefusal ??= created;
        tally(refusals, error.code ?? error.message);
      }
    }
  };
  await Promise.all(range(4).map(worker));
  await sleep(500);
  const stored = sessionDirs(r.dataDir).length;
  const usage = dirUsage(r.dataDir);
  // A token bucket of newSessionsPerAddressPerMinute, refilled at that rate per minute.
  const allowed = CAPS.newSessionsPerAddressPerMinute * (1 + seconds / 60) + 2;
  return {
    figure:
      `${created} sessions created in ${seconds} s (${createdBeforeRefusal ?? created} before the first refusal), ` +
      `refusals ${fmtTally(refusals)}; ${stored} stored, per session ${(usage.bytes / Math.max(1, stored) / 1024).toFixed(1)} KiB ` +
      `(${(usage.allocated / Math.max(1, stored) / 1024).toFixed(1)} KiB in disk blocks)`,
    ok: created <= allowed && (refusals[CloseCode.RateLimited] ?? 0) > 0,
  };
}

// ============================================================================ attack 9: replayed ciphertext

async function attack9(scope) {
  const r = await scope.reflector("a9");
  const client = await loadClient("a9");
  const Counter = counterModel(client, "Probe.ReplayCounter");
  const base = { url: r.url, appId: "probe.replay", name: `replay-${randomId(6)}`, password: "insiders know it" };
  let armed = false;
  let replays = 0;
  // The insider is an admitted member whose socket sends one Send frame 1 + 3 times.
  const insiderSocket = (url) => {
    const ws = new WebSocket(url, { maxPayload: 1024 * MiB });
    const send = ws.send.bind(ws);
    ws.send = (data, ...rest) => {
      send(data, ...rest);
      if (armed && data[1] === MessageType.Send) {
        armed = false;
        for (let i = 0; i < 3; i++, replays++) send(data);
      }
    };
    return ws;
  };
  const a = await honestJoin(client, Counter, base);
  scope.defer(() => a.leave());
  const b = await honestJoin(client, Counter, base);
  scope.defer(() => b.leave());
  const insider = await honestJoin(client, Counter, { ...base, socket: insiderSocket });
  scope.defer(() => insider.leave());
  const replicas = [a, b, insider];
  armed = true;
  insider.view.publish("probe", "inc");
  await until(() => replicas.every((s) => s.model.count >= 1), 5000);
  await sleep(300); // the replays are right behind
  const hashes = hashesWhen(replicas, (s) => s.model.marks >= 1);
  a.view.publish("probe", "mark");
  const [ha, ...rest] = await hashes;
  const counts = replicas.map((s) => s.model.count);
  const equal = rest.every((h) => h === ha);
  return {
    figure: `1 publish + ${replays} replays counted ${counts.join("/")} (honest, honest, insider); state hashes ${equal ? "equal" : "DIFFER"}`,
    ok: replays === 3 && counts.every((n) => n === 1) && equal,
  };
}

// ============================================================================ attack 10: damaged storage

async function attack10(scope) {
  const dataDir = freshDir("a10-data");
  const idle = { sessionIdleMs: 200 }; // sessions leave memory soon after their last member, so joins read storage
  const r1 = await scope.reflector("a10-first", idle, { dataDir });
  const sends = 8;
  const truncated = newIdentity();
  const garbled = newIdentity();
  for (const id of [truncated, garbled]) {
    const c = await rawJoin(r1.url, id);
    // One Send at a time, each relayed (so stored) before the next: one log segment per entry.
    for (let i = 0; i < sends; i++) {
      c.send(encodeSend(randomBytes(200)));
      await c.next(MessageType.Relay);
    }
  }
  await r1.stop(); // members get ServerShutdown; no view-exits are stamped
  const lastSegment = (id) => {
    const dir = join(sessionDir(dataDir, id.sessionId), "log");
    const files = readdirSync(dir).filter((f) => f.endsWith("@")).sort();
    return join(dir, files.at(-1));
  };
  const t = lastSegment(truncated);
  truncateSync(t, Math.floor(statSync(t).size / 2));
  const g = lastSegment(garbled);
  writeFileSync(g, randomBytes(statSync(g).size));
  const r2 = await scope.reflector("a10-second", idle, { dataDir });
  const recovered = async (id) => {
    try {
      const c = await rawJoin(r2.url, id);
      c.leave();
      return c.sync.seq;
    } catch (error) {
      return `refused ${error.code}`;
    }
  };
  const good = sends; // ViewJoin (seq 1) + sends; the last segment held the last Send
  const rTrunc = await recovered(truncated);
  const rGarbled = await recovered(garbled);

  // Garbage in a session's meta: a raw Join must be refused with SessionDamaged.
  const damaged = newIdentity();
  (await rawJoin(r2.url, damaged)).leave();
  await sleep(600); // dropped from memory
  writeFileSync(join(sessionDir(dataDir, damaged.sessionId), "meta@"), randomBytes(80));
  let rawCode;
  try {
    (await rawJoin(r2.url, damaged)).leave();
    rawCode = "admitted";
  } catch (error) {
    rawCode = error.code;
  }

  // The same under a real library client that is in the session when its connection drops: it
  // must not keep retrying a permanently damaged session.
  const client = await loadClient("a10");
  const Counter = counterModel(client, "Probe.DamagedCounter");
  let attempts = 0;
  const rejoinCloses = [];
  let counting = false;
  let stopped = false;
  let current;
  const socket = async (url) => {
    if (stopped) return new Promise(() => {}); // after the window: hang, never retry again
    if (counting) {
      attempts++;
      await sleep(1000); // let the reflector drop the emptied session, so the rejoin reads the damaged meta
    }
    current = new WebSocket(url, { maxPayload: 1024 * MiB });
    if (counting) current.once("close", (code) => rejoinCloses.push(code));
    return current;
  };
  const dirsBefore = new Set(sessionDirs(dataDir));
  const honest = await honestJoin(client, Counter, { url: r2.url, appId: "probe.damaged", name: `damaged-${randomId(6)}`, password: "pw", socket });
  honest.view.publish("probe", "inc");
  await until(() => honest.model.count === 1, 5000);
  const dir = sessionDirs(dataDir).find((d) => !dirsBefore.has(d));
  writeFileSync(join(dataDir, "sessions", dir, "meta@"), randomBytes(80));
  counting = true;
  current.terminate(); // a network drop
  await sleep(5000);
  stopped = true;
  honest.leave().catch(() => undefined);

  const seqOk = (x) => (x === good ? `${x}/${good + 1}` : `${x} (want ${good}/${good + 1})`);
  return {
    figure:
      `last segment truncated → Sync up to seq ${seqOk(rTrunc)}, garbage → ${seqOk(rGarbled)}; ` +
      `meta garbage → raw Join ${rawCode === CloseCode.SessionDamaged ? "4012" : `got ${rawCode}`}, library client made ${attempts} attempts in 5 s (closed ${rejoinCloses.join(", ") || "-"})`,
    ok: rTrunc === good && rGarbled === good && rawCode === CloseCode.SessionDamaged && attempts <= 2,
  };
}

// ============================================================================ attack 11: read-only data directory

async function attack11() {
  const dataDir = join(freshDir("a11"), "data");
  mkdirSync(dataDir);
  chmodSync(dataDir, 0o555);
  // root writes through 0555; an unprivileged user does not.
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const child = track(
    spawn(process.execPath, [CLI, "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], ...asNobody }),
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  // A reflector that does not check its directory listens instead: no need to wait the full 8 s then.
  const listened = until(() => /listening on/.test(out), 8000).then(() => sleep(1000));
  const code = await Promise.race([exited, listened.then(() => "running")]);
  if (code === "running") {
    child.kill("SIGKILL");
    await exited;
  }
  const listening = /listening on/.test(out);
  const message = err.trim().split("\n")[0].slice(0, 400);
  return {
    figure:
      code === "running"
        ? `still running on a read-only directory${listening ? " (it listened)" : " after 8 s"}`
        : `exit ${code}${listening ? " after it listened" : ""}: ${JSON.stringify(message)}`,
    ok: code === 1 && !listening && message.includes(dataDir),
  };
}

// ============================================================================ the list and the run

const ATTACKS = [
  { n: 1, name: "50 sockets × 40 MiB unfinished message before Join", target: "RSS +<50 MB; 50/50 closed ≤ 5 s", run: attack1 },
  { n: 2, name: `stalled reader while peers send ${QUICK ? 128 : 250} MiB`, target: "RSS +<100 MB; stalled closed (4011/terminated); others get all", run: attack2 },
  { n: 3, name: "ping / any-frame flood vs another session's latency", target: "flooder closed (4005); p99 ≤ 2× unloaded", run: attack3 },
  { n: 4, name: "never votes, max-rate 250 KiB sends", target: "RSS +<100 MB; disk ≤ log cap; 4015 at the cap, again on retry", run: attack4 },
  { n: 5, name: "slot squatting before any honest client", target: "honest join/save/load across versions succeeds", run: attack5 },
  { n: 6, name: "session squatting on the public sessionId", target: "honest clients join and sync", run: attack6 },
  { n: 7, name: "3,000 WebSockets that never Join", target: `0 open ${secs(CAPS.joinTimeoutMs + 1000)} after the last opened`, run: attack7 },
  { n: 8, name: "session creation flood", target: `≤ ${CAPS.newSessionsPerAddressPerMinute} + refill created; refused 4005`, run: attack8 },
  { n: 9, name: "insider replays a captured ciphertext ×3", target: "counted once everywhere; hashes equal", run: attack9 },
  { n: 10, name: "damaged log segment / meta on disk", target: "Sync to last good entry; meta → 4012, ≤ 2 attempts in 5 s", run: attack10 },
  { n: 11, name: "read-only data directory", target: "exit 1 with a message naming the directory", run: attack11 },
];

/** Longest an attack may take before it counts as missed (the probe must stop by itself). */
const BUDGET_MS = QUICK ? 40_000 : 300_000;

async function main() {
  const only = args.only ? new Set(args.only.split(",").map((s) => Number(s.trim()))) : undefined;
  const selected = ATTACKS.filter((a) => only === undefined || only.has(a.n));
  print(`attack probe: ${QUICK ? "quick" : "full"} mode, ${selected.length} attacks, Node ${process.version}, reflector from reflector/dist`);
  const rows = [];
  const t0 = now();
  for (const attack of selected) {
    const scope = new Scope();
    const started = now();
    let result;
    try {
      result = await withTimeout(attack.run(scope), BUDGET_MS, `attack ${attack.n}`);
    } catch (error) {
      result = { figure: `probe error: ${error instanceof Error ? error.message : String(error)}`, ok: false };
    } finally {
      await scope.close();
    }
    const took = secs(now() - started);
    rows.push({ ...attack, ...result, took });
    print(`[${attack.n}] ${attack.name}: ${result.figure} — target: ${attack.target} — ${result.ok ? "ok" : "MISSED"} (${took})`);
  }
  print("");
  print("| attack | figure | target | ok |");
  print("|---|---|---|---|");
  for (const row of rows) print(`| ${row.n}. ${row.name} | ${row.figure.replaceAll("|", "/")} | ${row.target} | ${row.ok ? "ok" : "MISSED"} |`);
  const missed = rows.filter((r) => !r.ok).map((r) => r.n);
  print("");
  print(`${rows.length - missed.length}/${rows.length} targets met in ${secs(now() - t0)}${missed.length ? `; missed: ${missed.join(", ")}` : ""}`);
  process.exit(missed.length ? 1 : 0);
}

if (args["flood-child"]) {
  await floodChild(JSON.parse(args["flood-child"]));
  process.exit(0);
} else {
  await main();
}
