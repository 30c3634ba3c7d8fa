#!/usr/bin/env node
// A server under test in a process of its own (started by servers.mjs): "broadcast" (the raw ws
// baseline) or "reflector" (startReflector with ReflectorOptions given as one JSON argument, plus
// "logLevel"; no dataDir means the memory store). Prints `bench-server listening <url>` once
// listening. SIGTERM, SIGINT or the end of stdin (the bench that started it is gone) closes it
// cleanly, so a `--cpu-prof` profile gets written. SIGUSR2 prints
// `bench-memory {process.memoryUsage() after a full GC}` (run with --expose-gc).
//
//   node scripts/bench/servers/child.mjs reflector '{"port":0,"dataDir":"/tmp/x"}'
import { createConsoleLogger, startReflector } from "@lockstep/reflector";
import { startBroadcastServer } from "./broadcast.mjs";

const [kind, json = "{}"] = process.argv.slice(2);
const { logLevel = "warn", ...options } = JSON.parse(json);
let server;
try {
  if (kind === "broadcast") server = await startBroadcastServer(options);
  else if (kind === "reflector") server = await startReflector({ ...options, logger: createConsoleLogger(logLevel) });
  else throw new Error(`unknown server kind ${JSON.stringify(kind)} (broadcast or reflector)`);
} catch (error) {
  process.stderr.write(`bench server: could not start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
process.stdout.write(`bench-server listening ${server.url}\n`);

process.on("SIGUSR2", () => {
  globalThis.gc?.();
  process.stdout.write(`bench-memory ${JSON.stringify(process.memoryUsage())}\n`);
});
let stopping = false;
function stop() {
  if (stopping) process.exit(1);
  stopping = true;
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
