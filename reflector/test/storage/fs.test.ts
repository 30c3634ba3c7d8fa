import { spawn } from "node:child_process";
import { build } from "esbuild";
import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { StorageError, createFsStore } from "../../src/storage";
import { LOG_DIR, fsStoreStats, openFsStore } from "../../src/storage/fs-store";
import { KIND_TOMBSTONE, crc32, crc32Range, crc32Table, encodeRecord, encodeTombstones, tombstoneBytes, tombstoneChunks } from "../../src/storage/fs-log-format";
import { createRng, runBlobStoreConformance, testRng } from "@lockstep/test-support";
import { TestIo, newDir, removeDir, segmentPaths } from "./fs-test-io";

runBlobStoreConformance("fs", async () => {
  const dir = await newDir("fs-store");
  return { store: await createFsStore(dir), cleanup: () => removeDir(dir) };
});

// The same contract with tiny segments and eager compaction, so rolls and compaction run under it.
runBlobStoreConformance("fs, 4 KiB segments", async () => {
  const dir = await newDir("fs-store");
  return { store: await createFsStore(dir, { segmentBytes: 4096, compactBelow: 0.9 }), cleanup: () => removeDir(dir) };
});

describe("fs store on disk", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await newDir("fs-store");
  });

  afterEach(async () => {
    await removeDir(dir);
  });

  test("creates the directory, nested, if it does not exist", async () => {
    const nested = join(dir, "x", "y");
    const store = await createFsStore(nested);
    await store.put("k", new Uint8Array([1]));
    expect(existsSync(join(nested, LOG_DIR, "00000001.seg"))).toBe(true);
    await store.close();
  });

  test("data survives closing and reopening the store, across segments", async () => {
    const first = await createFsStore(dir, { segmentBytes: 1024 });
    const values = new Map<string, Uint8Array>();
    for (let i = 0; i < 40; i++) {
      const key = `sessions/S${i % 4}/log/${String(i).padStart(16, "0")}`;
      values.set(key, createRng(i).bytes(i * 7));
      await first.put(key, values.get(key)!);
    }
    await first.put("sessions/S1/meta", new Uint8Array([1, 2]));
    await first.delete("sessions/S2/log/0000000000000002");
    values.delete("sessions/S2/log/0000000000000002");
    await first.close();
    expect((await segmentPaths(dir)).length).toBeGreaterThan(3);

    const second = await createFsStore(dir, { segmentBytes: 1024 });
    expect(await second.list("")).toEqual([...values.keys(), "sessions/S1/meta"].sort());
    for (const [key, value] of values) expect(await second.get(key)).toEqual(value);
    expect(await second.get("sessions/S1/meta")).toEqual(new Uint8Array([1, 2]));
    expect(second.opened).toEqual({ migratedKeys: 0, damage: [], truncated: undefined, unwritable: undefined });
    await second.close();
  });

  test("list with 100,000 keys returns exactly the prefix's keys, sorted, from the index", async () => {
    const store = await createFsStore(dir);
    const keys: string[] = [];
    for (let s = 0; s < 10_000; s++) {
      const id = `s${s.toString(36)}X${s % 7}`;
      keys.push(`activity/${id}`, `sessions/${id}/meta`, `sessions/${id}/snapshot`, `sessions/${id}/log/${String(s).padStart(16, "0")}`);
      if (s % 3 === 0) keys.push(`sessions/${id}/clock`, `sessions/${id}/persisted`, `sessions/${id}-x/meta`);
    }
    while (keys.length < 100_000) keys.push(`persist/slot${keys.length}/v/0000000000000001`);
    await Promise.all(keys.map((key) => store.put(key, new Uint8Array([key.length & 0xff]))));
    const sorted = [...keys].sort();
    expect(await store.list("")).toEqual(sorted);
    expect(await store.list("activity/")).toEqual(sorted.filter((k) => k.startsWith("activity/")));
    expect(await store.list("sessions/saX3/")).toEqual(["sessions/saX3/log/0000000000000010", "sessions/saX3/meta", "sessions/saX3/snapshot"]);
    expect(await store.list("sessions/s0X0")).toEqual(sorted.filter((k) => k.startsWith("sessions/s0X0")));
    expect(await store.list("sessions/s0X0")).toContain("sessions/s0X0-x/meta");
    await store.close();
    const reopened = await createFsStore(dir);
    expect(await reopened.list("")).toEqual(sorted);
    await reopened.close();
  }, 60_000);

  test("group commit: 200 puts of one turn share one write and one fdatasync; ops during a flush share the next", async () => {
    const io = new TestIo();
    const store = await openFsStore(dir, {}, io);
    await store.put("warm/up", new Uint8Array([1])); // creates the first segment
    const before = { ...fsStoreStats(store) };
    const syncs = io.counts.datasync;
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.put(`sessions/S${i}/log/0000000000000001`, new Uint8Array(1000).fill(i))));
    expect(fsStoreStats(store).flushes - before.flushes).toBe(1);
    expect(io.counts.datasync - syncs).toBe(1);

    // 50 puts, then 50 more once the first flush is under way: two flushes, not 100.
    const first = Array.from({ length: 50 }, (_, i) => store.put(`a/${i}`, new Uint8Array([i])));
    await new Promise((resolve) => setImmediate(resolve));
    const second = Array.from({ length: 50 }, (_, i) => store.put(`b/${i}`, new Uint8Array([i])));
    await Promise.all([...first, ...second]);
    expect(fsStoreStats(store).flushes - before.flushes).toBe(3);
    expect(io.counts.datasync - syncs).toBe(3);
    await store.close();
  });

  test("a value over 4 KiB is written from the caller's buffer, not a copy; small and large values of one batch read back after a reopen", async () => {
    const io = new TestIo();
    const store = await openFsStore(dir, {}, io);
    await store.put("warm/up", new Uint8Array([1]));
    const sizes = [0, 1, 4095, 4096, 4097, 65_536, 256_000, 1_000_000];
    const values = sizes.map((n, i) => createRng(i + 1).bytes(n));
    const writes = io.writes.length;
    await Promise.all(values.map((value, i) => store.put(`v/${i}`, value)));
    const written = io.writes.slice(writes).flat();
    const shared = (value: Uint8Array): boolean => written.some((b) => b.buffer === value.buffer);
    expect(sizes.filter((_, i) => shared(values[i]!))).toEqual([4097, 65_536, 256_000, 1_000_000]);
    expect(fsStoreStats(store).flushes).toBe(2); // the warm-up, then all eight in one batch
    await store.close();

    const reopened = await createFsStore(dir);
    expect(reopened.opened.damage).toEqual([]);
    for (const [i, value] of values.entries()) expect(await reopened.get(`v/${i}`)).toEqual(value);
    await reopened.close();
  });

  test("deleteMany of 3,000 keys is one op in one flush; reopened, they stay deleted and the rest stays", async () => {
    const io = new TestIo();
    const store = await openFsStore(dir, {}, io);
    const keys = Array.from({ length: 3500 }, (_, i) => `sessions/S/log/${String(i + 1).padStart(16, "0")}`);
    await Promise.all(keys.map((key, i) => store.put(key, new Uint8Array([i & 0xff]))));
    const before = { ...fsStoreStats(store) };
    const syncs = io.counts.datasync;
    await store.deleteMany(keys.slice(0, 3000));
    expect(fsStoreStats(store).flushes - before.flushes).toBe(1);
    expect(fsStoreStats(store).records - before.records).toBe(3000);
    expect(io.counts.datasync - syncs).toBe(1);
    expect(await store.list("sessions/S/log/")).toEqual(keys.slice(3000));
    await store.close();

    const reopened = await createFsStore(dir);
    expect(reopened.opened.damage).toEqual([]);
    expect(await reopened.list("sessions/")).toEqual(keys.slice(3000));
    expect(await reopened.get(keys[3000]!)).toEqual(new Uint8Array([3000 & 0xff]));
    await reopened.close();
  });

  test("deleteMany's tombstones are byte for byte the records delete writes, cut into runs of at most the batch size", () => {
    const rng = testRng("fs tombstones");
    const alphabet = "abcXYZ019._-/";
    const keys = Array.from({ length: 200 }, () => Array.from({ length: 1 + rng.int(120) }, () => alphabet[rng.int(alphabet.length)]).join(""));
    expect(encodeTombstones(keys)).toEqual(Buffer.concat(keys.map((key) => encodeRecord(KIND_TOMBSTONE, key, undefined)[0]!)));
    const max = 500;
    const chunks = tombstoneChunks(keys, max);
    expect(chunks.flat()).toEqual(keys);
    for (const chunk of chunks) {
      const bytes = chunk.reduce((sum, key) => sum + tombstoneBytes(key), 0);
      expect(chunk.length === 1 || bytes <= max).toBe(true);
    }
    expect(tombstoneChunks([], max)).toEqual([]);
    expect(tombstoneChunks(["k".repeat(1000)], max)).toEqual([["k".repeat(1000)]]); // never split below one key
  });

  test("a put resolves only after its fdatasync returned", async () => {
    const io = new TestIo();
    const store = await openFsStore(dir, {}, io);
    await store.put("first", new Uint8Array([1]));
    const syncs = io.counts.datasync;
    let resolved = false;
    const put = store.put("k", new Uint8Array([2])).then(() => (resolved = true));
    // Until a sync after the write ran, the put is pending and the value invisible.
    while (io.counts.datasync === syncs) {
      expect(resolved).toBe(false);
      expect(await store.get("k")).toBeUndefined();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await put;
    expect(await store.get("k")).toEqual(new Uint8Array([2]));
    await store.close();
  });

  test("a storage path that is a file fails with an actionable StorageError", async () => {
    const file = join(dir, "plain-file");
    await writeFile(file, "x");
    const error = await createFsStore(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/cannot create the storage directory .*check the path/);
    expect((error as Error).cause).toBeDefined();
  });

  test("bad options are refused", async () => {
    await expect(createFsStore(dir, { segmentBytes: 10 })).rejects.toThrow(/segmentBytes must be an integer from 1024/);
    await expect(createFsStore(dir, { compactBelow: 2 })).rejects.toThrow(/compactBelow must be a fraction/);
  });

  test("files that are not ours are ignored and left alone", async () => {
    await mkdir(join(dir, "a"));
    await writeFile(join(dir, "a", ".DS_Store"), "x");
    await writeFile(join(dir, "README"), "x");
    await writeFile(join(dir, LOG_DIR + "-notes"), "x");
    const store = await createFsStore(dir);
    await store.put("a/k", new Uint8Array([1]));
    expect(await store.list("")).toEqual(["a/k"]);
    await store.close();
    expect((await readdir(dir)).sort()).toEqual(["@log", "@log-notes", "README", "a"]);
    expect(await readdir(join(dir, "a"))).toEqual([".DS_Store"]);
  });

  test("the CRC-32 fallback computes what zlib does, also when continued", () => {
    const rng = testRng("fs crc32 fallback");
    for (let i = 0; i < 50; i++) {
      const data = rng.bytes(rng.int(3000));
      const cut = rng.int(data.length + 1);
      expect(crc32Table(data)).toBe(crc32(data));
      expect(crc32Table(data.subarray(cut), crc32Table(data.subarray(0, cut)))).toBe(crc32(data));
      // A range, and a range continued: what the log's open checks headers and keys with.
      const to = cut + rng.int(data.length - cut + 1);
      expect(crc32Range(data, cut, to)).toBe(crc32(data.subarray(cut, to)));
      expect(crc32Range(data, cut, data.length, crc32Range(data, 0, cut))).toBe(crc32(data));
    }
    expect(crc32Table(Buffer.from("123456789"))).toBe(0xcbf43926); // the standard check value
  });
});

describe("fs store: one process per directory", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await newDir("fs-lock");
  });

  afterEach(async () => {
    await removeDir(dir);
  });

  const lockPath = (): string => join(dir, LOG_DIR, "lock");

  test("a second open of the same directory fails with a StorageError; after close it succeeds", async () => {
    const first = await createFsStore(dir);
    const error = await createFsStore(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/is in use by this process.*one process at a time may use a data directory/);
    await first.put("k", new Uint8Array([1]));
    await first.close();
    expect(existsSync(lockPath())).toBe(false);
    const second = await createFsStore(dir);
    expect(await second.get("k")).toEqual(new Uint8Array([1]));
    await second.close();
  });

  test("a lock left by a process that is gone (kill -9) is taken over", async () => {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const pid = child.pid!;
    await new Promise((resolve) => child.on("exit", resolve));
    await mkdir(join(dir, LOG_DIR), { recursive: true });
    await writeFile(lockPath(), JSON.stringify({ pid, host: hostname(), start: "1", token: "0123456789abcdef", since: "earlier" }));
    const store = await createFsStore(dir);
    await store.put("k", new Uint8Array([1]));
    await store.close();
  });

  test("a lock of another host is never taken over: the message names it and says what to do", async () => {
    await mkdir(join(dir, LOG_DIR), { recursive: true });
    await writeFile(lockPath(), JSON.stringify({ pid: 12345, host: "elsewhere.example", start: "", token: "0123456789abcdef", since: "2024-01-01T00:00:00.000Z" }));
    await expect(createFsStore(dir)).rejects.toThrow(
      new RegExp(`in use by process 12345 on host elsewhere.example .*a reflector on another machine.*If no such process runs, delete ${lockPath().replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
    );
  });

  test("an empty lock file is someone taking the lock if it is fresh, and left by a crash if it is old", async () => {
    await mkdir(join(dir, LOG_DIR), { recursive: true });
    await writeFile(lockPath(), "");
    await expect(createFsStore(dir)).rejects.toThrow(/taking the lock right now/);
    const old = new Date(Date.now() - 60_000);
    await utimes(lockPath(), old, old);
    const store = await createFsStore(dir);
    await store.close();
  });

  test("another live process holding the directory makes the open fail, naming its pid", async () => {
    const bundle = join(dir, "store.cjs");
    await build({
      stdin: { contents: 'export { createFsStore } from "./fs-store";', resolveDir: join(__dirname, "../../src/storage"), loader: "ts" },
      bundle: true,
      platform: "node",
      format: "cjs",
      outfile: bundle,
      logLevel: "silent",
    });
    const data = join(dir, "data");
    const child = spawn(
      process.execPath,
      ["-e", `require(${JSON.stringify(bundle)}).createFsStore(process.argv[1]).then(() => { console.log("locked"); process.stdin.resume(); process.stdin.on("end", () => process.exit(0)); })`, data],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("locked") && resolve());
        child.on("exit", (code) => reject(new Error(`the child exited with ${code}`)));
      });
      await expect(createFsStore(data)).rejects.toThrow(new RegExp(`in use by process ${child.pid} on host `));
    } finally {
      child.kill("SIGKILL");
      await new Promise((resolve) => child.on("exit", resolve));
    }
    // Killed: the lock is stale now.
    const store = await createFsStore(data);
    await store.close();
  });
});
