import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { readyUrl } from "./cli-process";

const bin = join(__dirname, "..", "bin", "lockstep-reflector.js");
const built = join(__dirname, "..", "dist", "cli.js");

/** The installed command with `--postgres`, against the server `npm test` starts (scripts/postgres.sh). */
test("lockstep-reflector --postgres creates its table, serves /health and exits 0 on SIGTERM", async () => {
  const url = process.env["LOCKSTEP_PG_URL"];
  if (url === undefined || url === "") {
    throw new Error("LOCKSTEP_PG_URL is not set: run `npm test`, which starts PostgreSQL via scripts/postgres.sh, or point it at a server");
  }
  if (!existsSync(built)) throw new Error(`${built} is missing: run \`node scripts/build.mjs\` (npm test does) before this test`);
  const child = spawn(process.execPath, [bin, "--port", "0", "--host", "127.0.0.1", "--log-level", "warn", "--postgres", url], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout! });
  const reflectorUrl = await new Promise<string>((resolve, reject) => {
    lines.on("line", (line) => {
      const m = readyUrl(line);
      if (m) resolve(m);
    });
    child.once("exit", (code) => reject(new Error(`reflector exited early with ${code}: ${stderr}`)));
  });
  const health = await fetch(reflectorUrl.replace("ws://", "http://") + "health");
  expect(health.status).toBe(200);
  expect(await health.json()).toMatchObject({ status: "ok" });
  // The store opened on startup, so its table exists.
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ name: string | null }>("SELECT to_regclass('lockstep_blobs')::text AS name");
    expect(result.rows[0]?.name).toBe("lockstep_blobs");
  } finally {
    await client.end();
  }
  child.kill("SIGTERM");
  expect(await exited).toBe(0);
});

test("lockstep-reflector --postgres with an unreachable server exits 1 with a message", async () => {
  if (!existsSync(built)) throw new Error(`${built} is missing: run \`node scripts/build.mjs\` (npm test does) before this test`);
  const child = spawn(process.execPath, [bin, "--port", "0", "--log-level", "warn", "--postgres", "postgres://me:s3cret@127.0.0.1:1/lockstep"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
  expect(code).toBe(1);
  expect(stderr.trim().split("\n")).toHaveLength(1);
  const { fields } = JSON.parse(stderr) as { fields: { message: string } };
  expect(fields.message).toMatch(/cannot open the PostgreSQL store .*postgres:\/\/me@127\.0\.0\.1:1\/lockstep.*ECONNREFUSED/);
  expect(stderr).not.toContain("s3cret");
});
