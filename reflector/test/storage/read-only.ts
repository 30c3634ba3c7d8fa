import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Read-only storage directories for tests. File modes do not stop root, and CI containers often
 * run tests as root, so whatever must fail to write runs in a child process: as `nobody` when the
 * tests run as root, as the test's own user otherwise (for whom mode 0555 is enough).
 */

/** uid and gid of `nobody` on Debian-like systems. */
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

/** A directory nobody but root can write (mode 0555), inside a temp directory anyone can enter. */
export interface ReadOnlyDir {
  /** The read-only directory. */
  readonly dir: string;
  /** Its parent, writable by the test (and readable by the child): a place for helper files. */
  readonly parent: string;
  /** Removes both. */
  cleanup(): Promise<void>;
}

/** Makes a fresh {@link ReadOnlyDir} under the OS temp directory. */
export async function makeReadOnlyDir(): Promise<ReadOnlyDir> {
  const parent = await mkdtemp(join(tmpdir(), "lockstep-read-only-"));
  // mkdtemp makes 0700 directories; the child (maybe nobody) must be able to enter it.
  await chmod(parent, 0o755);
  const dir = join(parent, "data");
  await mkdir(dir);
  await chmod(dir, 0o555);
  return {
    dir,
    parent,
    cleanup: async () => {
      await chmod(dir, 0o755).catch(() => undefined);
      await rm(parent, { recursive: true, force: true });
    },
  };
}

/** How an unprivileged child ended. */
export interface ChildResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node ...args` as a user for whom a {@link ReadOnlyDir} is read-only; resolves when it exits. */
export function runUnprivileged(args: readonly string[], options: { cwd?: string } = {}): Promise<ChildResult> {
  const child = spawn(process.execPath, args, {
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}
