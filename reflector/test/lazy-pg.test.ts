/**
 * `pg` (the PostgreSQL driver) is loaded only when a PostgreSQL store creates its pool: importing
 * `@lockstep/reflector` and running it on the filesystem or memory store never loads it.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";

const reflectorDir = join(__dirname, "..");

describe("under jest's CommonJS transform", () => {
  /** Every `new Pool(config)` of the fake driver, and how often the driver was loaded. */
  const driver = { loads: 0, pools: [] as unknown[] };

  beforeEach(() => {
    jest.resetModules();
    driver.loads = 0;
    driver.pools = [];
    jest.doMock("pg", () => {
      driver.loads++;
      // Just enough of a pg.Pool for createPostgresStore: a connection that answers every query.
      class Pool {
        constructor(config: unknown) {
          driver.pools.push(config);
        }
        on(): this {
          return this;
        }
        async connect(): Promise<{ query(): Promise<{ rows: [] }>; release(): void; on(): void; off(): void }> {
          return { query: async () => ({ rows: [] }), release: () => undefined, on: () => undefined, off: () => undefined };
        }
        async query(): Promise<{ rows: [] }> {
          return { rows: [] };
        }
        async end(): Promise<void> {}
      }
      return { Pool };
    });
  });

  afterEach(() => {
    jest.dontMock("pg");
  });

  test("importing the reflector and using the memory and filesystem stores does not load pg", async () => {
    const reflector = await import("@lockstep/reflector");
    const memory = reflector.createMemoryStore();
    await memory.put("a/b", new Uint8Array([1]));
    await memory.close();
    const dir = await mkdtemp(join(tmpdir(), "lockstep-lazy-pg-"));
    try {
      const fs = await reflector.createFsStore(dir);
      await fs.put("a/b", new Uint8Array([1]));
      expect(await fs.get("a/b")).toEqual(new Uint8Array([1]));
      await fs.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(driver.loads).toBe(0);
  });

  test("invalid options and an injected pool do not load pg either", async () => {
    const reflector = await import("@lockstep/reflector");
    await expect(reflector.createPostgresStore({ table: "no spaces" })).rejects.toThrow(reflector.StorageError);
    const injected = { on: () => injected, connect: async () => ({ query: async () => ({ rows: [] }), release: () => undefined, on: () => undefined, off: () => undefined }), query: async () => ({ rows: [] }), end: async () => undefined };
    const store = await reflector.createPostgresStore({ pool: injected as never });
    await store.close();
    expect(driver.loads).toBe(0);
  });

  test("creating a PostgreSQL store from a connection string loads pg, once, and makes its pool", async () => {
    const reflector = await import("@lockstep/reflector");
    for (let i = 0; i < 2; i++) {
      const store = await reflector.createPostgresStore({ connectionString: "postgres://lockstep@db.invalid/lockstep" });
      expect(store.location).toBe('PostgreSQL table "lockstep_blobs" at postgres://lockstep@db.invalid/lockstep');
      await store.close();
    }
    expect(driver.loads).toBe(1);
    const config = { connectionString: "postgres://lockstep@db.invalid/lockstep", connectionTimeoutMillis: 10_000 }; // the default timeout
    expect(driver.pools).toEqual([config, config]);
  });
});

// What a user of the published package gets: an esbuild ESM bundle (as scripts/build.mjs makes it,
// pg external) run by Node itself, where a top-level `import pg from "pg"` would load pg eagerly.
test("the ESM bundle loads pg only when createPostgresStore makes a pool", async () => {
  const probe = `
    import { createRequire } from "node:module";
    import * as reflector from "./src/index.ts";
    // pg's ESM entry re-exports its CommonJS build, which lands in the require cache when loaded.
    const cache = createRequire(process.cwd() + "/").cache;
    const loaded = () => Object.keys(cache).some((file) => /[\\\\/]node_modules[\\\\/]pg[\\\\/]/.test(file));
    const memory = reflector.createMemoryStore();
    await memory.put("a/b", new Uint8Array([1]));
    await memory.close();
    const before = loaded();
    // Nothing listens on port 1 of the loopback: the connection is refused at once.
    const error = await reflector.createPostgresStore({ connectionString: "postgres://lockstep@127.0.0.1:1/lockstep", connectionTimeoutMillis: 5000 }).then(() => undefined, (e) => e);
    console.log(JSON.stringify({ before, after: loaded(), error: error?.name }));
  `;
  const bundle = await build({
    stdin: { contents: probe, resolveDir: reflectorDir, loader: "ts", sourcefile: "lazy-pg-probe.ts" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "es2022",
    // The reflector's runtime dependencies stay imports, as in scripts/build.mjs (@lockstep/protocol is
    // bundled from source here, so the test does not depend on a build of it).
    external: ["pg", "jose", "ws"],
    write: false,
    logLevel: "silent",
  });
  // Run from reflector/, so the bundle's bare imports resolve to reflector/node_modules.
  const result = await runNode(bundle.outputFiles[0]!.text, reflectorDir);
  expect(result).toMatchObject({ code: 0, stderr: "" });
  expect(JSON.parse(result.stdout)).toEqual({ before: false, after: true, error: "StorageError" });
  expect(bundle.outputFiles[0]!.text).toContain('import("pg")');
});

function runNode(source: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module"], { cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(source);
  });
}
