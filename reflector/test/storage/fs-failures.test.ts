import { readFile, stat } from "node:fs/promises";
import { StorageError, createFsStore } from "../../src/storage";
import { fsStoreSettled, fsStoreStats, openFsStore, type FsStore } from "../../src/storage/fs-store";
import { TestIo, contents, logBytes, newDir, removeDir, segmentPaths } from "./fs-test-io";

// Write failures: every op of the failed flush rejects with a StorageError saying what to do,
// nothing of it becomes visible (now or after a reopen), and the store works again once the disk does.

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

async function rejection(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  return error as StorageError;
}

describe("fs store write failures", () => {
  let dir: string;
  let io: TestIo;
  let store: FsStore;

  beforeEach(async () => {
    dir = await newDir("fs-failures");
    io = new TestIo();
    store = await openFsStore(dir, {}, io);
    await store.put("old", bytes(1));
    await store.put("doomed", bytes(1));
  });

  afterEach(async () => {
    await store.close();
    await removeDir(dir);
  });

  /** Reopens the directory with the real file layer and returns its contents. */
  async function reopened(): Promise<Map<string, string>> {
    await store.close();
    store = await createFsStore(dir);
    expect(store.opened.damage).toEqual([]);
    return contents(store);
  }

  test.each([
    ["writev", "ENOSPC", /cannot write "new\/1" at .*00000001\.seg \(ENOSPC\); free disk space, then retry/],
    ["datasync", "EIO", /cannot write "new\/1" at .*00000001\.seg \(EIO\); check the storage directory and the disk, then retry/],
    ["writev", "EROFS", /\(EROFS\); the file system is mounted read-only: remount it read-write/],
  ] as const)("a failing %s (%s) rejects every op of its flush, shows none of them, and later ops work", async (point, code, message) => {
    // The log's bytes (the file may hold zeros written ahead of them: fs-log-prealloc.ts).
    const size = logBytes(await readFile((await segmentPaths(dir))[0]!)).length;
    io.fail(point, code);
    const ops = [store.put("new/1", bytes(2)), store.put("old", bytes(3)), store.delete("doomed")];
    const errors = await Promise.all(ops.map(rejection));
    expect(errors[0]!.message).toMatch(message);
    expect(errors.map((e) => e.key)).toEqual(["new/1", "old", "doomed"]);
    expect(errors[2]!.message).toMatch(/^cannot delete "doomed"/);
    expect(errors[0]!.cause).toMatchObject({ code });
    // Nothing of the failed flush is visible, and the file is cut back to its last good batch (zeros ahead too).
    expect(await contents(store)).toEqual(new Map([["doomed", "01"], ["old", "01"]]));
    expect((await stat((await segmentPaths(dir))[0]!)).size).toBe(size);
    // The disk works again.
    await store.put("later", bytes(4));
    await store.delete("doomed");
    expect(await contents(store)).toEqual(new Map([["later", "04"], ["old", "01"]]));
    expect(await reopened()).toEqual(new Map([["later", "04"], ["old", "01"]]));
  });

  test("a failing flush of a deleteMany rejects it naming its first key and deletes none of its keys", async () => {
    io.fail("writev", "ENOSPC");
    const error = await rejection(store.deleteMany(["old", "doomed", "never/there"]));
    expect(error.message).toMatch(/^cannot delete "old" at .*\(ENOSPC\); free disk space, then retry/);
    expect(error.key).toBe("old");
    expect(await contents(store)).toEqual(new Map([["doomed", "01"], ["old", "01"]]));
    await store.deleteMany(["old", "doomed"]);
    expect(await contents(store)).toEqual(new Map());
    expect(await reopened()).toEqual(new Map());
  });

  test("when cutting back fails too, no later batch is written after the leftover until a cut succeeds", async () => {
    io.fail("datasync", "EIO"); // the flush fails after its bytes are in the file
    io.fail("truncate", "EIO", 3); // cutting them off fails at once, before the next batch, and after it
    await rejection(store.put("failed/1", bytes(2)));
    const writes = io.counts.writev;
    const next = await rejection(store.put("failed/2", bytes(3)));
    expect(next.message).toMatch(/cannot write "failed\/2" .*\(EIO\)/);
    expect(io.counts.truncate).toBe(3);
    expect(io.counts.writev).toBe(writes); // failed/2 was never written after the leftover
    await store.put("later", bytes(4)); // the fourth cut works; then this batch
    expect(io.counts.truncate).toBe(4);
    expect(await contents(store)).toEqual(new Map([["doomed", "01"], ["later", "04"], ["old", "01"]]));
    expect(await reopened()).toEqual(new Map([["doomed", "01"], ["later", "04"], ["old", "01"]]));
  });

  test("a segment that cannot be created fails its flush; the next flush creates it", async () => {
    await store.close();
    io = new TestIo();
    store = await openFsStore(dir, { segmentBytes: 1024 }, io);
    await store.put("big", new Uint8Array(1100)); // the next flush must start segment 2
    io.fail("open", "EMFILE");
    const error = await rejection(store.put("k", bytes(1)));
    expect(error.message).toMatch(/cannot write "k" at .*00000002\.seg \(EMFILE\)/);
    io.fail("syncDir", "EIO"); // created, but its directory entry cannot be made durable
    await rejection(store.put("k", bytes(2)));
    await store.put("k", bytes(3));
    expect(await store.get("k")).toEqual(bytes(3));
    expect((await segmentPaths(dir)).length).toBe(2);
    expect((await reopened()).get("k")).toBe("03");
  });

  test("a failing flush of compaction copies keeps the old segment, reports it, and compaction completes later", async () => {
    await store.close();
    const setup = await createFsStore(dir, { segmentBytes: 1024, compactBelow: 0 });
    await setup.put("live", new Uint8Array(200).fill(7));
    for (let i = 0; i < 6; i++) await setup.put("dead", new Uint8Array(300).fill(i)); // segment 1 mostly dead
    await setup.close();
    io = new TestIo();
    const warnings: string[] = [];
    const logger = { info: () => undefined, error: () => undefined, warn: (event: string) => void warnings.push(event) };
    store = await openFsStore(dir, { segmentBytes: 1024, compactBelow: 0.5, logger }, io);
    await store.put("x", bytes(1)); // compaction starts after this flush
    io.fail("writev", "EIO"); // ...and its copies' flush fails
    await fsStoreSettled(store);
    expect(warnings).toEqual(["storage.compaction.failed"]);
    const compacted = fsStoreStats(store).compactedSegments;
    expect((await segmentPaths(dir))[0]).toMatch(/00000001\.seg$/);
    // It tries again after a while (a hundred flushes), and then succeeds.
    for (let i = 0; i < 120; i++) await store.put("x", bytes(i));
    await fsStoreSettled(store);
    expect(fsStoreStats(store).compactedSegments).toBeGreaterThan(compacted);
    expect((await segmentPaths(dir))[0]).not.toMatch(/00000001\.seg$/);
    const expected = new Map([
      ["dead", Buffer.from(new Uint8Array(300).fill(5)).toString("hex")],
      ["doomed", "01"],
      ["live", Buffer.from(new Uint8Array(200).fill(7)).toString("hex")],
      ["old", "01"],
      ["x", "77"],
    ]);
    expect(await contents(store)).toEqual(expected);
    expect(await reopened()).toEqual(expected);
  });
});
