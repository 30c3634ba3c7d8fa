import { build } from "esbuild";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageType, encodeEntries, type StreamEntry } from "@lockstep/protocol";
import {
  PersistStore,
  SessionDamagedError,
  SessionStore,
  StorageError,
  checkWritable,
  createFsStore,
  createMemoryStore,
  findDamage,
  isDamaged,
  type BlobStore,
  type StoredSessionMeta,
} from "../../src/storage";
import { makeReadOnlyDir, runUnprivileged, type ReadOnlyDir } from "./read-only";

// Storage faults: a damaged log tail is cut back and the session continues; any other damage is a
// permanent, typed error; unwritable storage is found by a probe before anything depends on it.

const adapters: [string, () => Promise<{ store: BlobStore; cleanup(): Promise<void> }>][] = [
  ["memory", async () => ({ store: createMemoryStore(), cleanup: async () => undefined })],
  [
    "fs",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "lockstep-faults-"));
      return { store: await createFsStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  ],
];

const meta: StoredSessionMeta = { sessionId: "S", persistentId: "p-S", tps: 20, verifier: new Uint8Array([1, 2]), check: new Uint8Array([3]), createdAt: 1_000 };

/** Entries `from..to` cycling through all six kinds the log stores (so damaged segments are framed for each); time is 10 ms per seq. */
function entries(from: number, to: number): StreamEntry[] {
  const out: StreamEntry[] = [];
  for (let seq = from; seq <= to; seq++) {
    const time = seq * 10;
    switch (seq % 6) {
      case 0:
        out.push({ type: MessageType.Relay, seq, time, payload: new Uint8Array([seq & 0xff, 0, 255]) });
        break;
      case 1:
        out.push({ type: MessageType.ViewJoin, seq, time, viewId: `v${seq}`, viewData: new Uint8Array([seq & 0xff]) });
        break;
      case 2:
        out.push({ type: MessageType.ViewExit, seq, time, viewId: `v${seq - 1}` });
        break;
      case 3:
        out.push({ type: MessageType.SnapshotRequest, seq, time });
        break;
      case 4:
        out.push({ type: MessageType.Persisted, seq, time, slot: "slot", upTo: seq - 1, size: 300, hash: new Uint8Array(32).fill(seq & 0xff) });
        break;
      default:
        out.push({ type: MessageType.PersistData, seq, time, slot: "slot", requestSeq: seq - 1, blob: new Uint8Array([9, 8, 7, seq & 0xff]) });
    }
  }
  return out;
}

const seg = (first: number): string => `sessions/S/log/${String(first).padStart(16, "0")}`;
/** A log segment as SessionStore writes it: "L", format 1, then the entries. */
const segmentBytes = (list: readonly StreamEntry[]): Uint8Array => Uint8Array.from([0x4c, 1, ...encodeEntries(list)]);
/** Offset in `segmentBytes(list)` at which entry `k` starts (for lists shorter than 128 entries). */
const entryOffset = (list: readonly StreamEntry[], k: number): number => segmentBytes(list.slice(0, k)).length;
const garbage = (n: number, seed = 7): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 17 + 0x80) & 0xff);

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (error: unknown) => error,
  );
}

describe.each(adapters)("storage faults on %s", (_name, make) => {
  let store: BlobStore;
  let cleanup: () => Promise<void>;
  /** A fresh SessionStore on the same blobs: what a restarted reflector sees. */
  const restarted = (): SessionStore => new SessionStore(store, { now: () => 5_000 });

  beforeEach(async () => {
    ({ store, cleanup } = await make());
  });

  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  /** Creates session S with one segment per batch `[from, to]`. */
  async function stored(...batches: [number, number][]): Promise<void> {
    const sessions = restarted();
    await sessions.create(meta);
    for (const [from, to] of batches) await sessions.appendEntries("S", entries(from, to));
  }

  /** Loads S twice from scratch: the second load must agree and need no recovery (the stored log is consistent again). */
  async function loadTwice() {
    const first = await restarted().load("S");
    const second = await restarted().load("S");
    expect(second?.recovered).toBeUndefined();
    expect(second?.entries).toEqual(first?.entries);
    expect(second?.lastSeq).toBe(first?.lastSeq);
    return first;
  }

  test("a truncated last segment keeps its whole entries; a reload gives the same", async () => {
    await stored([1, 3], [4, 9]);
    const bytes = (await store.get(seg(4)))!;
    // Cut in the middle of entry 7 (the fourth of the segment).
    await store.put(seg(4), bytes.subarray(0, entryOffset(entries(4, 9), 3) + 2));
    const loaded = await loadTwice();
    expect(loaded?.entries).toEqual(entries(1, 6));
    expect(loaded).toMatchObject({ lastSeq: 6, lastTime: 60 });
    expect(loaded?.recovered).toEqual({
      sessionId: "S",
      key: seg(4),
      reason: expect.stringMatching(/entry 3 of the 6 it claims does not decode/),
      firstLostSeq: 7,
      rewritten: seg(4),
      lostSegments: [],
    });
    // The prefix is stored under the segment's own key, so it is an ordinary segment again.
    expect(await store.get(seg(4))).toEqual(segmentBytes(entries(4, 6)));
  });

  test("a last segment truncated to nothing, or to its header, is dropped", async () => {
    for (const cut of [0, 1, 2, 3]) {
      await store.close();
      await cleanup();
      ({ store, cleanup } = await make());
      await stored([1, 3], [4, 6]);
      await store.put(seg(4), (await store.get(seg(4)))!.subarray(0, cut));
      const loaded = await loadTwice();
      expect(loaded?.entries).toEqual(entries(1, 3));
      expect(loaded?.recovered).toMatchObject({ firstLostSeq: 4, rewritten: undefined, lostSegments: [seg(4)] });
      expect(await store.list("sessions/S/log/")).toEqual([seg(1)]);
    }
  });

  test("a garbage last segment is dropped", async () => {
    await stored([1, 3], [4, 6]);
    await store.put(seg(4), garbage(40));
    const loaded = await loadTwice();
    expect(loaded?.entries).toEqual(entries(1, 3));
    expect(loaded?.recovered).toMatchObject({ key: seg(4), reason: "it is not a log segment", firstLostSeq: 4, lostSegments: [seg(4)] });
  });

  test("a damaged entry in the middle of the last segment keeps the entries before it", async () => {
    const list = entries(4, 9);
    const damaged = (kind: string): Uint8Array => {
      switch (kind) {
        case "unknown type": {
          const bytes = segmentBytes(list);
          bytes[entryOffset(list, 2)] = 0x7f;
          return bytes;
        }
        case "wrong seq":
          return segmentBytes(list.map((e) => (e.seq === 6 ? { ...e, seq: 60 } : e)));
        default: // time goes backwards
          return segmentBytes(list.map((e) => (e.seq === 6 ? { ...e, time: 1 } : e)));
      }
    };
    for (const [kind, reason] of [
      ["unknown type", /entry 2 of the 6 it claims does not decode \(.*unknown/],
      ["wrong seq", /entry 2 has seq 60, expected 6/],
      ["time backwards", /time goes backwards at seq 6/],
    ] as const) {
      await store.close();
      await cleanup();
      ({ store, cleanup } = await make());
      await stored([1, 3], [4, 9]);
      await store.put(seg(4), damaged(kind));
      const loaded = await loadTwice();
      expect(loaded?.entries).toEqual(entries(1, 5));
      expect(loaded?.recovered?.reason).toMatch(reason);
      expect(loaded?.recovered).toMatchObject({ firstLostSeq: 6, rewritten: seg(4) });
    }
  });

  test("several damaged segments at the tail all go, and a gap before garbage is a tail too", async () => {
    await stored([1, 3], [4, 6], [7, 8], [9, 12]);
    await store.put(seg(4), (await store.get(seg(4)))!.subarray(0, 12));
    await store.put(seg(7), garbage(9));
    await store.put(seg(9), new Uint8Array(30)); // zero-filled, as a lost write can leave it
    const loaded = await loadTwice();
    // 12 bytes end inside entry 4 (a Persisted entry with a 32-byte hash), so segment 4 goes whole.
    expect(loaded?.entries).toEqual(entries(1, 3));
    expect(loaded?.recovered).toMatchObject({ key: seg(4), firstLostSeq: 4, rewritten: undefined, lostSegments: [seg(4), seg(7), seg(9)] });

    // A missing segment followed only by garbage: nothing valid is lost by cutting there either.
    await restarted().appendEntries("S", entries(4, 20));
    await store.put(seg(30), garbage(12));
    await store.delete(seg(4));
    const again = await loadTwice();
    expect(again?.lastSeq).toBe(3);
    expect(again?.recovered).toMatchObject({ key: seg(30), reason: expect.stringMatching(/jumps from seq \d+ to 30/), lostSegments: [seg(30)] });
  });

  test("a damaged segment followed by a good one is permanent damage, and nothing is deleted", async () => {
    await stored([1, 3], [4, 6], [7, 9]);
    await store.put(seg(4), (await store.get(seg(4)))!.subarray(0, 10));
    const before = await store.list("");
    const error = await rejectionOf(restarted().load("S"));
    expect(isDamaged(error)).toBe(true);
    expect(error).toBeInstanceOf(SessionDamagedError);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ damaged: true, key: seg(4), sessionId: "S" });
    const message = (error as Error).message;
    expect(message).toContain(seg(4));
    expect(message).toContain(`${seg(7)} after it holds entries from seq 7, so cutting the log back to seq 3 would drop the entries from seq 7 on`);
    expect(message).toMatch(/restore its keys \(sessions\/S\/\) from a backup, or delete them and activity\/S/);
    expect(await store.list("")).toEqual(before);
    // Still so on the next attempt: it does not heal by retrying.
    expect(isDamaged(await rejectionOf(restarted().load("S")))).toBe(true);
  });

  test("a missing segment followed by good ones is permanent damage", async () => {
    await stored([1, 3], [4, 6], [7, 9]);
    await store.delete(seg(4));
    const error = await rejectionOf(restarted().load("S"));
    expect(isDamaged(error)).toBe(true);
    expect(error).toMatchObject({ key: seg(7) });
    expect((error as Error).message).toMatch(/jumps from seq 3 to 7, so entries are missing; cutting the log back to seq 3 would drop the entries from seq 7 on/);
  });

  test("garbage meta, a damaged snapshot and an unknown segment format are permanent damage", async () => {
    await stored([1, 3], [4, 6]);
    await restarted().putSnapshot("S", { seq: 2, time: 20, bytes: new Uint8Array([1, 2, 3]) });

    await store.put(seg(4), Uint8Array.from([0x4c, 9, 1, 2, 3]));
    const format = await rejectionOf(restarted().load("S"));
    expect(findDamage(format)).toMatchObject({ key: seg(4) });
    expect((format as Error).message).toMatch(/unknown log segment format 9.*newer reflector/);
    expect(await store.list("sessions/S/log/")).toEqual([seg(1), seg(4)]);
    await store.delete(seg(4));

    await store.put("sessions/S/snapshot", Uint8Array.from([0x53, 1, 0x80]));
    expect(findDamage(await rejectionOf(restarted().load("S")))).toMatchObject({ key: "sessions/S/snapshot", sessionId: "S" });

    await store.put("sessions/S/meta", garbage(20));
    const error = await rejectionOf(restarted().load("S"));
    expect(findDamage(error)).toMatchObject({ key: "sessions/S/meta", sessionId: "S" });
    expect((error as Error).message).toMatch(/"sessions\/S\/meta" is corrupt: .*Session S cannot be loaded until this is repaired/);
  });

  test("a damaged persisted-data version is permanent damage naming the slot's remedies", async () => {
    const persist = new PersistStore(store);
    await persist.append("slot", { sessionId: "S", seq: 1, size: 1, hash: new Uint8Array([1]), bytes: new Uint8Array([2]) });
    await store.put("persist/slot/v/0000000000000001", garbage(5));
    const error = await rejectionOf(persist.latest("slot"));
    expect(findDamage(error)).toMatchObject({ key: "persist/slot/v/0000000000000001", sessionId: undefined });
    expect((error as Error).message).toMatch(/persist list slot/);
  });

  test("appends after a recovery continue at the right seq, and the session loads again", async () => {
    await stored([1, 3], [4, 6]);
    await store.put(seg(4), (await store.get(seg(4)))!.subarray(0, entryOffset(entries(4, 6), 1) + 1));
    const sessions = restarted();
    expect((await sessions.load("S"))?.lastSeq).toBe(4);
    await expect(sessions.appendEntries("S", entries(6, 7))).rejects.toThrow(/has seq 6, expected 5/);
    await sessions.appendEntries("S", entries(5, 8));
    const loaded = await loadTwice();
    expect(loaded?.entries).toEqual(entries(1, 8));
  });

  test("a store that cached the tail before the damage continues from the recovered one", async () => {
    const sessions = restarted();
    await sessions.create(meta);
    await sessions.appendEntries("S", entries(1, 3));
    await sessions.appendEntries("S", entries(4, 6));
    await store.put(seg(4), garbage(8)); // damaged under a running store
    expect((await sessions.load("S"))?.recovered).toMatchObject({ firstLostSeq: 4 });
    await sessions.appendEntries("S", entries(4, 5));
    expect((await loadTwice())?.entries).toEqual(entries(1, 5));
  });

  test("a recovery made by an append before any load is reported by the next load", async () => {
    await stored([1, 3], [4, 6]);
    await store.put(seg(4), garbage(8));
    const blind = restarted();
    await blind.appendEntries("S", entries(4, 4));
    const loaded = await blind.load("S");
    expect(loaded?.entries).toEqual(entries(1, 4));
    expect(loaded?.recovered).toMatchObject({ key: seg(4), firstLostSeq: 4 });
    expect((await blind.load("S"))?.recovered).toBeUndefined();
  });

  test("loads racing appends (a live session's log read back for a joiner) see a sound prefix and repair nothing", async () => {
    const sessions = restarted();
    await sessions.create(meta);
    for (let i = 0; i < 10; i++) {
      const [, loaded] = await Promise.all([sessions.appendEntries("S", entries(i * 3 + 1, i * 3 + 3)), sessions.load("S")]);
      expect(loaded?.recovered).toBeUndefined();
      expect(loaded?.entries).toEqual(entries(1, loaded!.lastSeq));
      expect(loaded!.lastSeq).toBeGreaterThanOrEqual(i * 3);
    }
    expect((await loadTwice())?.entries).toEqual(entries(1, 30));
  });

  test("a crash at any point of a repair leaves a log that loads to the same entries", async () => {
    /** Snapshot at 4 with a leftover covered segment, damage inside segment 7 and garbage after it. */
    async function damagedState(): Promise<void> {
      await stored([1, 3], [4, 6], [7, 9], [10, 11], [12, 12]);
      const sessions = restarted();
      await sessions.putSnapshot("S", { seq: 4, time: 40, bytes: new Uint8Array([4]) });
      await store.put(seg(1), segmentBytes(entries(1, 3))); // as if the trim had been interrupted
      await store.put(seg(7), (await store.get(seg(7)))!.subarray(0, entryOffset(entries(7, 9), 1) + 3));
      await store.put(seg(10), garbage(6));
      await store.put(seg(12), new Uint8Array(3));
    }
    for (let budget = 0; ; budget++) {
      await store.close();
      await cleanup();
      ({ store, cleanup } = await make());
      await damagedState();
      // The process dies after `budget` writes of the repair: later writes never happen.
      let writes = 0;
      const crash = (): never => {
        throw new StorageError("simulated crash");
      };
      const dying: BlobStore = {
        get: (key) => store.get(key),
        list: (prefix) => store.list(prefix),
        put: async (key, value) => (++writes > budget ? crash() : store.put(key, value)),
        delete: async (key) => (++writes > budget ? crash() : store.delete(key)),
        close: async () => undefined,
      };
      const completed = await new SessionStore(dying).load("S").then(
        () => true,
        (error: unknown) => (error instanceof StorageError && error.message === "simulated crash" ? false : Promise.reject(error)),
      );
      const after = await loadTwice();
      expect(after?.entries).toEqual(entries(5, 7));
      expect(after?.lastSeq).toBe(7);
      if (completed) {
        expect(await store.list("sessions/S/log/")).toEqual([seg(4), seg(7)]);
        expect(budget).toBe(4); // delete 1, put 7, delete 10, delete 12
        break;
      }
    }
  });
});

describe("damaged segments are framed entry by entry", () => {
  test("cut at every byte, a segment of every entry type keeps exactly the entries that fit", async () => {
    const list = entries(1, 12);
    const full = segmentBytes(list);
    for (let cut = 0; cut < full.length; cut++) {
      const store = createMemoryStore();
      const sessions = new SessionStore(store);
      await sessions.create(meta);
      await store.put(seg(1), full.subarray(0, cut));
      let fit = 0;
      while (fit < list.length && entryOffset(list, fit + 1) <= cut) fit++;
      const loaded = await new SessionStore(store).load("S");
      expect({ cut, seqs: loaded?.entries.map((e) => e.seq) }).toEqual({ cut, seqs: list.slice(0, fit).map((e) => e.seq) });
      expect(loaded?.entries).toEqual(list.slice(0, fit));
      expect(loaded?.recovered?.firstLostSeq).toBe(fit + 1);
    }
  });

  test("trailing bytes after a segment's entries keep them all", async () => {
    const store = createMemoryStore();
    await new SessionStore(store).create(meta);
    await store.put(seg(1), Uint8Array.from([...segmentBytes(entries(1, 3)), 0, 0]));
    const loaded = await new SessionStore(store).load("S");
    expect(loaded?.entries).toEqual(entries(1, 3));
    expect(loaded?.recovered).toMatchObject({ reason: "2 unexpected bytes follow its 3 entries", firstLostSeq: 4, rewritten: seg(1) });
  });
});

describe("isDamaged", () => {
  test("is true only for damaged-data errors, also when wrapped as a cause", () => {
    const damaged = new SessionDamagedError("x", { key: "sessions/S/meta", sessionId: "S" });
    expect(isDamaged(damaged)).toBe(true);
    expect(isDamaged(new Error("wrapped", { cause: damaged }))).toBe(true);
    expect(findDamage(new Error("wrapped", { cause: damaged }))).toBe(damaged);
    expect(isDamaged(new StorageError("disk full"))).toBe(false);
    expect(new StorageError("disk full").damaged).toBe(false);
    expect(isDamaged(undefined)).toBe(false);
    expect(isDamaged("sessions/S/meta")).toBe(false);
    const circular = new Error("a");
    (circular as { cause?: unknown }).cause = circular;
    expect(isDamaged(circular)).toBe(false);
  });
});

describe("checkWritable", () => {
  test("passes on writable stores and leaves nothing behind", async () => {
    const memory = createMemoryStore();
    await checkWritable(memory);
    expect(await memory.list("")).toEqual([]);
    const dir = await mkdtemp(join(tmpdir(), "lockstep-writable-"));
    try {
      const fs = await createFsStore(dir);
      await checkWritable(fs);
      expect(await fs.list("")).toEqual([]);
      await fs.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a store whose puts fail says where it is, the code and the adapter's advice", async () => {
    const inner = createMemoryStore();
    const readOnly: BlobStore = {
      location: "/srv/lockstep",
      get: (key) => inner.get(key),
      list: (prefix) => inner.list(prefix),
      delete: (key) => inner.delete(key),
      put: async (key) => {
        const cause = Object.assign(new Error("EROFS: read-only file system"), { code: "EROFS" });
        throw new StorageError(`cannot write ${JSON.stringify(key)} (EROFS); remount it read-write`, { cause, key });
      },
      close: () => inner.close(),
    };
    const error = await rejectionOf(checkWritable(readOnly));
    expect(error).toBeInstanceOf(StorageError);
    expect(isDamaged(error)).toBe(false);
    expect((error as Error).message).toMatch(/^the storage at \/srv\/lockstep is not writable \(EROFS\): cannot write "lockstep\/probe-[0-9a-f]{16}" \(EROFS\); remount it read-write$/);
  });

  test("a store that loses or keeps what it should not is refused too", async () => {
    const inner = createMemoryStore();
    const forgetful: BlobStore = { ...bind(inner), put: async () => undefined };
    expect((await rejectionOf(checkWritable(forgetful)) as Error).message).toMatch(/^the storage at memory is not writable: .*read back as missing/);
    const sticky: BlobStore = { ...bind(inner), delete: async () => undefined };
    expect((await rejectionOf(checkWritable(sticky)) as Error).message).toMatch(/still there after delete/);
  });

  describe("on a real read-only directory", () => {
    let ro: ReadOnlyDir;

    beforeEach(async () => {
      ro = await makeReadOnlyDir();
    });

    afterEach(async () => {
      await ro.cleanup();
    });

    test("the fs store is refused with the directory and what to do", async () => {
      // The child may run as another user, so it gets the storage code bundled into a file it can read.
      const bundle = join(ro.parent, "storage.cjs");
      await build({
        stdin: { contents: 'export { createFsStore } from "./fs-store"; export { checkWritable } from "./writable";', resolveDir: join(__dirname, "../../src/storage"), loader: "ts" },
        bundle: true,
        platform: "node",
        format: "cjs",
        outfile: bundle,
        logLevel: "silent",
      });
      const script = join(ro.parent, "probe.cjs");
      await writeFile(
        script,
        `const { createFsStore, checkWritable } = require(${JSON.stringify(bundle)});
         createFsStore(process.argv[2])
           .then((store) => checkWritable(store).then(() => "writable", (error) => error.message).finally(() => store.close()))
           .then((text) => console.log(text));`,
      );
      const result = await runUnprivileged([script, ro.dir]);
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(result.stdout.trim()).toMatch(
        new RegExp(`^the storage at ${escapeRegExp(ro.dir)} is not writable \\(EACCES\\): cannot write "lockstep/probe-[0-9a-f]{16}" at ${escapeRegExp(ro.dir)}/@log \\(EACCES\\); fix the permissions of the storage directory`),
      );
    });
  });
});

function bind(store: BlobStore): BlobStore {
  return {
    location: store.location,
    get: (key) => store.get(key),
    put: (key, value) => store.put(key, value),
    delete: (key) => store.delete(key),
    list: (prefix) => store.list(prefix),
    close: () => store.close(),
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
