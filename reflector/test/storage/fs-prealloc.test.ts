import { readFile, stat, writeFile } from "node:fs/promises";
import { StorageError, createFsStore } from "../../src/storage";
import { PREALLOC_CHUNK_BYTES } from "../../src/storage/fs-log-prealloc";
import { fsStoreSettled, openFsStore, type FsStore } from "../../src/storage/fs-store";
import { TestIo, batches, contents, logBytes, newDir, removeDir, segmentPaths, turn } from "./fs-test-io";

// Zeroed space ahead of the log (fs-log-prealloc.ts): flushes write over zeros instead of growing
// the file, recovery reads a zero tail as free space, and nothing the store acknowledged is ever
// written over by zeros.

const fill = (length: number, byte: number): Uint8Array => new Uint8Array(length).fill(byte);

describe("fs store: zeroed space ahead of the log", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await newDir("fs-prealloc");
  });

  afterEach(async () => {
    await removeDir(dir);
  });

  const fileSize = async (): Promise<number> => (await stat((await segmentPaths(dir)).at(-1)!)).size;

  test("flushes write into the zeroed space (the file does not grow), and a reopened store reads it as free space and goes on writing there", async () => {
    const store = await createFsStore(dir);
    await store.put("k/0", fill(100, 1));
    await fsStoreSettled(store);
    const size = await fileSize();
    expect(size).toBeGreaterThanOrEqual(PREALLOC_CHUNK_BYTES);
    for (let i = 1; i < 50; i++) await store.put(`k/${i}`, fill(100, i));
    expect(await fileSize()).toBe(size);
    await store.close();
    const log = logBytes(await readFile((await segmentPaths(dir))[0]!));
    expect(batches(log)).toHaveLength(50);

    const reopened = await createFsStore(dir);
    expect(reopened.opened).toMatchObject({ damage: [], truncated: undefined });
    expect(await reopened.list("")).toHaveLength(50);
    expect(await reopened.get("k/49")).toEqual(fill(100, 49));
    await reopened.put("after", fill(10, 7));
    await reopened.close();
    expect(await fileSize()).toBe(size);
    const again = await createFsStore(dir);
    expect(again.opened).toMatchObject({ damage: [], truncated: undefined });
    expect(await again.get("after")).toEqual(fill(10, 7));
    expect(await again.list("")).toHaveLength(51);
    await again.close();
  });

  test("a torn write into the zeroed space is cut as a torn tail; nothing acknowledged is lost", async () => {
    const store = await createFsStore(dir);
    for (let i = 0; i < 3; i++) await store.put(`k/${i}`, fill(300, i + 1));
    await store.close();
    const path = (await segmentPaths(dir))[0]!;
    const buf = await readFile(path);
    const end = logBytes(buf).length;
    const [lastStart, lastEnd] = batches(buf).at(-1)!;
    // Half of a batch landed in the zeros past the log before the crash.
    buf.set(buf.subarray(lastStart, lastStart + ((lastEnd - lastStart) >> 1)), end);
    await writeFile(path, buf);
    const torn = await createFsStore(dir);
    expect(torn.opened.damage).toEqual([]);
    expect(torn.opened.truncated).toEqual({ segment: path, offset: end, bytes: buf.length - end });
    expect(await contents(torn)).toEqual(new Map([0, 1, 2].map((i) => [`k/${i}`, Buffer.from(fill(300, i + 1)).toString("hex")])));
    await torn.put("after", fill(5, 9));
    await torn.close();
    const again = await createFsStore(dir);
    expect(again.opened).toMatchObject({ damage: [], truncated: undefined });
    expect(await again.get("after")).toEqual(fill(5, 9));
    await again.close();
  });

  test("rolling cuts the full segment back to its log: only the newest segment holds zeros, and every segment reopens clean", async () => {
    const store = await createFsStore(dir, { segmentBytes: 4096, preallocateBytes: 2048, compactBelow: 0 });
    for (let i = 0; i < 40; i++) await store.put(`k/${i}`, fill(400, i));
    await store.close();
    const paths = await segmentPaths(dir);
    expect(paths.length).toBeGreaterThan(3);
    for (const path of paths.slice(0, -1)) {
      const buf = await readFile(path);
      expect({ path, length: buf.length }).toEqual({ path, length: logBytes(buf).length });
    }
    const reopened = await createFsStore(dir);
    expect(reopened.opened).toMatchObject({ damage: [], truncated: undefined });
    expect(await reopened.list("")).toHaveLength(40);
    expect(await reopened.get("k/0")).toEqual(fill(400, 0));
    expect(await reopened.get("k/39")).toEqual(fill(400, 39));
    await reopened.close();
  });

  test("a segment holding more zeros than a smaller segmentBytes (reopened with it) is cut back when it rolls, and reopens clean", async () => {
    const first = await createFsStore(dir);
    await first.put("k/first", fill(100, 1));
    await first.close();
    expect(await fileSize()).toBeGreaterThan(PREALLOC_CHUNK_BYTES);
    const small = await createFsStore(dir, { segmentBytes: 4096, preallocateBytes: 2048 });
    for (let i = 0; i < 12; i++) await small.put(`k/${i}`, fill(400, i));
    await small.close();
    const paths = await segmentPaths(dir);
    expect(paths.length).toBeGreaterThan(1);
    const old = await readFile(paths[0]!);
    expect(old.length).toBe(logBytes(old).length);
    const reopened = await createFsStore(dir);
    expect(reopened.opened).toMatchObject({ damage: [], truncated: undefined });
    expect(await reopened.list("")).toHaveLength(13);
    await reopened.close();
  });

  test("zeroing starts past every flush in flight, so zeros never land on bytes a flush wrote", async () => {
    const io = new TestIo(); // without O_DSYNC: each flush is a write, then a datasync (held here)
    const store = await openFsStore(dir, { preallocateBytes: 4096 }, io);
    await store.put("first", fill(10, 9)); // the segment exists, with a chunk zeroed past this
    await fsStoreSettled(store);
    const held = io.hold("datasync");
    const a = store.put("a", fill(2100, 1)); // its commit leaves less than half a chunk zeroed
    await held.reached;
    const writes = io.counts.writev;
    const b = store.put("b", fill(3000, 2)); // in flight meanwhile, and reaching past the zeroed chunk
    while (io.counts.writev === writes) await turn();
    const zerosBefore = io.counts.zero;
    held.release();
    await Promise.all([a, b]);
    expect(io.counts.zero).toBe(zerosBefore + 1);
    expect(await store.get("b")).toEqual(fill(3000, 2));
    await store.close();
    const reopened = await createFsStore(dir);
    expect(reopened.opened).toMatchObject({ damage: [], truncated: undefined });
    expect(await reopened.get("a")).toEqual(fill(2100, 1));
    expect(await reopened.get("b")).toEqual(fill(3000, 2));
    await reopened.close();
  });

  test("zeroing that fails (a full disk) fails no operation; flushes then append, and the log reopens clean", async () => {
    const io = new TestIo({ dsync: true });
    io.fail("zero", "ENOSPC", 100);
    const store = await openFsStore(dir, { preallocateBytes: 4096 }, io);
    for (let i = 0; i < 5; i++) await store.put(`k/${i}`, fill(1000, i));
    const size = await fileSize();
    await store.put("last", fill(1000, 9));
    expect(await fileSize()).toBeGreaterThan(size); // no zeroing in this segment: it grows
    expect(io.counts.zero).toBe(1); // tried once, then not again for this segment
    await store.close();
    const reopened = await createFsStore(dir);
    expect(reopened.opened).toMatchObject({ damage: [], truncated: undefined });
    expect(await reopened.list("")).toEqual(["k/0", "k/1", "k/2", "k/3", "k/4", "last"]);
    expect(await reopened.get("last")).toEqual(fill(1000, 9));
    await reopened.close();
  });

  test("preallocateBytes: 0 keeps the file exactly as long as its log", async () => {
    const store = await createFsStore(dir, { preallocateBytes: 0 });
    for (let i = 0; i < 10; i++) await store.put(`k/${i}`, fill(100, i));
    await store.close();
    const buf = await readFile((await segmentPaths(dir))[0]!);
    expect(buf.length).toBe(logBytes(buf).length);
    expect(batches(buf)).toHaveLength(10);
  });

  test("preallocateBytes must be an integer from 0 to 2^30", async () => {
    for (const bad of [-1, 0.5, 2 ** 31, Number.NaN]) {
      await expect(createFsStore(dir, { preallocateBytes: bad })).rejects.toThrow(StorageError);
      await expect(createFsStore(dir, { preallocateBytes: bad })).rejects.toThrow(/preallocateBytes must be an integer from 0 to 2\^30/);
    }
  });
});
