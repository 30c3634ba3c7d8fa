import { readFile, writeFile } from "node:fs/promises";
import { StorageError, createFsStore } from "../../src/storage";
import { SEGMENT_HEADER_BYTES, crc32 } from "../../src/storage/fs-log-format";
import { fsStoreSettled, fsStoreStats, openFsStore } from "../../src/storage/fs-store";
import { TestIo, batches, contents, logBytes, newDir, removeDir, segmentPaths, turn } from "./fs-test-io";

// Pipelined flushes: several batches written at once, each after the one before, acknowledged in
// order; a failure fails everything after it; a crash with batches in flight reads as a torn tail.

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

/** Sets the durable end recorded in the batch header at `p` (its header checksum redone). */
function setDurableEnd(buf: Buffer, p: number, durableEnd: number): void {
  buf.writeUInt32LE(durableEnd, p + 20);
  buf.writeUInt32LE(crc32(buf.subarray(p + 8, p + 24)), p + 4);
}

describe("fs store: flushes in flight", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await newDir("fs-flights");
  });

  afterEach(async () => {
    await removeDir(dir);
  });

  test("a flush starts while another is held at its sync; the later one resolves only after the earlier, and both read back", async () => {
    const io = new TestIo();
    const store = await openFsStore(dir, {}, io);
    await store.put("warm/up", bytes(0)); // creates the first segment
    const order: string[] = [];
    const sync = io.hold("datasync");
    const a = store.put("a", bytes(1)).then(() => order.push("a"));
    await sync.reached;
    const writes = io.counts.writev;
    const syncs = io.counts.datasync; // a's is held before it counts
    const b = store.put("b", bytes(2)).then(() => order.push("b"));
    // b's batch is written and synced while a's sync is still held...
    while (io.counts.datasync === syncs) await turn();
    expect(io.counts.writev).toBe(writes + 1);
    for (let i = 0; i < 5; i++) await turn();
    // ...but neither resolves nor shows before a's batch is durable.
    expect(order).toEqual([]);
    expect(await store.get("b")).toBeUndefined();
    sync.release();
    await Promise.all([a, b]);
    expect(order).toEqual(["a", "b"]);
    expect(await contents(store)).toEqual(new Map([["a", "01"], ["b", "02"], ["warm/up", "00"]]));
    await store.close();
    // The second batch recorded that it was written while the first was in flight.
    const [, first, second] = batches(await readFile((await segmentPaths(dir))[0]!));
    expect(first![2]).toBe(first![0]);
    expect(second![2]).toBe(first![0]);
    const reopened = await createFsStore(dir);
    expect(await contents(reopened)).toEqual(new Map([["a", "01"], ["b", "02"], ["warm/up", "00"]]));
    await reopened.close();
  });

  test("with flushesInFlight 1, a put waits for the flush in flight", async () => {
    const io = new TestIo();
    const store = await openFsStore(dir, { flushesInFlight: 1 }, io);
    await store.put("warm/up", bytes(0));
    const sync = io.hold("datasync");
    const a = store.put("a", bytes(1));
    await sync.reached;
    const writes = io.counts.writev;
    const b = store.put("b", bytes(2));
    for (let i = 0; i < 5; i++) await turn();
    expect(io.counts.writev).toBe(writes);
    sync.release();
    await Promise.all([a, b]);
    expect(io.counts.writev).toBe(writes + 1);
    await store.close();
  });

  test("a failed flush fails the flushes in flight after it and the ops queued then; the file is cut back and later ops work", async () => {
    const io = new TestIo();
    const store = await openFsStore(dir, { flushesInFlight: 2 }, io);
    await store.put("old", bytes(1));
    const size = logBytes(await readFile((await segmentPaths(dir))[0]!)).length;
    const sync = io.hold("datasync");
    const a = store.put("a", bytes(2)).then(
      () => "resolved",
      (e: unknown) => e,
    );
    await sync.reached;
    const b = store.put("b", bytes(3)).then(
      () => "resolved",
      (e: unknown) => e,
    );
    while (io.counts.writev < 3) await turn(); // b's batch is written
    await turn();
    const c = store.put("c", bytes(4)).then(
      () => "resolved",
      (e: unknown) => e,
    ); // two in flight: c waits in the queue
    await turn();
    io.fail("datasync", "EIO");
    sync.release(); // a's sync fails
    const [ea, eb, ec] = await Promise.all([a, b, c]);
    for (const e of [ea, eb, ec]) expect(e).toBeInstanceOf(StorageError);
    expect((ea as StorageError).message).toMatch(/cannot write "a" at .*00000001\.seg \(EIO\)/);
    expect((eb as StorageError).message).toMatch(/cannot write "b" at .*\(EIO\)/);
    expect((ec as StorageError).key).toBe("c");
    await fsStoreSettled(store);
    // Nothing of them shows, and b's batch, durable after the hole, is cut off with a's.
    expect(await contents(store)).toEqual(new Map([["old", "01"]]));
    expect((await readFile((await segmentPaths(dir))[0]!)).length).toBe(size);
    await store.put("later", bytes(5));
    expect(await contents(store)).toEqual(new Map([["later", "05"], ["old", "01"]]));
    await store.close();
    const reopened = await createFsStore(dir);
    expect(reopened.opened).toMatchObject({ damage: [], truncated: undefined });
    expect(await contents(reopened)).toEqual(new Map([["later", "05"], ["old", "01"]]));
    await reopened.close();
  });

  test("many concurrent writers: flushes overlap, every put lands, in order per key", async () => {
    // Through the thread pool: a flush written inline is never in flight with another.
    const options = { segmentBytes: 4096, compactBelow: 0, inlineWrites: false };
    const store = await createFsStore(dir, options);
    const last = new Map<string, number>();
    await Promise.all(
      Array.from({ length: 8 }, async (_, lane) => {
        for (let i = 0; i < 40; i++) {
          const key = `lane/${lane}/${i % 3}`;
          last.set(key, i);
          await store.put(key, new Uint8Array(100).fill(i));
          // Lanes out of step, so that puts arrive while flushes are in flight.
          for (let t = 0; t < ((lane + i) % 4); t++) await turn();
        }
      }),
    );
    const stats = fsStoreStats(store);
    expect(stats.segments).toBeGreaterThan(4); // rolled between flushes in flight
    expect(stats.overlapped).toBeGreaterThan(10);
    const expected = new Map([...last].map(([k, v]) => [k, Buffer.from(new Uint8Array(100).fill(v)).toString("hex")]));
    expect(await contents(store)).toEqual(expected);
    await store.close();
    const reopened = await createFsStore(dir, options);
    expect(reopened.opened.damage).toEqual([]);
    expect(await contents(reopened)).toEqual(expected);
    await reopened.close();
  });

  test("bad options are refused", async () => {
    await expect(createFsStore(dir, { flushesInFlight: 0 })).rejects.toThrow(/flushesInFlight must be an integer from 1 to 64, got 0/);
    await expect(createFsStore(dir, { flushesInFlight: 1.5 })).rejects.toThrow(StorageError);
  });
});

describe("fs store recovery: batches that were in flight", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await newDir("fs-flights-recovery");
  });

  afterEach(async () => {
    await removeDir(dir);
  });

  /** A segment of four batches (keys k0..k3), written one at a time, and its path. */
  async function fourBatches(): Promise<{ path: string; buf: Buffer; all: [number, number, number][] }> {
    const store = await createFsStore(dir);
    for (let i = 0; i < 4; i++) await store.put(`k${i}`, new Uint8Array(30).fill(i));
    await store.close();
    const path = (await segmentPaths(dir))[0]!;
    const buf = await readFile(path);
    return { path, buf, all: batches(buf) };
  }

  test.each([
    ["torn (a bad checksum)", (buf: Buffer, start: number, end: number) => void (buf[end - 3]! ^= 0x20)],
    ["never written (zeros: the later batches landed first)", (buf: Buffer, start: number, end: number) => void buf.fill(0, start, end)],
  ])("a batch %s followed by batches written while it was in flight is a torn tail: all of them are cut", async (_, damage) => {
    const { path, buf, all } = await fourBatches();
    const [start, end] = all[1]!;
    // k2 and k3 were launched while k1's batch was in flight: their durable end is k1's start.
    setDurableEnd(buf, all[2]![0], start);
    setDurableEnd(buf, all[3]![0], start);
    damage(buf, start, end);
    await writeFile(path, buf);
    const store = await createFsStore(dir);
    expect(store.opened.damage).toEqual([]);
    expect(store.opened.truncated).toEqual({ segment: path, offset: start, bytes: buf.length - start });
    expect([...(await contents(store)).keys()]).toEqual(["k0"]);
    await store.put("after", bytes(1));
    await store.close();
    const again = await createFsStore(dir);
    expect([...(await contents(again)).keys()]).toEqual(["after", "k0"]);
    await again.close();
  });

  test("a bad batch followed by one written once it was durable is damage, reported, and nothing is cut", async () => {
    const { path, buf, all } = await fourBatches();
    const [start, end] = all[1]!;
    setDurableEnd(buf, all[2]![0], start); // in flight with k1...
    // ...but k3 was written after k1 was durable (its durable end is its own start, as written)
    buf[end - 3]! ^= 0x20;
    await writeFile(path, buf);
    const store = await createFsStore(dir);
    expect(store.opened.truncated).toBeUndefined();
    expect(store.opened.damage).toMatchObject([{ offset: start, reason: "a batch's checksum does not match", damagedKeys: ["k1"] }]);
    expect(await store.get("k3")).toEqual(new Uint8Array(30).fill(3));
    expect(await store.get("k2")).toEqual(new Uint8Array(30).fill(2));
    await store.close();
    expect((await readFile(path)).length).toBe(buf.length);
  });

  test("a log written before durable ends were recorded (0): a bad batch with a good one after it stays damage", async () => {
    const { path, buf, all } = await fourBatches();
    for (const [start] of all) setDurableEnd(buf, start, 0);
    const [start, end] = all[1]!;
    buf[end - 3]! ^= 0x20;
    await writeFile(path, buf);
    const store = await createFsStore(dir);
    expect(store.opened.truncated).toBeUndefined();
    expect(store.opened.damage).toMatchObject([{ offset: start, damagedKeys: ["k1"] }]);
    expect(await store.get("k3")).toEqual(new Uint8Array(30).fill(3));
    await store.close();
  });

  test("every batch header written records a durable end at or before its own start", async () => {
    const { all } = await fourBatches();
    for (const [start, , durableEnd] of all) {
      expect(durableEnd).toBeGreaterThanOrEqual(SEGMENT_HEADER_BYTES);
      expect(durableEnd).toBeLessThanOrEqual(start);
    }
    expect(all[0]![0]).toBe(SEGMENT_HEADER_BYTES);
  });
});
