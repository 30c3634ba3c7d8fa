import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StorageError, createFsStore } from "../../src/storage";
import { runBlobStoreConformance } from "@lockstep/test-support";

const newDir = (): Promise<string> => mkdtemp(join(tmpdir(), "lockstep-fs-store-"));

runBlobStoreConformance("fs", async () => {
  const dir = await newDir();
  return { store: await createFsStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe("fs store on disk", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await newDir();
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("creates the directory, nested, if it does not exist", async () => {
    const nested = join(dir, "x", "y");
    const store = await createFsStore(nested);
    await store.put("k", new Uint8Array([1]));
    expect(existsSync(nested)).toBe(true);
    await store.close();
  });

  test("data survives closing and reopening the store", async () => {
    const first = await createFsStore(dir);
    await first.put("sessions/S1/meta", new Uint8Array([1, 2]));
    await first.put("sessions/S1/log/0000000000000001", new Uint8Array([3]));
    await first.close();
    const second = await createFsStore(dir);
    expect(await second.list("")).toEqual(["sessions/S1/log/0000000000000001", "sessions/S1/meta"]);
    expect(await second.get("sessions/S1/meta")).toEqual(new Uint8Array([1, 2]));
    await second.close();
  });

  test("lays keys out as documented: directories per segment, escaped capitals, '@' after the file", async () => {
    const store = await createFsStore(dir);
    await store.put("a/Bc/d", new Uint8Array([1]));
    await store.put("a/Bc", new Uint8Array([2]));
    expect((await readdir(join(dir, "a"))).sort()).toEqual(["^bc", "^bc@"]);
    expect(await readdir(join(dir, "a", "^bc"))).toEqual(["d@"]);
    await store.close();
  });

  test("a temp file left by a crash mid-put is never listed and is removed on open", async () => {
    const store = await createFsStore(dir);
    await store.put("a/b", new Uint8Array([1]));
    const leftover = join(dir, "a", "b@tmp-0123456789abcdef");
    const deeper = join(dir, "a", "^c", "d@tmp-fedcba9876543210");
    await writeFile(leftover, new Uint8Array([9, 9]));
    await mkdir(join(dir, "a", "^c"));
    await writeFile(deeper, new Uint8Array([9]));
    expect(await store.list("")).toEqual(["a/b"]);
    expect(await store.get("a/b")).toEqual(new Uint8Array([1]));
    await store.close();

    const reopened = await createFsStore(dir);
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(deeper)).toBe(false);
    expect(await reopened.list("")).toEqual(["a/b"]);
    await reopened.close();
  });

  test("files that are not ours are ignored and left alone", async () => {
    await mkdir(join(dir, "a"));
    await writeFile(join(dir, "a", ".DS_Store"), "x");
    await writeFile(join(dir, "a", "README"), "x");
    const store = await createFsStore(dir);
    await store.put("a/k", new Uint8Array([1]));
    expect(await store.list("")).toEqual(["a/k"]);
    await store.delete("a/k");
    expect(existsSync(join(dir, "a", "README"))).toBe(true);
    await store.close();
  });

  test("deleting the last key of a directory prunes the empty directories", async () => {
    const store = await createFsStore(dir);
    await store.put("p/q/r/s", new Uint8Array([1]));
    await store.delete("p/q/r/s");
    expect(await readdir(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(true);
    await store.close();
  });

  test("concurrent deletes that empty one directory all succeed (one of them prunes it under the others)", async () => {
    const store = await createFsStore(dir);
    for (let round = 0; round < 60; round++) {
      const keys = Array.from({ length: 8 }, (_, i) => `d${round}/k${i}`);
      await Promise.all(keys.map((k) => store.put(k, new Uint8Array([1]))));
      await expect(Promise.all(keys.map((k) => store.delete(k)))).resolves.toBeDefined();
      expect(await store.list(`d${round}/`)).toEqual([]);
    }
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
});
