#!/usr/bin/env node
// One reflector for the attack probe (scripts/probe/attacks.mjs), in a process of its own so that
// its RSS can be read from /proc and it can be stopped and restarted on the same data directory.
// Takes its ReflectorOptions as one JSON argument (plus "logLevel"), so caps and limits can be set
// whether or not the CLI has a flag for them yet; prints the CLI's line
// `Lockstep reflector listening on ws://HOST:PORT/` once listening; SIGTERM closes it cleanly;
// SIGUSR2 prints `probe-memory {process.memoryUsage() after a GC}`.
//
//   node scripts/probe/reflector-child.mjs '{"port":0,"dataDir":"/tmp/x","caps":{"maxLogBytes":16777216}}'
import { createConsoleLogger, startReflector } from "@lockstep/reflector";

// "memory": true keeps sessions in memory (no dataDir), for figures that disk latency would blur.
const { logLevel = "warn", memory = false, ...options } = JSON.parse(process.argv[2] ?? "{}");
if (memory) delete options.dataDir;
let reflector;
try {
  reflector = await startReflector({ ...options, logger: createConsoleLogger(logLevel) });
} catch (error) {
  process.stderr.write(`reflector-child: could not start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
process.stdout.write(`Lockstep reflector listening on ${reflector.url}\n`);
// The probe asks for live memory (after a full GC, when started with --expose-gc) to tell memory
// the reflector still holds from memory the allocator merely has not returned to the system.
process.on("SIGUSR2", () => {
  globalThis.gc?.();
  process.stdout.write(`probe-memory ${JSON.stringify(process.memoryUsage())}\n`);
});

let stopping = false;
const stop = () => {
  if (stopping) process.exit(1);
  stopping = true;
  reflector.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
