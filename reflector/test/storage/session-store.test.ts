import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageType, type StreamEntry } from "@lockstep/protocol";
import { SessionStore, StorageError, createFsStore, createMemoryStore, type BlobStore, type StoredSessionMeta } from "../../src/storage";
import { fsStoreStats } from "../../src/storage/fs-store";

const DAY = 24 * 60 * 60 * 1000;

/** `store` seen through a BlobStore without deleteMany, and (`ordered` false) without orderedWrites: the fallbacks of SessionStore. */
function without(store: BlobStore, ordered: boolean): BlobStore {
  return {
    get: (key) => store.get(key),
    put: (key, value) => store.put(key, value),
    delete: (key) => store.delete(key),
    list: (prefix) => store.list(prefix),
    close: () => store.close(),
    ...(ordered ? { orderedWrites: true } : {}),
  };
}

const adapters: [string, () => Promise<{ store: BlobStore; cleanup(): Promise<void> }>][] = [
  ["memory", async () => ({ store: createMemoryStore(), cleanup: async () => undefined })],
  ["memory without deleteMany", async () => ({ store: without(createMemoryStore(), true), cleanup: async () => undefined })],
  ["memory without deleteMany or orderedWrites", async () => ({ store: without(createMemoryStore(), false), cleanup: async () => undefined })],
  [
    "fs",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "lockstep-session-store-"));
      return { store: await createFsStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  ],
];

const metaOf = (sessionId: string, createdAt = 1_000): StoredSessionMeta => ({
  sessionId,
  persistentId: `p-${sessionId}`,
  tps: 20,
  verifier: new Uint8Array([1, 2, 3, 4]),
  check: new Uint8Array([5, 6, 7]),
  createdAt,
});

/** Entries `from..to` cycling through all four kinds; time is 10 ms per seq. */
function entries(from: number, to: number): StreamEntry[] {
  const out: StreamEntry[] = [];
  for (let seq = from; seq <= to; seq++) {
    const time = seq * 10;
    switch (seq % 4) {
      case 0:
        out.push({ type: MessageType.Relay, seq, time, payload: new Uint8Array([seq & 0xff, 0, 255]) });
        break;
      case 1:
        out.push({ type: MessageType.ViewJoin, seq, time, viewId: `v${seq}`, viewData: new Uint8Array([seq & 0xff]) });
        break;
      case 2:
        out.push({ type: MessageType.ViewExit, seq, time, viewId: `v${seq - 1}` });
        break;
      default:
        out.push({ type: MessageType.SnapshotRequest, seq, time });
    }
  }
  return out;
}

const seg = (id: string, first: number): string => `sessions/${id}/log/${String(first).padStart(16, "0")}`;

async function errorOf(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  return error as StorageError;
}

describe.each(adapters)("SessionStore on %s", (_name, make) => {
  let store: BlobStore;
  let cleanup: () => Promise<void>;
  let now: number;
  let sessions: SessionStore;

  beforeEach(async () => {
    ({ store, cleanup } = await make());
    now = 100 * DAY;
    sessions = new SessionStore(store, { now: () => now });
  });

  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  /** A second SessionStore on the same blobs: what a restarted reflector sees. */
  const restarted = (): SessionStore => new SessionStore(store, { now: () => now });

  test("create then load returns the meta of a new, empty session", async () => {
    expect(await sessions.load("S")).toBeUndefined();
    await sessions.create(metaOf("S"));
    for (const s of [sessions, restarted()]) {
      expect(await s.load("S")).toEqual({
        meta: metaOf("S"),
        snapshot: undefined,
        entries: [],
        lastSeq: 0,
        lastTime: 0,
        timeWatermark: 0,
        liveViews: [],
        persisted: new Uint8Array(0),
      });
    }
    expect(await sessions.sessionIds()).toEqual(["S"]);
  });

  test("creating a session twice fails with StorageError naming the key", async () => {
    await sessions.create(metaOf("S"));
    const error = await errorOf(restarted().create(metaOf("S")));
    expect(error.key).toBe("sessions/S/meta");
    expect(error.message).toMatch(/already exists; load\(\) it/);
  });

  test("appended batches load back contiguous, one segment per batch", async () => {
    await sessions.create(metaOf("S"));
    const batches = [entries(1, 3), entries(4, 4), entries(5, 11)];
    for (const batch of batches) await sessions.appendEntries("S", batch);
    await sessions.appendEntries("S", []);
    expect(await store.list("sessions/S/log/")).toEqual([seg("S", 1), seg("S", 4), seg("S", 5)]);
    for (const s of [sessions, restarted()]) {
      const loaded = await s.load("S");
      expect(loaded?.entries).toEqual(entries(1, 11));
      expect(loaded?.lastSeq).toBe(11);
      expect(loaded?.lastTime).toBe(110);
    }
  });

  test("a restarted store continues appending where the log ends, with or without load()", async () => {
    await sessions.create(metaOf("S"));
    await sessions.appendEntries("S", entries(1, 5));
    const loaded = restarted();
    expect((await loaded.load("S"))?.lastSeq).toBe(5);
    await loaded.appendEntries("S", entries(6, 7));
    const blind = restarted();
    await blind.appendEntries("S", entries(8, 9));
    expect((await restarted().load("S"))?.entries).toEqual(entries(1, 9));
  });

  test("appends that break the log's order are refused", async () => {
    await sessions.create(metaOf("S"));
    await sessions.appendEntries("S", entries(1, 3));
    expect((await errorOf(sessions.appendEntries("S", entries(5, 6)))).message).toMatch(/has seq 5, expected 4/);
    expect((await errorOf(sessions.appendEntries("S", entries(3, 4)))).message).toMatch(/has seq 3, expected 4/);
    const [first, second] = entries(4, 5);
    expect((await errorOf(sessions.appendEntries("S", [first!, { ...second!, seq: 7 }]))).message).toMatch(/entry 1 has seq 7/);
    const backwards = await errorOf(sessions.appendEntries("S", [{ type: MessageType.SnapshotRequest, seq: 4, time: 5 }]));
    expect(backwards.message).toMatch(/never decrease/);
    expect((await errorOf(sessions.appendEntries("nobody", entries(1, 1)))).message).toMatch(/not stored; create\(\) it first/);
    await sessions.appendEntries("S", entries(4, 4));
    expect((await sessions.load("S"))?.entries).toEqual(entries(1, 4));
  });

  test("a snapshot trims covered segments and load returns only entries after it", async () => {
    await sessions.create(metaOf("S"));
    for (const [from, to] of [[1, 3], [4, 6], [7, 9]] as const) await sessions.appendEntries("S", entries(from, to));
    const bytes = new Uint8Array([42, 43, 44]);
    await sessions.putSnapshot("S", { seq: 5, time: 50, bytes });
    expect(await store.list("sessions/S/log/")).toEqual([seg("S", 4), seg("S", 7)]);
    let loaded = await restarted().load("S");
    expect(loaded?.snapshot).toEqual({ seq: 5, time: 50, views: [], bytes });
    expect(loaded?.entries).toEqual(entries(6, 9));

    await sessions.putSnapshot("S", { seq: 9, time: 90, bytes: new Uint8Array([7]) });
    expect(await store.list("sessions/S/log/")).toEqual([]);
    loaded = await restarted().load("S");
    expect(loaded).toMatchObject({ entries: [], lastSeq: 9, lastTime: 90, snapshot: { seq: 9, time: 90 } });

    await sessions.appendEntries("S", entries(10, 12));
    expect((await restarted().load("S"))?.entries).toEqual(entries(10, 12));
  });

  test("a snapshot racing an append trims only what it covers", async () => {
    await sessions.create(metaOf("S"));
    await sessions.appendEntries("S", entries(1, 3));
    await sessions.appendEntries("S", entries(4, 6));
    await Promise.all([sessions.putSnapshot("S", { seq: 6, time: 60, bytes: new Uint8Array([6]) }), sessions.appendEntries("S", entries(7, 9))]);
    expect(await store.list("sessions/S/log/")).toEqual([seg("S", 7)]);
    expect((await restarted().load("S"))?.entries).toEqual(entries(7, 9));
  });

  test("each append costs exactly one put and no reads once the session is known", async () => {
    const calls: string[] = [];
    const counting: BlobStore = {
      get: (key) => (calls.push(`get ${key}`), store.get(key)),
      put: (key, value) => (calls.push(`put ${key}`), store.put(key, value)),
      delete: (key) => (calls.push(`delete ${key}`), store.delete(key)),
      list: (prefix) => (calls.push(`list ${prefix}`), store.list(prefix)),
      close: () => store.close(),
    };
    const counted = new SessionStore(counting, { now: () => now });
    await counted.create(metaOf("S"));
    calls.length = 0;
    await counted.appendEntries("S", entries(1, 2));
    await counted.appendEntries("S", entries(3, 3));
    expect(calls).toEqual([`put ${seg("S", 1)}`, `put ${seg("S", 3)}`]);
  });

  test("a snapshot's trim lists nothing: the covered segments go in one deleteMany, or a delete each without it", async () => {
    const calls: string[] = [];
    const counting: BlobStore = {
      ...without(store, store.orderedWrites === true),
      list: (prefix) => (calls.push(`list ${prefix}`), store.list(prefix)),
      put: (key, value) => (calls.push(`put ${key}`), store.put(key, value)),
      delete: (key) => (calls.push(`delete ${key}`), store.delete(key)),
      ...(store.deleteMany ? { deleteMany: (keys: readonly string[]) => (calls.push(`deleteMany ${keys.join(" ")}`), store.deleteMany!(keys)) } : {}),
    };
    const trimmed = [seg("S", 1), seg("S", 3), seg("S", 5)];
    const expected = store.deleteMany ? [`deleteMany ${trimmed.join(" ")}`] : trimmed.map((key) => `delete ${key}`);
    const counted = new SessionStore(counting, { now: () => now });
    await counted.create(metaOf("S"));
    for (const [from, to] of [[1, 2], [3, 4], [5, 6], [7, 8]] as const) await counted.appendEntries("S", entries(from, to));
    calls.length = 0;
    await counted.putSnapshot("S", { seq: 6, time: 60, bytes: new Uint8Array([1]) });
    expect(calls).toEqual([`put sessions/S/snapshot`, ...expected]);
    // A restarted store knows the segments from loading the session: its trims list nothing either.
    const reloaded = new SessionStore(counting, { now: () => now });
    await reloaded.load("S");
    for (const [from, to] of [[9, 10], [11, 12]] as const) await reloaded.appendEntries("S", entries(from, to));
    calls.length = 0;
    await reloaded.putSnapshot("S", { seq: 10, time: 100, bytes: new Uint8Array([2]) });
    const second = [seg("S", 7), seg("S", 9)];
    expect(calls).toEqual([`put sessions/S/snapshot`, ...(store.deleteMany ? [`deleteMany ${second.join(" ")}`] : second.map((key) => `delete ${key}`))]);
    expect(await store.list("sessions/S/log/")).toEqual([seg("S", 11)]);
    expect((await new SessionStore(store).load("S"))?.entries).toEqual(entries(11, 12));
  });

  test("forget drops the cache of a session: the next append reads it again, and its trims list nothing after that", async () => {
    const calls: string[] = [];
    const counting: BlobStore = {
      ...without(store, store.orderedWrites === true),
      get: (key) => (calls.push(`get ${key}`), store.get(key)),
      list: (prefix) => (calls.push(`list ${prefix}`), store.list(prefix)),
      ...(store.deleteMany ? { deleteMany: (keys: readonly string[]) => (calls.push(`deleteMany ${keys.length}`), store.deleteMany!(keys)) } : {}),
    };
    const counted = new SessionStore(counting, { now: () => now });
    await counted.create(metaOf("S"));
    await counted.appendEntries("S", entries(1, 2));
    counted.forget("S");
    counted.forget("never-served"); // nothing cached: nothing to do
    calls.length = 0;
    await counted.appendEntries("S", entries(3, 4));
    expect(calls).toContain(`get sessions/S/meta`);
    expect(calls).toContain(`list sessions/S/log/`);
    calls.length = 0;
    await counted.appendEntries("S", entries(5, 6));
    await counted.putSnapshot("S", { seq: 4, time: 40, bytes: new Uint8Array([1]) });
    expect(calls.filter((call) => call.startsWith("list"))).toEqual([]);
    expect(await store.list("sessions/S/log/")).toEqual([seg("S", 5)]);
    expect((await restarted().load("S"))?.entries).toEqual(entries(5, 6));
  });

  test("forget with an append under way keeps the tail but not the segment list: the next trim lists, and trims right", async () => {
    const lists: string[] = [];
    const counting: BlobStore = { ...without(store, store.orderedWrites === true), list: (prefix) => (lists.push(prefix), store.list(prefix)) };
    if (store.deleteMany) counting.deleteMany = (keys) => store.deleteMany!(keys);
    const counted = new SessionStore(counting, { now: () => now });
    await counted.create(metaOf("S"));
    await counted.appendEntries("S", entries(1, 2));
    const appending = counted.appendEntries("S", entries(3, 4));
    counted.forget("S");
    await appending;
    await counted.appendEntries("S", entries(5, 6));
    lists.length = 0;
    await counted.putSnapshot("S", { seq: 4, time: 40, bytes: new Uint8Array([1]) });
    expect(lists).toEqual(["sessions/S/log/"]);
    expect(await store.list("sessions/S/log/")).toEqual([seg("S", 5)]);
    expect((await restarted().load("S"))?.entries).toEqual(entries(5, 6));
  });

  test("on an ordered store, forget while a write is still landing (past the append queue's turn) keeps the tail", async () => {
    if (store.orderedWrites !== true) return; // elsewhere an append's write stays inside the queue's turn
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let hold = false;
    const gated: BlobStore = {
      ...without(store, true),
      put: (key, value) => (hold && key.includes("/log/") ? gate.then(() => store.put(key, value)) : store.put(key, value)),
    };
    const counted = new SessionStore(gated, { now: () => now });
    await counted.create(metaOf("S"));
    await counted.appendEntries("S", entries(1, 2));
    hold = true;
    const landing = counted.appendEntries("S", entries(3, 4));
    await new Promise((resolve) => setImmediate(resolve)); // the queue's turn is over; the put waits at the gate
    counted.forget("S");
    // Had the tail gone, this append would read the log without 3-4 and be refused as not continuing it.
    const next = counted.appendEntries("S", entries(5, 6));
    next.catch(() => undefined); // awaited below
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve)); // a read of the log would be done by now
    release();
    await Promise.all([landing, next]);
    expect((await restarted().load("S"))?.entries).toEqual(entries(1, 6));
  });

  test("snapshots ahead of the log or older than the stored one are refused", async () => {
    await sessions.create(metaOf("S"));
    await sessions.appendEntries("S", entries(1, 6));
    expect((await errorOf(sessions.putSnapshot("S", { seq: 7, time: 70, bytes: new Uint8Array() }))).message).toMatch(/ahead of the stored log/);
    await sessions.putSnapshot("S", { seq: 4, time: 40, bytes: new Uint8Array() });
    expect((await errorOf(restarted().putSnapshot("S", { seq: 3, time: 30, bytes: new Uint8Array() }))).message).toMatch(/older than the stored one/);
  });

  test("segments a crash left behind a snapshot are skipped on load and removed by the next snapshot", async () => {
    await sessions.create(metaOf("S"));
    await sessions.appendEntries("S", entries(1, 3));
    await sessions.appendEntries("S", entries(4, 6));
    await sessions.putSnapshot("S", { seq: 4, time: 40, bytes: new Uint8Array([1]) });
    // As if the trim had been interrupted before deleting segment 1 (and it held garbage).
    await store.put(seg("S", 1), new Uint8Array([0xde, 0xad]));
    expect((await restarted().load("S"))?.entries).toEqual(entries(5, 6));
    await restarted().putSnapshot("S", { seq: 5, time: 50, bytes: new Uint8Array([2]) });
    expect(await store.list("sessions/S/log/")).toEqual([seg("S", 4)]);
  });

  test("a truncated last segment is cut back to its readable entries, not refused", async () => {
    await sessions.create(metaOf("S"));
    await sessions.appendEntries("S", entries(1, 2));
    await sessions.appendEntries("S", entries(3, 4));
    const bytes = await store.get(seg("S", 3));
    await store.put(seg("S", 3), bytes!.subarray(0, bytes!.length - 2));
    const again = restarted();
    const loaded = await again.load("S");
    expect(loaded?.entries).toEqual(entries(1, 3));
    expect(loaded?.recovered).toMatchObject({ key: seg("S", 3), firstLostSeq: 4, rewritten: seg("S", 3) });
    // The repair changed the segments: the next snapshot's trim reads them from the store.
    await again.appendEntries("S", entries(4, 5));
    await again.putSnapshot("S", { seq: 4, time: 40, bytes: new Uint8Array([1]) });
    expect(await store.list("sessions/S/log/")).toEqual([seg("S", 4)]);
    expect((await restarted().load("S"))?.entries).toEqual(entries(5, 5));
  });

  test("a last segment whose entries disagree with its key is dropped", async () => {
    await sessions.create(metaOf("S"));
    await sessions.appendEntries("S", entries(1, 2));
    await store.put(seg("S", 3), (await store.get(seg("S", 1)))!);
    const loaded = await restarted().load("S");
    expect(loaded?.entries).toEqual(entries(1, 2));
    expect(loaded?.recovered).toMatchObject({ key: seg("S", 3), firstLostSeq: 3, lostSegments: [seg("S", 3)] });
    expect(loaded?.recovered?.reason).toMatch(/entry 0 has seq 1, expected 3/);
  });

  test("a gap in the log fails load with a StorageError naming the segment after it", async () => {
    await sessions.create(metaOf("S"));
    for (const [from, to] of [[1, 2], [3, 4], [5, 6]] as const) await sessions.appendEntries("S", entries(from, to));
    await store.delete(seg("S", 3));
    const error = await errorOf(restarted().load("S"));
    expect(error.key).toBe(seg("S", 5));
    expect(error.message).toMatch(/jumps from seq 2 to 5/);
    await store.delete(seg("S", 1));
    expect((await errorOf(restarted().load("S"))).message).toMatch(/jumps from seq 0 to 5/);
  });

  test("corrupt meta or snapshot fails load with a StorageError naming the key", async () => {
    await sessions.create(metaOf("S"));
    await sessions.appendEntries("S", entries(1, 2));
    await sessions.putSnapshot("S", { seq: 1, time: 10, bytes: new Uint8Array([1]) });
    await store.put("sessions/S/snapshot", new Uint8Array([0x53, 1, 0x80]));
    expect((await errorOf(restarted().load("S"))).key).toBe("sessions/S/snapshot");
    await store.put("sessions/S/meta", new TextEncoder().encode("{not json"));
    expect((await errorOf(restarted().load("S"))).key).toBe("sessions/S/meta");
  });

  test("retention collects inactive sessions, respects keep, keeps recent ones", async () => {
    for (const id of ["old", "live", "touched"]) await sessions.create(metaOf(id));
    now += 10 * DAY;
    await sessions.touch("touched");
    now += 15 * DAY;
    await sessions.create(metaOf("young"));
    await sessions.appendEntries("old", entries(1, 3));
    await sessions.putSnapshot("old", { seq: 2, time: 20, bytes: new Uint8Array([1]) });
    now += 6 * DAY; // old and live: 31 days idle; touched: 21; young: 6
    expect(await sessions.collectGarbage(new Set(["live"]))).toBe(1);
    expect(await sessions.sessionIds()).toEqual(["live", "touched", "young"]);
    expect(await sessions.load("old")).toBeUndefined();
    expect(await store.list("sessions/old/")).toEqual([]);
    expect(await store.list("activity/old")).toEqual([]);
    now += 30 * DAY;
    expect(await sessions.collectGarbage()).toBe(3);
    expect(await sessions.sessionIds()).toEqual([]);
    expect(await store.list("")).toEqual([]);
  });

  test("retentionMs is configurable and the boundary is exclusive", async () => {
    const short = new SessionStore(store, { now: () => now, retentionMs: 1000 });
    await short.create(metaOf("S"));
    now += 1000;
    expect(await short.collectGarbage()).toBe(0);
    now += 1;
    expect(await short.collectGarbage()).toBe(1);
  });

  test("touch of an unknown session fails", async () => {
    expect((await errorOf(sessions.touch("nobody"))).message).toMatch(/not stored/);
  });

  test("crash leftovers: orphans are hidden and collected, corrupt activity is repaired, create starts clean", async () => {
    await store.put("activity/orphan", new TextEncoder().encode(String(now)));
    await store.put(seg("orphan", 1), new Uint8Array([1]));
    await sessions.create(metaOf("S"));
    await store.put("activity/S", new Uint8Array([0xff]));
    expect(await sessions.sessionIds()).toEqual(["S"]);
    now += 31 * DAY;
    expect(await sessions.collectGarbage()).toBe(1);
    expect(await store.list("sessions/orphan/")).toEqual([]);
    expect(await store.get("activity/S")).toEqual(new TextEncoder().encode(String(now)));

    await store.put(seg("again", 1), new Uint8Array([9]));
    await store.put("sessions/again/snapshot", new Uint8Array([9]));
    await sessions.create(metaOf("again"));
    expect(await sessions.load("again")).toMatchObject({ snapshot: undefined, entries: [], lastSeq: 0 });
  });

  test("sessions append concurrently without disturbing each other", async () => {
    const ids = ["A", "B", "C", "D"];
    await Promise.all(ids.map((id) => sessions.create(metaOf(id))));
    await Promise.all(
      ids.map(async (id) => {
        for (let i = 0; i < 5; i++) await sessions.appendEntries(id, entries(i * 3 + 1, i * 3 + 3));
      }),
    );
    for (const id of ids) expect((await restarted().load(id))?.entries).toEqual(entries(1, 15));
  });

  test("invalid session ids and meta are refused", async () => {
    await errorOf(sessions.create(metaOf("a/b")));
    await errorOf(sessions.create(metaOf("..")));
    await errorOf(sessions.load(""));
    await errorOf(sessions.create({ ...metaOf("S"), tps: 0 }));
    await errorOf(sessions.create({ ...metaOf("S"), createdAt: -1 }));
  });
});

test("on the filesystem store, a snapshot that trims 300 segments deletes them in one write, not one each", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lockstep-session-store-"));
  const store = await createFsStore(dir);
  try {
    const sessions = new SessionStore(store, { now: () => 100 * DAY });
    await sessions.create(metaOf("S"));
    for (let seq = 1; seq <= 300; seq++) await sessions.appendEntries("S", entries(seq, seq));
    await sessions.appendEntries("S", entries(301, 302));
    const before = fsStoreStats(store).flushes;
    await sessions.putSnapshot("S", { seq: 300, time: 3000, bytes: new Uint8Array([1]) });
    // The snapshot's put, then the 300 deletes together.
    expect(fsStoreStats(store).flushes - before).toBe(2);
    expect(await store.list("sessions/S/log/")).toEqual([seg("S", 301)]);
    expect(await new SessionStore(store).load("S")).toMatchObject({ entries: entries(301, 302), lastSeq: 302, snapshot: { seq: 300 } });
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
