// Starting the servers under test for the benches, either in a process of their own (child.mjs,
// the default: the bench's clients then do not share the server's CPU time) or in the bench's own
// process (`inprocess`, how the benches ran before issue 15). Children are tracked by PID and
// killed (by PID) however the bench ends.
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { silentLogger, startReflector } from "@lockstep/reflector";
import { startBroadcastServer } from "./broadcast.mjs";

const CHILD = join(import.meta.dirname, "child.mjs");
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux unless configured otherwise). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * The child processes a bench started. `cleanup()` kills those still running (SIGKILL, by PID);
 * it is installed on process "exit" and on SIGINT/SIGTERM/SIGHUP by {@link BenchProcesses.install}.
 */
export class BenchProcesses {
  #children = new Map();

  /** Remembers `child` until it exits; returns it. */
  track(child) {
    this.#children.set(child.pid, child);
    child.once("exit", () => this.#children.delete(child.pid));
    return child;
  }

  running(pid) {
    return this.#children.has(pid);
  }

  cleanup() {
    for (const pid of this.#children.keys()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    this.#children.clear();
  }

  /** Kills the children however this process ends (normal exit, an uncaught error, a signal). */
  static install(extraCleanup = () => undefined) {
    const processes = new BenchProcesses();
    const cleanup = () => {
      processes.cleanup();
      extraCleanup();
    };
    process.on("exit", cleanup);
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => process.exit(130));
    return processes;
  }
}

/** CPU time (user + system) of process `pid` so far, in ms, from /proc; NaN if it is gone. */
export function cpuMsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/**
 * CPU time the kernel spent in interrupts and softirqs so far (all CPUs), in ms, from /proc/stat:
 * mostly loopback TCP packets here, processed inline in send calls or in ksoftirqd and charged to
 * no process (IRQ time accounting). Many small writes (one per frame and member, as the uncorked
 * baseline does) show up here rather than in the server's or the harness's CPU time.
 */
export function kernelNetMs() {
  const fields = procStat();
  return ((fields[5] + fields[6]) * 1000) / CLK_TCK;
}

/** The aggregate CPU line of /proc/stat: user nice system idle iowait irq softirq steal …, in ticks. */
function procStat() {
  try {
    return readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return [NaN, NaN, NaN, NaN, NaN, NaN, NaN, NaN];
  }
}

/** Resident set size of process `pid` in bytes (VmRSS from /proc); NaN if it is gone. */
export function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU time of this (the bench's) process so far, in ms. */
export function ownCpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * Starts a server under test: `kind` "broadcast" or "reflector" (`options`: JSON-able
 * ReflectorOptions, or `{}`; for a reflector without `dataDir` the memory store).
 * `where`: "process" (a child, tracked by `processes`) or "inprocess".
 * `cpuProfDir`: run the child with `--cpu-prof` writing there (process only).
 * `cpus`: pin the child to these CPUs (a taskset list such as "0"; process only).
 * @returns {Promise<{ kind, where, url, pid, cpuMs(): number, rss(): number, memory(): Promise<object|undefined>, stop(): Promise<void> }>}
 */
export async function startServer(kind, options, { where, processes, cpuProfDir, cpus, name = kind, stepMs = 20_000 }) {
  if (where === "inprocess") {
    const server = kind === "broadcast" ? await startBroadcastServer(options) : await startReflector({ ...options, logger: silentLogger });
    return {
      kind,
      where,
      url: server.url,
      pid: process.pid,
      // In process, the server's CPU time cannot be told apart from the clients'.
      cpuMs: () => NaN,
      rss: () => rssOf(process.pid),
      memory: async () => process.memoryUsage(),
      stop: () => server.close(),
    };
  }
  const nodeArgs = ["--expose-gc", ...(cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", cpuProfDir] : []), CHILD, kind, JSON.stringify(options)];
  const [command, args] = cpus ? ["taskset", ["-c", cpus, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  // taskset execs node: the PID is node's.
  const child = processes.track(spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] }));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  let tail = "";
  let listening = () => undefined;
  const memoryWaiters = [];
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} server did not listen within ${stepMs / 1000} s`)), stepMs);
    listening = (u) => {
      clearTimeout(timer);
      resolve(u);
    };
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} server exited (${code ?? signal}) before listening`));
    });
  });
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    tail += chunk;
    let nl;
    while ((nl = tail.indexOf("\n")) >= 0) {
      const line = tail.slice(0, nl);
      tail = tail.slice(nl + 1);
      if (line.startsWith("bench-server listening ")) listening(line.slice(23).trim());
      else if (line.startsWith("bench-memory ")) memoryWaiters.shift()?.(JSON.parse(line.slice(13)));
      else process.stderr.write(`[${name}] ${line}\n`);
    }
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => process.stderr.write(chunk.replace(/^(?=.)/gm, `[${name}] `)));
  child.stdin.on("error", () => undefined);
  const pid = child.pid;
  return {
    kind,
    where,
    url: await url,
    pid,
    cpuMs: () => cpuMsOf(pid),
    rss: () => rssOf(pid),
    /** The child's process.memoryUsage() after a full GC, or undefined. */
    memory() {
      if (!processes.running(pid)) return Promise.resolve(undefined);
      const reply = new Promise((resolve) => memoryWaiters.push(resolve));
      child.kill("SIGUSR2");
      let timer;
      const timeout = new Promise((resolve) => (timer = setTimeout(resolve, 5000)));
      return Promise.race([reply, timeout]).finally(() => clearTimeout(timer));
    },
    /** SIGTERM (the child closes cleanly and writes its profile), SIGKILL after `stepMs`. */
    async stop() {
      if (!processes.running(pid)) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), stepMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * CPU time (ms) of every user process on the machine but `excluded` PIDs (kernel threads left out),
 * by PID: take one before and one after a run and pass both to {@link otherCpuMs}.
 */
export function processTimes(excluded) {
  const times = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || excluded.includes(Number(name))) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // fields[1] is the parent: kthreadd (2) parents every kernel thread.
      if (fields[1] === "2" || name === "2") continue;
      times.set(name, ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK);
    } catch {
      // gone meanwhile
    }
  }
  return times;
}

/**
 * CPU time other processes used between two {@link processTimes} snapshots, in ms: those alive at
 * both (their growth) and those started meanwhile (all of theirs). Processes that ended meanwhile
 * are missed; {@link machineBusyMs} bounds that from below.
 */
export function otherCpuMs(before, after) {
  let ms = 0;
  for (const [pid, t] of after) ms += t - (before.get(pid) ?? 0);
  return ms;
}

/** CPU time the whole machine has used so far (all CPUs: user, system, irq, softirq, steal), in ms, from /proc/stat. */
export function machineBusyMs() {
  const [user, nice, system, , , irq, softirq, steal = 0] = procStat();
  return ((user + nice + system + irq + softirq + steal) * 1000) / CLK_TCK;
}

/**
 * Waits (at most `maxWaitMs`) until the rest of the machine is quiet: less than `threshold` of one
 * CPU busy over a 500 ms window, `ignoreMs()` (CPU time of the bench's own processes so far)
 * excluded. Resolves with whether it got quiet. Other work on a small machine would blur every figure.
 */
export async function waitForQuietMachine({ maxWaitMs = 60_000, threshold = 0.1, ignoreMs = ownCpuMs } = {}) {
  const end = performance.now() + maxWaitMs;
  for (;;) {
    const busy0 = machineBusyMs();
    const own0 = ignoreMs();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 500));
    const share = (machineBusyMs() - busy0 - (ignoreMs() - own0)) / (performance.now() - t0);
    if (!(share >= threshold)) return true;
    if (performance.now() > end) return false;
  }
}

/** Read and write system calls process `pid` made so far (all its threads), from /proc/<pid>/io; NaN if unreadable. */
export function syscallsOf(pid) {
  try {
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    return { reads: Number(/syscr: (\d+)/.exec(io)[1]), writes: Number(/syscw: (\d+)/.exec(io)[1]) };
  } catch {
    return { reads: NaN, writes: NaN };
  }
}
