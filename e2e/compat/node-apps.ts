// The Node apps of the compatibility suite run as real Node programs: copied into a temp folder
// whose node_modules has `@croquet/croquet` as a link to the client package (the package-level
// alias: Node's own resolution, `import` and `require` export conditions included), started as
// child processes with the replica probe preloaded.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { appsDir } from "./bed";
import type { EntryHashes } from "./replicas";

const clientPackage = join(__dirname, "..", "..", "packages", "client");
const probe = join(__dirname, "probe-node.mjs");

/** Copies the Node app `name` (its `file`) into `dir`, next to a node_modules that maps `@croquet/croquet` to the client. */
export function installNodeApp(dir: string, name: string, file: string): string {
  mkdirSync(join(dir, "node_modules", "@croquet"), { recursive: true });
  symlinkSync(clientPackage, join(dir, "node_modules", "@croquet", "croquet"), "dir");
  copyFileSync(join(appsDir, name, file), join(dir, file));
  return join(dir, file);
}

/** One running Node client. */
export interface NodeClient {
  readonly child: ChildProcess;
  /** Its stdout lines so far. */
  readonly lines: string[];
  /** Its stderr lines that are not replica hashes (warnings, errors). */
  readonly stderr: string[];
  /** What it printed with console.error, and uncaught exceptions. */
  readonly errors: string[];
  /** Whether it is still running. */
  readonly running: boolean;
  /** seq → hash, as the probe reported them. */
  readonly hashes: EntryHashes;
  /** Resolves with the first stdout line matching `pattern`; rejects if the process exits first or after `ms`. */
  waitFor(pattern: RegExp, ms?: number): Promise<string>;
  /** Resolves with `test()` once it is not undefined (checked on every line of output); rejects if the process exits first or after `ms`. */
  waitUntil<T>(what: string, test: () => T | undefined, ms?: number): Promise<T>;
  /** SIGTERM (this process only) and wait for it to exit. */
  stop(): Promise<void>;
}

/** Starts `node --import <probe> <script> ...args` in the script's folder. */
export function startNodeClient(script: string, args: readonly string[]): NodeClient {
  const child = spawn(process.execPath, ["--import", pathToFileURL(probe).href, script, ...args], { cwd: join(script, ".."), stdio: ["pipe", "pipe", "pipe"] });
  const lines: string[] = [];
  const stderr: string[] = [];
  const errors: string[] = [];
  const hashes: EntryHashes = new Map();
  const waiters = new Set<() => void>();
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code) => {
      exited = code;
      for (const w of waiters) w();
      resolve();
    }),
  );
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    for (const w of waiters) w();
  });
  createInterface({ input: child.stderr! }).on("line", (line) => {
    const m = /^compat-hash (\d+) (\w+)$/.exec(line);
    if (m) hashes.set(Number(m[1]), m[2]!);
    else if (line !== "compat-recording") stderr.push(line);
    if (line.startsWith("compat-error ")) errors.push(line.slice("compat-error ".length));
    for (const w of waiters) w();
  });
  const waitUntil = <T>(what: string, test: () => T | undefined, ms = 30_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`${what}: not within ${ms} ms`)), ms);
      const check = (): void => {
        const value = test();
        if (value !== undefined) done(undefined, value);
        else if (exited !== undefined) done(new Error(`${what}: the process exited (${exited}) first`));
      };
      const done = (error?: Error, value?: T): void => {
        clearTimeout(timer);
        waiters.delete(check);
        if (error) reject(new Error(`${error.message}\nstdout:\n${lines.join("\n")}\nstderr:\n${stderr.join("\n")}`));
        else resolve(value as T);
      };
      waiters.add(check);
      check();
    });
  return {
    child,
    lines,
    stderr,
    errors,
    hashes,
    get running() {
      return exited === undefined;
    },
    waitFor: (pattern, ms) => waitUntil(`a line matching ${pattern}`, () => lines.find((l) => pattern.test(l)), ms),
    waitUntil,
    stop: async () => {
      if (exited === undefined) child.kill("SIGTERM");
      await exit;
    },
  };
}
