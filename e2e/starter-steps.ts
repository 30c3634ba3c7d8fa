import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";

/**
 * The environment of a command run the way a user runs it from a shell: without the `npm_…`
 * variables npm sets for the test runner (`npx jest`), which would point npm's config at this
 * repository.
 */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key) && key !== "INIT_CWD") env[key] = value;
  return { ...env, ...extra };
}

/** What a finished command printed. */
export interface StepOutput {
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * Runs a command in its own process group and resolves when it exits 0; rejects with its output
 * otherwise. After `timeoutMs` the whole group (npm and whatever it started) is killed.
 */
export function step(command: string, args: readonly string[], options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<StepOutput> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? userEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, "SIGKILL");
    }, options.timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      const what = `${command} ${args.join(" ")} (in ${options.cwd})`;
      if (code === 0) resolve({ stdout, stderr, ms: Date.now() - started });
      else reject(new Error(`${what} ${timedOut ? `timed out after ${options.timeoutMs} ms` : `failed (${signal ?? code})`}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    });
  });
}

/** Signals the process group of a child started with `detached: true` (the child's PID is its id). */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Resolves once no process of the child's group is left (npm may exit before what it started),
 * or rejects after `timeoutMs`.
 */
export async function groupGone(child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(-child.pid!, 0);
    } catch {
      return; // ESRCH: the group is empty
    }
    if (Date.now() > deadline) throw new Error(`processes of group ${child.pid} still run after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A long-running command (a dev server) in its own process group. */
export interface Server {
  readonly child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  /** Resolves with the first match of `pattern` in a line of its output. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** Resolves with its exit code (or signal). */
  readonly exited: Promise<number | string>;
}

export function startServer(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Server {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? userEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  const watchers: Array<(line: string) => void> = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on("line", (coloured) => {
      // Vite and npm colour their output when CI is set (picocolors): match the text only.
      const line = coloured.replace(/\x1b\[[0-9;]*m/g, "");
      output += line + "\n";
      for (const watch of [...watchers]) watch(line);
    });
  }
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "?")));
  return {
    child,
    output: () => output,
    exited,
    waitFor: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const found = pattern.exec(output);
        if (found) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} after ${timeoutMs} ms:\n${output}`)), timeoutMs);
        const watch = (line: string): void => {
          const match = pattern.exec(line);
          if (!match) return;
          clearTimeout(timer);
          watchers.splice(watchers.indexOf(watch), 1);
          resolve(match);
        };
        watchers.push(watch);
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${command} ${args.join(" ")} exited (${code}) before printing ${pattern}:\n${output}`));
        });
      }),
  };
}

/** True when nothing accepts connections at `url` (http or ws) any more. */
export async function refused(url: string): Promise<boolean> {
  try {
    await fetch(url.replace(/^ws/, "http"), { signal: AbortSignal.timeout(5000) });
    return false;
  } catch (error) {
    return (error as { cause?: { code?: string } }).cause?.code === "ECONNREFUSED";
  }
}

/** A loopback port free right now (for servers that read port 0 as "my default"). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
