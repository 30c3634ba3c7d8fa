import { stat } from "node:fs/promises";
import { createFsStore, type BlobStore } from "../../src/storage";
import { fsStoreSettled, fsStoreStats, openFsStore } from "../../src/storage/fs-store";
import { seedHint, testRng, type Rng } from "@lockstep/test-support";
import { TestIo, contents, newDir, removeDir, segmentPaths } from "./fs-test-io";

// Compaction: mostly dead segments are rewritten forward and deleted, in the background, without
// changing what the store holds, before or after a reopen; deleted keys never come back.

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

async function diskBytes(dir: string): Promise<number> {
  let total = 0;
  for (const path of await segmentPaths(dir)) total += (await stat(path)).size;
  return total;
}

/** Puts, overwrites and deletes from `lanes` concurrent lanes, each owning its keys; returns the model. */
async function churn(store: BlobStore, rng: Rng, ops: number, lanes = 4, model = new Map<string, string>()): Promise<Map<string, string>> {
  await Promise.all(
    Array.from({ length: lanes }, async (_, l) => {
      const r = rng.fork(`lane ${l}`);
      for (let i = 0; i < ops / lanes; i++) {
        const key = `sessions/L${l}/log/${String(r.int(12)).padStart(16, "0")}`;
        if (r.bool(0.3)) {
          await store.delete(key);
          model.delete(key);
        } else {
          const value = r.bytes(r.range(20, 300));
          await store.put(key, value);
          model.set(key, Buffer.from(value).toString("hex"));
        }
      }
    }),
  );
  return model;
}

describe("fs store compaction", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await newDir("fs-compaction");
  });

  afterEach(async () => {
    await removeDir(dir);
  });

  test("churn: segments get compacted, the disk shrinks, and the contents stay those of a model, also after reopening", async () => {
    const rng = testRng("fs compaction churn");
    const options = { segmentBytes: 4096, compactBelow: 0.5 };
    try {
      // The same ops without compaction, for the size it saves.
      const plainDir = await newDir("fs-compaction-off");
      const plain = await createFsStore(plainDir, { ...options, compactBelow: 0 });
      const plainModel = await churn(plain, rng.fork("ops"), 3000);
      await plain.close();
      const uncompacted = await diskBytes(plainDir);
      await removeDir(plainDir);

      const store = await createFsStore(dir, options);
      const model = await churn(store, rng.fork("ops"), 3000);
      expect(model).toEqual(plainModel);
      await fsStoreSettled(store);
      const stats = fsStoreStats(store);
      expect(stats.compactedSegments).toBeGreaterThan(10);
      expect(await contents(store)).toEqual(model);
      // Every sealed segment is at least half live now: the disk holds at most about twice what is live.
      expect(stats.diskBytes).toBe(await diskBytes(dir));
      expect(stats.diskBytes).toBeLessThan(2 * stats.liveBytes + 2 * options.segmentBytes);
      expect(stats.diskBytes).toBeLessThan(uncompacted / 3);
      await store.close();

      const reopened = await createFsStore(dir, options);
      expect(await contents(reopened)).toEqual(model);
      expect(reopened.opened.damage).toEqual([]);
      // Deleting everything: compaction takes the disk down to about nothing, and nothing comes back.
      for (const key of model.keys()) await reopened.delete(key);
      for (let i = 0; i < 200; i++) await reopened.put("filler", new Uint8Array(100).fill(i));
      await reopened.delete("filler");
      await fsStoreSettled(reopened);
      expect(await reopened.list("")).toEqual([]);
      expect(await diskBytes(dir)).toBeLessThan(3 * options.segmentBytes);
      await reopened.close();
      const empty = await createFsStore(dir, options);
      expect(await empty.list("")).toEqual([]);
      await empty.close();
    } catch (error) {
      throw new Error(`${(error as Error).message}\n(${seedHint()})`, { cause: error });
    }
  });

  test("a tombstone outlives the compaction of its segment while an older segment still holds a put of its key", async () => {
    const options = { segmentBytes: 1024, compactBelow: 0.5 };
    const store = await createFsStore(dir, options);
    // Segment 1: a value that stays live (so segment 1 is never compacted) and the victim.
    await store.put("keep", new Uint8Array(700).fill(1));
    await store.put("victim", bytes(6, 6, 6));
    await store.put("roll", new Uint8Array(400)); // fills segment 1
    await store.delete("victim"); // the tombstone: segment 2
    // Overwrites make segment 2 and the ones after it dead: they get compacted.
    for (let i = 0; i < 60; i++) await store.put("roll", new Uint8Array(400).fill(i));
    await fsStoreSettled(store);
    const names = (await segmentPaths(dir)).map((p) => p.slice(p.lastIndexOf("/") + 1));
    expect(names[0]).toBe("00000001.seg");
    expect(names).not.toContain("00000002.seg");
    expect(fsStoreStats(store).compactedSegments).toBeGreaterThan(5);
    expect(await store.get("victim")).toBeUndefined();
    await store.close();
    const reopened = await createFsStore(dir, options);
    expect(await reopened.get("victim")).toBeUndefined();
    expect(await reopened.list("")).toEqual(["keep", "roll"]);
    expect(await reopened.get("roll")).toEqual(new Uint8Array(400).fill(59));
    await reopened.close();
  });

  test("close() while compaction runs stops it cleanly: what was stored reads back the same", async () => {
    const rng = testRng("fs compaction close");
    const options = { segmentBytes: 2048, compactBelow: 0.7 };
    const model = new Map<string, string>();
    let compacted = 0;
    for (let round = 0; round < 5; round++) {
      const store = await createFsStore(dir, options);
      expect(await contents(store)).toEqual(new Map([...model].sort()));
      expect(store.opened.damage).toEqual([]);
      await churn(store, rng.fork(`round ${round}`), 400, 2, model);
      compacted += fsStoreStats(store).compactedSegments;
      await store.close(); // no settling first: compaction is usually in the middle of something
    }
    expect(compacted).toBeGreaterThan(0);
    const last = await createFsStore(dir, options);
    expect(await contents(last)).toEqual(new Map([...model].sort()));
    await last.close();
  });

  test("a put and a delete of a key in the same flush as its copy win over the copy", async () => {
    const options = { segmentBytes: 1024, compactBelow: 0.5 };
    const setup = await createFsStore(dir, { ...options, compactBelow: 0 });
    await setup.put("k", new Uint8Array(100).fill(1));
    await setup.put("k2", new Uint8Array(100).fill(2));
    for (let i = 0; i < 8; i++) await setup.put("pad", new Uint8Array(300).fill(i)); // segment 1 is mostly dead now
    await setup.close();

    const io = new TestIo();
    const store = await openFsStore(dir, options, io);
    // Compaction starts after this put's flush and reads segment 1: hold that read.
    const read = io.hold("read", "00000001.seg");
    await store.put("x", bytes(1));
    await read.reached;
    // A flush in flight (held at its sync), so that what is queued next shares the following one.
    const sync = io.hold("datasync");
    const flush = store.put("y", bytes(2));
    await sync.reached;
    read.release();
    await read.done;
    await new Promise((resolve) => setImmediate(resolve)); // compaction queued its copies of k and k2 meanwhile
    const ops = [store.put("k", new Uint8Array(100).fill(9)), store.delete("k2")];
    sync.release();
    await Promise.all([flush, ...ops]);
    await fsStoreSettled(store);
    expect(fsStoreStats(store).compactedSegments).toBeGreaterThan(0);
    expect((await segmentPaths(dir)).map((p) => p.slice(p.lastIndexOf("/") + 1))).not.toContain("00000001.seg");
    const expected = new Map([
      ["k", Buffer.from(new Uint8Array(100).fill(9)).toString("hex")],
      ["pad", Buffer.from(new Uint8Array(300).fill(7)).toString("hex")],
      ["x", "01"],
      ["y", "02"],
    ]);
    expect(await contents(store)).toEqual(expected);
    await store.close();
    const reopened = await createFsStore(dir, options);
    expect(await contents(reopened)).toEqual(expected);
    await reopened.close();
  });
});
