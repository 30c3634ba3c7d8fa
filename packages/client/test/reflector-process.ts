import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const root = join(__dirname, "..", "..", "..");
const bin = join(root, "reflector", "bin", "lockstep-reflector.js");

/** A reflector running as its own process (the installed CLI), so tests can kill -9 it. */
export interface ReflectorProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** SIGKILL: no shutdown code runs. */
  kill9(): Promise<void>;
  /** SIGTERM and wait for a clean exit. */
  stop(): Promise<number | null>;
}

export async function startReflectorProcess(args: string[]): Promise<ReflectorProcess> {
  if (!existsSync(join(root, "reflector", "dist", "cli.js"))) {
    throw new Error("reflector/dist/cli.js is missing: run `node scripts/build.mjs` (npm test does) before this test");
  }
  const child = spawn(process.execPath, [bin, "--port", "0", "--log-level", "warn", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = /^Lockstep reflector listening on (ws:\S+)$/.exec(line);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`reflector exited early (${code})`)));
  });
  return {
    url,
    child,
    kill9: async () => {
      child.kill("SIGKILL");
      await exited;
    },
    stop: async () => {
      child.kill("SIGTERM");
      return exited;
    },
  };
}
