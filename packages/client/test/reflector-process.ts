import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";

const root = join(__dirname, "..", "..", "..");
const bin = join(root, "reflector", "bin", "lockstep-reflector.js");

/** Attempts to start on a fixed port that is still busy (a killed reflector's port is freed by the kernel, not always at once). */
const BUSY_PORT_ATTEMPTS = 5;
/** Wait before the next attempt on a busy port, times the attempt number, in ms. */
const BUSY_PORT_BACKOFF_MS = 100;

/** A reflector running as its own process (the installed CLI), so tests can kill -9 it. */
export interface ReflectorProcess {
  readonly url: string;
  /** The TCP port it listens on (pass it to {@link startReflectorProcess} again to come back on the same URL). */
  readonly port: number;
  readonly child: ChildProcess;
  /** Whether the process has not exited yet. */
  readonly running: boolean;
  /** Resolves with the exit code once the process is gone (null after a signal). */
  readonly exited: Promise<number | null>;
  /** SIGKILL: no shutdown code runs. */
  kill9(): Promise<void>;
  /** SIGTERM and wait for a clean exit. */
  stop(): Promise<number | null>;
  /**
   * Starts a new process with the same arguments on the same port, so clients reconnect to the
   * same URL (this one must have exited: call {@link kill9} or {@link stop} first).
   */
  restart(): Promise<ReflectorProcess>;
}

/** Options of {@link startReflectorProcess}. */
export interface ReflectorProcessOptions {
  /** A fixed port (e.g. from {@link freePort}); default 0, a free one the reflector picks. */
  port?: number;
}

/** A TCP port free on 127.0.0.1 right now: listen on 0, read the port, close. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("could not read the port of a listening socket");
  return address.port;
}

type Started = { kind: "listening"; process: ReflectorProcess } | { kind: "busy"; stderr: string };

function spawnOnce(args: readonly string[], port: number): Promise<Started> {
  const child = spawn(process.execPath, [bin, "--port", String(port), "--log-level", "warn", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let running = true;
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      running = false;
      resolve(code);
    });
  });
  // Forwarded as it comes (what the reflector says is the test's log), and kept to tell a busy port from other failures.
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
    process.stderr.write(chunk);
  });
  return new Promise<Started>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      // The CLI logs JSON lines: the "ready" event carries the URL in its message (also matches a plain line).
      const m = /Lockstep reflector listening on (wss?:\/\/[^"\s]+)/.exec(line);
      if (!m) return;
      const url = m[1]!;
      const listening = Number(new URL(url).port);
      const self: ReflectorProcess = {
        url,
        port: listening,
        child,
        get running() {
          return running;
        },
        exited,
        kill9: async () => {
          if (running) child.kill("SIGKILL");
          await exited;
        },
        stop: async () => {
          if (running) child.kill("SIGTERM");
          return exited;
        },
        restart: async () => {
          if (running) throw new Error("restart(): the reflector is still running; kill9() or stop() it first");
          return startReflectorProcess([...args], { port: listening });
        },
      };
      resolve({ kind: "listening", process: self });
    });
    void exited.then(async (code) => {
      // The stderr pipe may still hold the last words; they end with the stream.
      if (!child.stderr!.readableEnded) await new Promise<void>((done) => child.stderr!.once("end", () => done()));
      if (port !== 0 && /EADDRINUSE/.test(stderr)) resolve({ kind: "busy", stderr });
      else reject(new Error(`reflector exited early (${code})${stderr ? `: ${stderr.trim()}` : ""}`));
    });
  });
}

/**
 * Starts the reflector CLI as a child process (`--log-level warn` before `args`). With a fixed
 * `port`, a port still busy (a killed reflector's, a moment after) is retried a few times.
 */
export async function startReflectorProcess(args: string[], options: ReflectorProcessOptions = {}): Promise<ReflectorProcess> {
  if (!existsSync(join(root, "reflector", "dist", "cli.js"))) {
    throw new Error("reflector/dist/cli.js is missing: run `node scripts/build.mjs` (npm test does) before this test");
  }
  const port = options.port ?? 0;
  let last = "";
  for (let attempt = 1; attempt <= BUSY_PORT_ATTEMPTS; attempt++) {
    const started = await spawnOnce(args, port);
    if (started.kind === "listening") return started.process;
    last = started.stderr.trim();
    // A retry, not a wait for an event: nothing tells us when the kernel lets go of the port.
    await new Promise((resolve) => setTimeout(resolve, BUSY_PORT_BACKOFF_MS * attempt));
  }
  throw new Error(`port ${port} stayed busy after ${BUSY_PORT_ATTEMPTS} attempts to start the reflector: ${last}`);
}
