// The processes of a test cluster on loopback: one PostgreSQL (scripts/postgres.sh, so a restart
// is the same script's `restart`) and reflector nodes, each the CLI in a process of its own with
// `--cluster`. Everything is started and stopped by PID; a node keeps its port across restarts, so
// the URL list the clients were given stays right.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { now, sleep, withTimeout } from "./time.mjs";

/** The repository's root (children run there, so the workspace packages resolve). */
export const ROOT = join(import.meta.dirname, "..", "..", "..");
const CLI = join(ROOT, "reflector", "bin", "lockstep-reflector.js");
const POSTGRES_SH = join(ROOT, "scripts", "postgres.sh");
const HOST = "127.0.0.1";

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Runs scripts/postgres.sh `command` DIR; resolves with its stdout (the URL), rejects with its stderr. */
function postgresSh(command, dir) {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [POSTGRES_SH, command, dir], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (err += c));
    child.once("exit", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`postgres.sh ${command} failed (${code}): ${err.trim().slice(-600)}`))));
  });
}

/**
 * One reflector node: a stable name, port and URL; a new process (and so a new nodeId) at each
 * start. Its JSON log lines go to `<dir>/<name>.log` and are kept parsed in `events` for the run.
 */
export class ClusterNode {
  constructor(cluster, index, port, { standalone = false, logLevel = "info" } = {}) {
    this.cluster = cluster;
    this.index = index;
    this.standalone = standalone;
    this.logLevel = logLevel;
    this.name = standalone ? "single" : `node-${index + 1}`;
    this.port = port;
    this.url = `ws://${HOST}:${port}/`;
    this.child = undefined;
    this.exited = Promise.resolve({ code: 0, signal: null });
    this.events = [];
    this.starts = 0;
    this.stopped = false; // SIGSTOPped right now
  }

  /** Whether the current process is running (stopped counts as running). */
  get running() {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid() {
    return this.child?.pid;
  }

  /** Starts a process on the node's port; resolves once it logged its ready line. */
  async start() {
    if (this.running) throw new Error(`${this.name} is already running`);
    const { postgresUrl, extraArgs, clusterArgs, dir } = this.cluster;
    // A standalone node is the single reflector on the same store (the baseline of the benches).
    const mode = this.standalone ? [] : ["--cluster", "--node-url", this.url, ...clusterArgs];
    const args = [CLI, ...mode, "--postgres", postgresUrl, "--port", String(this.port), "--host", HOST, "--log-level", this.logLevel, "--log-format", "json", ...extraArgs];
    const log = createWriteStream(join(dir, `${this.name}.log`), { flags: "a" });
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    this.cluster.track(child);
    this.child = child;
    this.stopped = false;
    this.starts++;
    const incarnation = this.starts;
    this.expectExit = false;
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal, at: now() })));
    // An exit the harness did not ask for is a crash: kept for the verdict.
    this.exited.then(({ code, signal }) => {
      if (!this.expectExit) this.cluster.crashes.push({ node: this.name, code, signal, stderr: stderr.trim().slice(-1500) });
    });
    let buffered = "";
    let stderr = "";
    let ready;
    const readyLine = new Promise((resolve) => (ready = resolve));
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      log.write(chunk);
      buffered += chunk;
      for (let i = buffered.indexOf("\n"); i >= 0; i = buffered.indexOf("\n")) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        try {
          const { event, fields, level } = JSON.parse(line);
          this.events.push({ at: now(), incarnation, event, level, fields });
          if (event === "ready") ready();
        } catch {
          // not a log line
        }
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log.write(chunk);
      stderr = (stderr + chunk).slice(-3000);
    });
    child.once("exit", () => log.end());
    await withTimeout(
      Promise.race([
        readyLine,
        this.exited.then(({ code, signal }) => {
          throw new Error(`${this.name} exited (${code ?? signal}) before listening: ${stderr.trim().slice(-800)}`);
        }),
      ]),
      20_000,
      `${this.name} start`,
    );
  }

  /** Sends `signal` to the node's process (by PID). */
  signal(signal) {
    if (!this.running) throw new Error(`${this.name} is not running`);
    process.kill(this.child.pid, signal);
    if (signal === "SIGSTOP") this.stopped = true;
    if (signal === "SIGCONT") this.stopped = false;
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill() {
    if (!this.running) return;
    this.expectExit = true;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  /**
   * SIGTERM (the node drains: hands its sessions to live peers), SIGKILL after `boundMs`.
   * Resolves with the exit status and whether it had to be killed.
   */
  async terminate(boundMs = 15_000) {
    if (!this.running) return { code: this.child?.exitCode ?? 0, killed: false, crashed: this.child !== undefined && !this.expectExit };
    this.expectExit = true;
    if (this.stopped) this.signal("SIGCONT");
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), boundMs);
    const status = await this.exited;
    clearTimeout(timer);
    return { ...status, killed: status.signal === "SIGKILL" };
  }

  /** Log events of the current process named `event`. */
  logged(event) {
    return this.events.filter((e) => e.incarnation === this.starts && e.event === event);
  }
}

/**
 * A cluster under test: a temp directory, PostgreSQL in it, `size` nodes on fixed free ports.
 * `cleanup()` (synchronous, for process "exit") kills every process it started, by PID, stops
 * PostgreSQL and removes the directory.
 */
export class TestCluster {
  #children = new Map();

  /** `extraArgs` go to every node, `clusterArgs` (--lease-ms …) only to cluster nodes. */
  constructor({ size = 3, extraArgs = [], clusterArgs = [], keep = false, logLevel = "info" } = {}) {
    this.size = size;
    this.logLevel = logLevel;
    this.extraArgs = extraArgs;
    this.clusterArgs = clusterArgs;
    this.keep = keep;
    this.dir = mkdtempSync(join(tmpdir(), "lockstep-cluster-"));
    // PostgreSQL runs as its own user when we are root: it must reach its directory inside this one.
    chmodSync(this.dir, 0o755);
    this.pgDir = join(this.dir, "pg");
    this.postgresUrl = undefined;
    this.nodes = [];
    /** Nodes that exited without being told to: { node, code, signal, stderr }. */
    this.crashes = [];
  }

  /** Starts again every node that crashed (see `crashes`) and is still down; returns their names. */
  async restartCrashed() {
    const crashed = new Set(this.crashes.map((c) => c.node));
    const down = this.nodes.filter((n) => !n.running && !n.expectExit && crashed.has(n.name));
    await Promise.all(down.map((n) => n.start()));
    return down.map((n) => n.name);
  }

  track(child) {
    this.#children.set(child.pid, child);
    child.once("exit", () => this.#children.delete(child.pid));
    return child;
  }

  /** PostgreSQL, then every node at once; resolves once all listen. */
  async start() {
    this.postgresUrl = await postgresSh("start", this.pgDir);
    const ports = [];
    while (ports.length < this.size) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    this.nodes = ports.map((port, i) => new ClusterNode(this, i, port, { logLevel: this.logLevel }));
    await Promise.all(this.nodes.map((n) => n.start()));
  }

  /** A reflector without --cluster on the same PostgreSQL (not one of `nodes`); started. */
  async startStandalone(logLevel = this.logLevel) {
    const node = new ClusterNode(this, -1, await freePort(), { standalone: true, logLevel });
    await node.start();
    return node;
  }

  /** Every node's URL, in order. */
  get urls() {
    return this.nodes.map((n) => n.url);
  }

  /** The node whose URL (or port) is `url`, or undefined. */
  nodeOf(url) {
    try {
      const port = Number(new URL(url).port);
      return this.nodes.find((n) => n.port === port);
    } catch {
      return undefined;
    }
  }

  /** `scripts/postgres.sh restart`: the same port and data; resolves once it accepts connections again. */
  async restartPostgres() {
    const started = now();
    await postgresSh("restart", this.pgDir);
    return now() - started;
  }

  /** SIGTERM to every node at once (SIGKILL after the bound), then PostgreSQL stays up for the audit. */
  async stopNodes(boundMs = 15_000) {
    return Promise.all(this.nodes.map((n) => n.terminate(boundMs)));
  }

  /** Stops the nodes and PostgreSQL and removes the directory (unless kept). */
  async stop() {
    await this.stopNodes().catch(() => undefined);
    await postgresSh("stop", this.pgDir).catch(() => undefined);
    this.#finish();
  }

  /** Synchronous last resort for process "exit": SIGKILL by PID, PostgreSQL's fast stop, the directory. */
  cleanup() {
    for (const pid of this.#children.keys()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    this.#children.clear();
    spawnSync("bash", [POSTGRES_SH, "stop", this.pgDir], { cwd: ROOT, stdio: "ignore", timeout: 30_000 });
    this.#finish();
  }

  #finished = false;

  #finish() {
    if (this.#finished) return;
    this.#finished = true;
    if (this.keep) process.stderr.write(`cluster files kept in ${this.dir}\n`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Waits until `pred()` holds (checked every `everyMs`), or throws naming `what` after `timeoutMs`. */
export async function waitFor(pred, timeoutMs, what, everyMs = 25) {
  const end = now() + timeoutMs;
  while (!(await pred())) {
    if (now() > end) throw new Error(`${what}: not within ${(timeoutMs / 1000).toFixed(0)} s`);
    await sleep(everyMs);
  }
}
