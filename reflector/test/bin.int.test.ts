import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { readyUrl } from "./cli-process";

const bin = join(__dirname, "..", "bin", "lockstep-reflector.js");
const built = join(__dirname, "..", "dist", "cli.js");

/** The installed command as a user runs it: the bin over the esbuild output (npm test builds first). */
test("lockstep-reflector prints its URL, serves /health and exits 0 on SIGTERM", async () => {
  if (!existsSync(built)) throw new Error(`${built} is missing: run \`node scripts/build.mjs\` (npm test does) before this test`);
  const dataDir = mkdtempSync(join(tmpdir(), "lockstep-bin-"));
  const child = spawn(process.execPath, [bin, "--port", "0", "--host", "127.0.0.1", "--log-level", "warn", "--data-dir", dataDir], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on("line", (line) => {
      const m = readyUrl(line);
      if (m) resolve(m);
    });
    child.once("exit", (code) => reject(new Error(`reflector exited early with ${code}`)));
  });
  const health = await fetch(url.replace("ws://", "http://") + "health");
  expect(health.status).toBe(200);
  expect(await health.json()).toMatchObject({ status: "ok" });
  child.kill("SIGTERM");
  expect(await exited).toBe(0);
  // The log directory stays (segments, no lock once stopped); no session was created.
  expect(existsSync(dataDir) && readdirSync(dataDir)).toEqual(["@log"]);
  rmSync(dataDir, { recursive: true, force: true });
});
