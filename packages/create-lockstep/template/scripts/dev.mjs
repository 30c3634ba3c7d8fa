#!/usr/bin/env node
// `npm run dev`: the Lockstep reflector (from the installed @lockstep/reflector) and Vite's dev
// server in one command. Ctrl-C (or SIGTERM) stops both; if one of them stops, so does the other.
//
//   npm run dev -- [--port 5173] [--reflector-port 8787] [--host 127.0.0.1] [--data-dir .lockstep-data]
//
// Port 0 means any free port. The page learns the reflector's URL from VITE_LOCKSTEP_REFLECTOR.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "5173" },
    "reflector-port": { type: "string", default: "8787" },
    "data-dir": { type: "string", default: ".lockstep-data" },
  },
});

/** The JavaScript file of an installed package's command, run with this Node (no shell, any OS). */
function binOf(pkgName, command) {
  const manifestPath = createRequire(import.meta.url).resolve(`${pkgName}/package.json`, { paths: [process.cwd()] });
  const { bin } = JSON.parse(readFileSync(manifestPath, "utf8"));
  return join(dirname(manifestPath), typeof bin === "string" ? bin : bin[command]);
}

const ANSI = /\x1b\[[0-9;]*m/g;
const children = new Set();
let stopping = false;

/** Starts a command; its output goes to ours, each line prefixed, and to `onLine`. */
function start(name, file, argv, env, onLine) {
  const child = spawn(process.execPath, [file, ...argv], { env: { ...process.env, ...env }, stdio: ["inherit", "pipe", "pipe"] });
  children.add(child);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      process.stdout.write(`[${name}] ${line}\n`);
      onLine?.(line.replace(ANSI, ""));
    });
  }
  child.once("exit", (code, signal) => {
    children.delete(child);
    if (!stopping) {
      console.error(`${name} stopped (${signal ?? `exit code ${code}`}): stopping the rest`);
      // A clean exit or a signal is someone stopping it (a Ctrl-C reaches it before us): not a failure.
      void stop(code === 0 || signal === "SIGINT" || signal === "SIGTERM" ? 0 : (code ?? 1));
    }
  });
  return child;
}

/** Stops every child (SIGTERM, then SIGKILL after 5 s) and exits. */
async function stop(exitCode) {
  if (stopping) return;
  stopping = true;
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const force = setTimeout(() => child.kill("SIGKILL"), 5000);
          child.once("exit", () => {
            clearTimeout(force);
            resolve();
          });
          child.kill("SIGTERM");
        }),
    ),
  );
  process.exit(exitCode);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
// A terminal's Ctrl-C reaches every process of the group; a SIGTERM to npm alone does not get past
// the shell npm runs us in. Once that parent is gone, stop too rather than leave servers running.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void stop(0);
}, 500).unref();

/** Resolves with the first match of `pattern` in a line of the child's output (or fails when it exits). */
function waitForLine(register, pattern, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} after 60 s`)), 60_000);
    register((line) => {
      const match = pattern.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[0]);
      }
    });
  });
}

/** A port free right now on `host` (Vite reads port 0 as "the default", so it is asked for one). */
function freePort(host) {
  return new Promise((resolve, reject) => {
    const probe = createServer().once("error", reject);
    probe.listen(0, host, () => {
      const { port } = probe.address();
      probe.close(() => resolve(String(port)));
    });
  });
}

try {
  let reflectorLine = () => {};
  const reflectorArgs = ["--host", args.host, "--port", args["reflector-port"], "--data-dir", args["data-dir"]];
  start("reflector", binOf("@lockstep/reflector", "lockstep-reflector"), reflectorArgs, {}, (line) => reflectorLine(line));
  const reflector = await waitForLine((f) => (reflectorLine = f), /\bwss?:\/\/[^\s"',)]+/, "reflector URL");

  let viteLine = () => {};
  const color = process.stdout.isTTY ? { FORCE_COLOR: "1" } : {};
  const port = args.port === "0" ? await freePort(args.host) : args.port;
  start("vite", binOf("vite", "vite"), ["--host", args.host, "--port", port, ...(args.port === "0" ? ["--strictPort"] : [])], { VITE_LOCKSTEP_REFLECTOR: reflector, ...color }, (line) => viteLine(line));
  const page = await waitForLine((f) => (viteLine = f), /\bhttps?:\/\/[^\s"',)]+/, "Vite URL");
  console.log(`\nLockstep app: ${page}  (reflector ${reflector})`);
  console.log("Open it, then open the address it shows (with ?q=…#pw=…) in a second window. Ctrl-C stops both servers.\n");
} catch (error) {
  console.error(`npm run dev: ${error instanceof Error ? error.message : String(error)}`);
  await stop(1);
}
