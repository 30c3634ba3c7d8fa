import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** The installed command: the bin over the esbuild output (npm test builds first). */
export const bin = join(__dirname, "..", "bin", "lockstep-reflector.js");
const built = join(__dirname, "..", "dist", "cli.js");

/** The URL of the CLI's `ready` line (`{"event":"ready","fields":{"url":…}}`), or undefined for any other line. */
export function readyUrl(line: string): string | undefined {
  try {
    const parsed = JSON.parse(line) as { event?: unknown; fields?: { url?: unknown } };
    return parsed.event === "ready" && typeof parsed.fields?.url === "string" ? parsed.fields.url : undefined;
  } catch {
    return undefined;
  }
}

/** One log line of the CLI, parsed. */
export interface LogLine {
  readonly ts: string;
  readonly level: string;
  readonly event: string;
  readonly fields: Record<string, unknown>;
}

/** A `lockstep-reflector` process and every line it wrote so far. */
export interface CliProcess {
  readonly child: ChildProcess;
  /** Every stdout line, as written. */
  readonly stdout: string[];
  /** Every stderr line, as written. */
  readonly stderr: string[];
  /** The exit code (null when killed by a signal), once it exited and its pipes ended. */
  readonly exited: Promise<number | null>;
  /** Resolves with the URL of its ready line; rejects if it exits first. */
  readonly ready: Promise<string>;
  /** Resolves with the first stdout line parsed to an event for which `pred` holds. */
  waitFor(pred: (line: LogLine) => boolean): Promise<LogLine>;
  /** Resolves with the first stdout line (as written) for which `pred` holds. */
  waitForLine(pred: (line: string) => boolean): Promise<string>;
  /** SIGKILL if it still runs (for cleanup). */
  kill(): void;
}

/**
 * Spawns the CLI with `args` and the environment `env` added to this one's (minus any
 * `LOCKSTEP_` option the test did not mean: every variable here is the test's choice).
 */
export function spawnCli(args: readonly string[], env: Record<string, string> = {}, options: { cwd?: string } = {}): CliProcess {
  if (!existsSync(built)) throw new Error(`${built} is missing: run \`node scripts/build.mjs\` (npm test does) before this test`);
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^LOCKSTEP_(?!PG_URL$|TEST_SEED$)/.test(k)));
  const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...base, ...env }, ...options });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: { pred: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  const outEnded = new Promise<void>((resolve) => child.stdout!.once("end", resolve));
  const errEnded = new Promise<void>((resolve) => child.stderr!.once("end", resolve));
  const code = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  const exited = Promise.all([code, outEnded, errEnded]).then(([c]) => c);
  let readyResolve: (url: string) => void = () => {};
  const ready = new Promise<string>((resolve, reject) => {
    readyResolve = resolve;
    void exited.then((c) => reject(new Error(`the reflector exited (${c}) before its ready line: ${stderr.join("\n")}`)));
  });
  ready.catch(() => undefined);
  createInterface({ input: child.stdout! }).on("line", (line) => {
    stdout.push(line);
    const url = readyUrl(line);
    if (url !== undefined) readyResolve(url);
    for (const w of waiters.filter((w) => w.pred(line))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(line);
    }
  });
  const waitForLine = (pred: (line: string) => boolean): Promise<string> => {
    const seen = stdout.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => waiters.push({ pred, resolve }));
  };
  createInterface({ input: child.stderr! }).on("line", (line) => stderr.push(line));
  return {
    child,
    stdout,
    stderr,
    exited,
    ready,
    waitForLine,
    waitFor: async (pred) => JSON.parse(await waitForLine((line) => {
      const parsed = asLogLine(line);
      return parsed !== undefined && pred(parsed);
    })) as LogLine,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

function asLogLine(line: string): LogLine | undefined {
  try {
    return JSON.parse(line) as LogLine;
  } catch {
    // not JSON: the test that cares says so
    return undefined;
  }
}
