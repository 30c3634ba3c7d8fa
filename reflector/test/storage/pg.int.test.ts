import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import pg from "pg";
import { StorageError, createPostgresStore } from "../../src/storage";
import { runBlobStoreConformance } from "@lockstep/test-support";
import { runSessionStateSuite } from "./session-state-suite";

// A real server, never skipped: `npm test` starts one with scripts/postgres.sh.
const url = process.env["LOCKSTEP_PG_URL"];
const MISSING =
  "LOCKSTEP_PG_URL is not set: run `npm test`, which starts PostgreSQL via scripts/postgres.sh, or point it at a server " +
  "(e.g. LOCKSTEP_PG_URL=$(bash scripts/postgres.sh start /tmp/lockstep-pg) npx jest reflector/test/storage)";

function serverUrl(): string {
  if (url === undefined || url === "") throw new Error(MISSING);
  return url;
}

/** A table name no other test (or concurrent run against the same server) uses. */
const freshTable = (): string => `lockstep_test_${randomBytes(6).toString("hex")}`;

// Drops the tables tests create, over its own connections: a store's pool is gone once it is closed.
let admin: pg.Pool | undefined;
function adminPool(): pg.Pool {
  admin ??= new pg.Pool({ connectionString: serverUrl(), max: 2 });
  return admin;
}
const dropTable = async (table: string): Promise<void> => void (await adminPool().query(`DROP TABLE IF EXISTS "${table}"`));

afterAll(async () => {
  await admin?.end();
});

test("LOCKSTEP_PG_URL names the PostgreSQL server to test against", () => {
  expect(() => serverUrl()).not.toThrow();
});

runBlobStoreConformance("postgres", async () => {
  const table = freshTable();
  return { store: await createPostgresStore({ connectionString: serverUrl(), table }), cleanup: () => dropTable(table) };
});

runBlobStoreConformance("postgres (injected pool)", async () => {
  const table = freshTable();
  const pool = new pg.Pool({ connectionString: serverUrl() });
  return {
    store: await createPostgresStore({ pool, table }),
    cleanup: async () => {
      // The store must have left the injected pool open.
      expect(pool.ended).toBe(false);
      await pool.end();
      await dropTable(table);
    },
  };
});

runSessionStateSuite("postgres", async () => {
  const table = freshTable();
  let store = await createPostgresStore({ connectionString: serverUrl(), table });
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await createPostgresStore({ connectionString: serverUrl(), table });
      return store;
    },
    cleanup: () => dropTable(table),
  };
});

describe("postgres store", () => {
  let table: string;

  beforeEach(() => {
    table = freshTable();
  });

  afterEach(async () => {
    await dropTable(table);
  });

  test("values survive closing and reopening a store on the same table", async () => {
    const first = await createPostgresStore({ connectionString: serverUrl(), table });
    await first.put("sessions/S1/meta", new Uint8Array([1, 2]));
    await first.put("sessions/S1/log/0000000000000001", new Uint8Array([3]));
    await first.close();
    const second = await createPostgresStore({ connectionString: serverUrl(), table });
    expect(await second.list("")).toEqual(["sessions/S1/log/0000000000000001", "sessions/S1/meta"]);
    expect(await second.get("sessions/S1/meta")).toEqual(new Uint8Array([1, 2]));
    await second.close();
  });

  test("'_' and '%' are literal in list prefixes, never LIKE wildcards", async () => {
    const store = await createPostgresStore({ connectionString: serverUrl(), table });
    for (const key of ["a_b/1", "aXb/2", "a_c", "a-b", "ab", "a_", "a__", "x_/y"]) await store.put(key, new Uint8Array([1]));
    expect(await store.list("a_")).toEqual(["a_", "a__", "a_b/1", "a_c"]);
    expect(await store.list("a_b")).toEqual(["a_b/1"]);
    expect(await store.list("a__")).toEqual(["a__"]);
    expect(await store.list("x_/")).toEqual(["x_/y"]);
    await store.close();
  });

  test("get returns a plain Uint8Array copy, not a Buffer", async () => {
    const store = await createPostgresStore({ connectionString: serverUrl(), table });
    await store.put("k", new Uint8Array([1, 2, 3]));
    const value = await store.get("k");
    expect(value?.constructor).toBe(Uint8Array);
    expect(value?.byteOffset).toBe(0);
    expect(value?.buffer.byteLength).toBe(3);
    await store.close();
  });

  test("stores opening one new table at once all succeed", async () => {
    // The catalog race is timing-dependent (it failed about one CI run in ten with four stores
    // and one table): several fresh tables, eight stores each, make it show reliably.
    for (const name of [table, freshTable(), freshTable(), freshTable(), freshTable()]) {
      const stores = await Promise.all(Array.from({ length: 8 }, () => createPostgresStore({ connectionString: serverUrl(), table: name })));
      await stores[0]!.put("k", new Uint8Array([7]));
      expect(await stores[7]!.get("k")).toEqual(new Uint8Array([7]));
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  test("close waits for operations in flight, and may be called twice", async () => {
    const store = await createPostgresStore({ connectionString: serverUrl(), table });
    const put = store.put("k", new Uint8Array(256 * 1024).fill(5));
    await store.close();
    await expect(put).resolves.toBeUndefined();
    await store.close();
    const check = await createPostgresStore({ connectionString: serverUrl(), table });
    expect((await check.get("k"))?.length).toBe(256 * 1024);
    await check.close();
  });

  test("a table that exists with other columns is refused with a StorageError", async () => {
    await adminPool().query(`CREATE TABLE "${table}" (id integer)`);
    const error = await createPostgresStore({ connectionString: serverUrl(), table }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/exists but lacks the columns key .* pick another table name/);
  });

  test("a dropped table fails operations with a StorageError saying what to do", async () => {
    const store = await createPostgresStore({ connectionString: serverUrl(), table });
    await dropTable(table);
    const error = await store.get("k").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).key).toBe("k");
    expect((error as Error).message).toMatch(/cannot read "k" in PostgreSQL table .*open the store again/);
    expect((error as Error).cause).toBeDefined();
    await store.close();
  });
});

describe("postgres store options and connection failures", () => {
  test.each([["bad-name"], ["1abc"], ["a.b"], ['x"; DROP TABLE y; --'], ["x".repeat(64)], [""]])("table %j is refused before connecting", async (table) => {
    // No server at this address: validation must fail first.
    const error = await createPostgresStore({ connectionString: "postgres://nobody@127.0.0.1:1/none", table }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/invalid PostgreSQL table name/);
  });

  test("pool and connectionString together are refused", async () => {
    const pool = new pg.Pool({ connectionString: serverUrl() });
    await expect(createPostgresStore({ pool, connectionString: serverUrl() })).rejects.toThrow(/either a pool or connectionString/);
    await pool.end();
  });

  test("an unreachable server fails with a StorageError naming it, without the password", async () => {
    const error = await createPostgresStore({ connectionString: "postgres://me:s3cret@127.0.0.1:1/lockstep", connectionTimeoutMillis: 2000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    const message = (error as Error).message;
    expect(message).toContain("postgres://me@127.0.0.1:1/lockstep");
    expect(message).toContain("ECONNREFUSED");
    expect(message).toMatch(/check that PostgreSQL is running and reachable/);
    expect(message).not.toContain("s3cret");
    expect((error as Error).cause).toBeDefined();
  });

  test("a server that accepts but never answers fails after connectionTimeoutMillis instead of hanging", async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    try {
      const error = await createPostgresStore({ connectionString: `postgres://me@127.0.0.1:${port}/lockstep`, connectionTimeoutMillis: 300 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toMatch(/timeout.*check that PostgreSQL is running and reachable/i);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
