import { readFile } from "node:fs/promises";
import { StorageError, createFsStore } from "../../src/storage";
import { INLINE_BACKOFF_MS, INLINE_MAX_BYTES, INLINE_SHARE, INLINE_STALL_MS, INLINE_WINDOW_MS, InlinePolicy } from "../../src/storage/fs-log-inline";
import { fsStoreSettled, fsStoreStats, openFsStore } from "../../src/storage/fs-store";
import { TestIo, contents, logBytes, newDir, removeDir, segmentPaths, turn } from "./fs-test-io";

// Small flushes alone in flight are written inline, on the event loop's thread (fs-log-inline.ts):
// the same durability, the same failure handling, and back to the thread pool when the store is
// busy or the disk stalls.

const fill = (length: number, byte: number): Uint8Array => new Uint8Array(length).fill(byte);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

describe("fs store: inline writes", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await newDir("fs-inline");
  });

  afterEach(async () => {
    await removeDir(dir);
  });

  test("a small flush alone in flight is written inline; a large one, and one launched while another is in flight, go through the pool, acknowledged in order", async () => {
    const io = new TestIo({ dsync: true });
    const store = await openFsStore(dir, {}, io);
    await store.put("small", fill(100, 1)); // rolls first (exclusive: through the pool)
    await store.put("small", fill(100, 2));
    expect(fsStoreStats(store).inline).toBe(1);
    expect(io.inlineWrites).toBe(1);

    const has = (buffers: readonly Buffer[], text: string): boolean => Buffer.concat(buffers).includes(text);
    const held = io.hold("writev", "", (buffers) => has(buffers, "big"));
    const order: string[] = [];
    const big = store.put("big", fill(INLINE_MAX_BYTES + 1, 3)).then(() => void order.push("big"));
    await held.reached;
    const next = store.put("next", fill(10, 4)).then(() => void order.push("next"));
    // Launched while the big one is in flight: written through the pool, not acknowledged before it.
    while (!io.writes.some((buffers) => has(buffers, "next"))) await turn();
    for (let i = 0; i < 10; i++) await turn();
    expect(order).toEqual([]);
    held.release();
    await Promise.all([big, next]);
    expect(order).toEqual(["big", "next"]);
    expect(fsStoreStats(store).inline).toBe(1);
    await store.close();
    const reopened = await createFsStore(dir);
    expect(reopened.opened).toMatchObject({ damage: [], truncated: undefined });
    expect(await contents(reopened)).toEqual(
      new Map([
        ["big", hex(fill(INLINE_MAX_BYTES + 1, 3))],
        ["next", hex(fill(10, 4))],
        ["small", hex(fill(100, 2))],
      ]),
    );
    await reopened.close();
  });

  test("an inline write that fails rejects every op of its flush, shows none of them, cuts the file back, and later ops work", async () => {
    const io = new TestIo({ dsync: true });
    const store = await openFsStore(dir, {}, io);
    await store.put("old", fill(10, 1));
    await fsStoreSettled(store);
    const path = (await segmentPaths(dir))[0]!;
    const log = logBytes(await readFile(path));
    io.fail("writev", "ENOSPC");
    const inlineBefore = io.inlineWrites;
    const errors = await Promise.all([store.put("a", fill(10, 2)), store.put("old", fill(10, 3)), store.delete("old")].map((p) => p.then(() => undefined, (e: unknown) => e)));
    expect(io.inlineWrites).toBe(inlineBefore + 1);
    for (const error of errors) expect(error).toBeInstanceOf(StorageError);
    expect((errors[0] as StorageError).message).toMatch(/cannot write "a" at .*00000001\.seg \(ENOSPC\); free disk space, then retry/);
    await fsStoreSettled(store);
    expect(await contents(store)).toEqual(new Map([["old", hex(fill(10, 1))]]));
    expect(logBytes(await readFile(path))).toEqual(log);
    await store.put("later", fill(10, 4));
    await store.close();
    const reopened = await createFsStore(dir);
    expect(reopened.opened).toMatchObject({ damage: [], truncated: undefined });
    expect(await contents(reopened)).toEqual(new Map([["later", hex(fill(10, 4))], ["old", hex(fill(10, 1))]]));
    await reopened.close();
  });

  test("after an inline write that stalls, writes go through the pool", async () => {
    const io = new TestIo({ dsync: true });
    const store = await openFsStore(dir, {}, io);
    await store.put("k", fill(10, 1));
    io.inlineDelayMs = INLINE_STALL_MS + 1;
    await store.put("k", fill(10, 2)); // inline, and slow
    io.inlineDelayMs = 0;
    const inline = fsStoreStats(store).inline;
    expect(inline).toBe(1);
    for (let i = 0; i < 5; i++) await store.put("k", fill(10, 3 + i));
    expect(fsStoreStats(store).inline).toBe(inline);
    expect(await store.get("k")).toEqual(fill(10, 7));
    await store.close();
  });

  test("inlineWrites: false writes every flush through the pool", async () => {
    const io = new TestIo({ dsync: true });
    const store = await openFsStore(dir, { inlineWrites: false }, io);
    for (let i = 0; i < 5; i++) await store.put(`k/${i}`, fill(10, i));
    expect({ inline: fsStoreStats(store).inline, inlineWrites: io.inlineWrites }).toEqual({ inline: 0, inlineWrites: 0 });
    await store.close();
  });

  test("the policy: small batches only, at most its share of each window, none for a while after a stall", () => {
    let now = 1000;
    const policy = new InlinePolicy(() => now);
    expect(policy.allows(INLINE_MAX_BYTES + 1)).toBe(false);
    expect(policy.allows(INLINE_MAX_BYTES)).toBe(true);
    // Writes of 1 ms fill the window's share, then the next window starts afresh.
    let allowed = 0;
    while (policy.allows(100)) {
      policy.spent(1);
      allowed++;
      now += 1;
    }
    expect(allowed).toBe(INLINE_WINDOW_MS * INLINE_SHARE);
    now += INLINE_WINDOW_MS;
    expect(policy.allows(100)).toBe(true);
    policy.spent(INLINE_STALL_MS + 0.5);
    expect(policy.allows(100)).toBe(false);
    now += INLINE_BACKOFF_MS - 1;
    expect(policy.allows(100)).toBe(false);
    now += 2;
    expect(policy.allows(100)).toBe(true);
  });
});
