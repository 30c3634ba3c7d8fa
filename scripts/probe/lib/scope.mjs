// What one attack holds, released however the attack ends.
import { spawnReflector } from "./reflector.mjs";
import { withTimeout } from "./time.mjs";

/** What an attack holds: cleanups run in reverse order when it ends, however it ends. */
export class Scope {
  #cleanups = [];

  /** @param {import("./processes.mjs").ProbeRun} run the probe run (temp dir, started processes) */
  constructor(run) {
    this.run = run;
  }
  /** Runs `fn` when the attack ends (after everything deferred later). */
  defer(fn) {
    this.#cleanups.push(fn);
  }
  /** A reflector of the attack's own (see spawnReflector), stopped when the attack ends. */
  async reflector(name, options, extra) {
    const r = await spawnReflector(this.run, name, options, extra);
    this.defer(() => r.stop());
    return r;
  }
  /** Runs the cleanups, newest first, each bounded in time. */
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
