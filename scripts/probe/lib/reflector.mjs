// A reflector under attack, in a process of its own: spawning it, reading its memory (RSS from
// /proc, live heap after a GC) and asking its /health.
import { spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { join } from "node:path";
import { MB, mb } from "./format.mjs";
import { FD_LIMIT, ROOT } from "./processes.mjs";
import { now, sleep, withTimeout } from "./time.mjs";

const LAUNCHER = join(import.meta.dirname, "..", "reflector-child.mjs");

/**
 * Starts a reflector in its own process (scripts/probe/reflector-child.mjs, raising the open-files
 * limit first) with `options` (ReflectorOptions as JSON) and waits for its "listening" line.
 * Its stdout/stderr go to <run dir>/<name>.log. `cpus` pins it (taskset list, e.g. "0").
 * @param {import("./processes.mjs").ProbeRun} run the probe run that owns the process and its files
 */
export async function spawnReflector(run, name, options = {}, { dataDir = run.freshDir(name), port = 0, cpus } = {}) {
  const logPath = join(run.dir, `${name}.log`);
  const log = createWriteStream(logPath, { flags: "a" });
  const config = JSON.stringify({ host: "127.0.0.1", port, dataDir, logLevel: "warn", ...options });
  const child = run.track(
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
      if (!run.running(pid)) return Promise.resolve(undefined);
      const reply = new Promise((resolve) => memoryWaiters.push(resolve));
      child.kill("SIGUSR2");
      return withTimeout(reply, 5000, "memory report").catch(() => undefined);
    },
    /** SIGTERM, then SIGKILL after 5 s; resolves with the exit status. */
    async stop() {
      if (!run.running(pid)) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      const status = await exited;
      clearTimeout(timer);
      return status;
    },
  };
}

/** The process's resident set size in bytes, from /proc/<pid>/status (VmRSS); NaN if gone. */
export function rss(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Samples RSS every `everyMs` until stop(); stop() returns the peak. */
export function sampleRss(pid, everyMs = 100) {
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
export async function settledRss(pid, maxMs = 5000) {
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
export function liveBuffers(before, after) {
  if (!before || !after) return "";
  const held = after.arrayBuffers + after.heapUsed - (before.arrayBuffers + before.heapUsed);
  return `, of which live heap and buffers +${mb(held)}`;
}

/** GET /health of a reflector: {status, sessions, connections}. */
export async function health(port) {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return res.json();
}
