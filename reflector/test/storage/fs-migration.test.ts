import { cp, mkdir, readdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { StorageError, createFsStore, type BlobStore } from "../../src/storage";
import { openFsStore } from "../../src/storage/fs-store";
import { createRng } from "@lockstep/test-support";
import { createLegacyFsStore } from "./legacy-fs-store";
import { TestIo, contents, newDir, removeDir } from "./fs-test-io";

// A data directory of the former layout (a file per key) keeps working: opening it moves every key
// into the log, durably, then deletes the files; an interrupted migration is simply done again.

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Every file under `dir`, relative, sorted (the log's own directory left out). */
async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      if (entry.name === "@log") continue;
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else out.push(relative(dir, path));
    }
  };
  await walk(dir);
  return out.sort();
}

/** A legacy data directory like a reflector leaves it, written by the former store itself. */
async function writeLegacy(dir: string): Promise<Map<string, string>> {
  const legacy: BlobStore = await createLegacyFsStore(dir);
  const values: [string, Uint8Array][] = [
    ["sessions/aB_3/meta", text('{"format":1}')],
    ["sessions/aB_3/snapshot", createRng(1).bytes(1_000_000)],
    ["sessions/aB_3/log/0000000000000001", createRng(2).bytes(300)],
    ["sessions/aB_3/log/0000000000000007", new Uint8Array(0)],
    ["activity/aB_3", text("1700000000000")],
    ["persist/Slot-1/v/0000000000000001", createRng(3).bytes(50)],
    ["a/b", text("b")],
    ["a/b/c", text("c")],
    ["A/B", text("capitals")],
  ];
  for (const [key, value] of values) await legacy.put(key, value);
  await legacy.close();
  // What a crash mid-put of the old layout left behind, and files someone else put there.
  await writeFile(join(dir, "sessions", "a^b_3", "meta@tmp-0123456789abcdef"), "half a put");
  await writeFile(join(dir, "README"), "notes");
  await mkdir(join(dir, "sessions", "a^b_3", "log"), { recursive: true });
  await writeFile(join(dir, "sessions", "a^b_3", "log", ".DS_Store"), "x");
  return new Map(values.map(([k, v]) => [k, Buffer.from(v).toString("hex")]));
}

describe("fs store: migration from the file-per-key layout", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await newDir("fs-migration");
  });

  afterEach(async () => {
    await removeDir(dir);
  });

  test("opening imports every key, deletes the files it made (and its temp files), and logs it", async () => {
    const expected = await writeLegacy(dir);
    expect(await files(dir)).toContain("sessions/a^b_3/log/0000000000000001@");
    const events: { event: string; fields: object }[] = [];
    const logger = { info: (event: string, fields: object = {}) => void events.push({ event, fields }), warn: () => undefined, error: () => undefined };
    const store = await createFsStore(dir, { logger });
    expect(store.opened.migratedKeys).toBe(9);
    expect(events).toEqual([{ event: "storage.migrated", fields: { dir, keys: 9, to: join(dir, "@log") } }]);
    expect(await contents(store)).toEqual(new Map([...expected].sort()));
    // Only what the old layout did not make is left; emptied directories are gone.
    expect(await files(dir)).toEqual(["README", "sessions/a^b_3/log/.DS_Store"]);
    expect((await readdir(dir)).sort()).toEqual(["@log", "README", "sessions"]);
    await store.put("sessions/aB_3/clock", text("C"));
    await store.close();

    const reopened = await createFsStore(dir);
    expect(reopened.opened.migratedKeys).toBe(0);
    expect(await contents(reopened)).toEqual(new Map([...expected, ["sessions/aB_3/clock", "43"] as [string, string]].sort()));
    await reopened.close();
  });

  test("interrupted while importing (the log cannot be written): the open fails, the files stay, the next open finishes", async () => {
    const expected = await writeLegacy(dir);
    const before = await files(dir);
    const io = new TestIo();
    io.fail("datasync", "ENOSPC", 1);
    const error = await openFsStore(dir, {}, io).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/\(ENOSPC\); free disk space/);
    expect(await files(dir)).toEqual(before);

    const store = await createFsStore(dir); // the failed open released the lock
    expect(store.opened.migratedKeys).toBe(9);
    expect(await contents(store)).toEqual(new Map([...expected].sort()));
    await store.close();
  });

  test("interrupted while deleting the files: the next open imports what is left again, which changes nothing", async () => {
    const expected = await writeLegacy(dir);
    const untouched = await newDir("fs-migration-copy");
    try {
      await cp(dir, untouched, { recursive: true });
      const store = await createFsStore(dir);
      await store.close();
      // A crash after the imports were durable but before these unlinks were: the files are back.
      const left = ["sessions/a^b_3/snapshot@", "sessions/a^b_3/log/0000000000000007@", "a/b@", "a/b/c@"];
      for (const file of left) {
        await mkdir(join(dir, file, ".."), { recursive: true });
        await cp(join(untouched, file), join(dir, file));
      }
      const again = await createFsStore(dir);
      expect(again.opened.migratedKeys).toBe(left.length);
      expect(await contents(again)).toEqual(new Map([...expected].sort()));
      expect(await files(dir)).toEqual(["README", "sessions/a^b_3/log/.DS_Store"]);
      await again.close();
    } finally {
      await removeDir(untouched);
    }
  });
});
