// The processes and files a probe run owns: its temp directory, every child it started (by PID),
// and the open-files limit that attack 7 needs.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The repository root (children run there, so the workspace packages resolve). */
export const ROOT = join(import.meta.dirname, "..", "..", "..");
/** Open files a spawned reflector may have (attack 7 opens thousands of sockets). */
export const FD_LIMIT = 16384;

/**
 * Attack 7 opens thousands of sockets in this process too: with a low open-files limit, run again
 * under `ulimit -n` raised (as far as the hard limit allows). Does not return if it reran.
 */
export function ensureFdLimit() {
  if (process.env.LOCKSTEP_PROBE_FD_RAISED) return;
  const soft = Number(/Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? Infinity);
  if (soft >= 8192) return;
  const rerun = spawnSync("bash", ["-c", `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n hard; exec "$0" "$@"`, process.execPath, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, LOCKSTEP_PROBE_FD_RAISED: "1" },
  });
  process.exit(rerun.status ?? 1);
}

/**
 * One probe run: a temp directory (reflector logs, data directories) and every process started,
 * by PID, so that `cleanup()` can kill exactly those (by PID) if the probe ends early.
 */
export class ProbeRun {
  #started = new Map();
  #dirCount = 0;

  /** @param {{ keep?: boolean }} options keep: leave the temp directory in place (and say where). */
  constructor({ keep = false } = {}) {
    this.keep = keep;
    /** The temp directory everything of this run lives in. */
    this.dir = mkdtempSync(join(tmpdir(), "lockstep-probe-"));
    // Attack 11 runs a reflector as nobody, which must reach its directory inside this one.
    chmodSync(this.dir, 0o755);
  }

  /** Remembers `child` until it exits; returns it. */
  track(child) {
    this.#started.set(child.pid, child);
    child.once("exit", () => this.#started.delete(child.pid));
    return child;
  }

  /** Whether the process `pid` was started by this run and has not exited yet. */
  running(pid) {
    return this.#started.has(pid);
  }

  /** A fresh directory under the run's temp dir. */
  freshDir(name) {
    const dir = join(this.dir, `${name}-${++this.#dirCount}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Kills what is left (SIGKILL, by PID) and removes the temp dir unless kept. Synchronous: for process "exit". */
  cleanup() {
    for (const pid of this.#started.keys()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    if (this.keep) process.stderr.write(`probe files kept in ${this.dir}\n`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}
