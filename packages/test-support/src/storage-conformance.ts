/**
 * The contract every reflector {@link BlobStore} adapter must meet, as a jest suite: the reflector's
 * own adapters (memory, fs, PostgreSQL) and third-party ones (examples/custom-store) run it.
 */
import { StorageError, type BlobStore } from "@lockstep/reflector";
import { createRng } from "./random";

/** What a conformance run needs from an adapter: a fresh, empty store and a way to dispose of it. */
export interface BlobStoreFixture {
  readonly store: BlobStore;
  cleanup(): Promise<void>;
}

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Deterministic pseudo-random bytes (fixed seeds: fixture data, not a randomized test), so large-value tests need no fixtures. */
const pattern = (length: number, seed: number): Uint8Array => createRng(seed).bytes(length);

async function expectStorageError(promise: Promise<unknown>): Promise<void> {
  await expect(promise).rejects.toBeInstanceOf(StorageError);
}

/**
 * The contract every {@link BlobStore} adapter must meet. Call it from the adapter's test file:
 * `runBlobStoreConformance("memory", async () => ({ store: createMemoryStore(), cleanup: async () => {} }))`.
 */
export function runBlobStoreConformance(name: string, make: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let fixture: BlobStoreFixture;
    let store: BlobStore;

    beforeEach(async () => {
      fixture = await make();
      store = fixture.store;
    });

    afterEach(async () => {
      await store.close();
      await fixture.cleanup();
    });

    test("get of a missing key is undefined", async () => {
      expect(await store.get("missing")).toBeUndefined();
      expect(await store.get("a/b/missing")).toBeUndefined();
    });

    test("put then get returns the value; put overwrites", async () => {
      await store.put("a/b", text("one"));
      expect(await store.get("a/b")).toEqual(text("one"));
      await store.put("a/b", text("two, longer"));
      expect(await store.get("a/b")).toEqual(text("two, longer"));
      await store.put("a/b", text("3"));
      expect(await store.get("a/b")).toEqual(text("3"));
    });

    test("delete removes the key and ignores a missing key", async () => {
      await store.put("x/y", bytes(1));
      await store.delete("x/y");
      expect(await store.get("x/y")).toBeUndefined();
      expect(await store.list("")).toEqual([]);
      await store.delete("x/y");
      await store.delete("never/was/there");
      await store.put("x/y", bytes(2));
      expect(await store.get("x/y")).toEqual(bytes(2));
    });

    test("binary values round-trip byte for byte, including empty and every byte value", async () => {
      const all = new Uint8Array(256).map((_, i) => i);
      await store.put("bin/all", all);
      await store.put("bin/empty", new Uint8Array(0));
      expect(await store.get("bin/all")).toEqual(all);
      const empty = await store.get("bin/empty");
      expect(empty).toBeInstanceOf(Uint8Array);
      expect(empty?.length).toBe(0);
      expect(await store.list("bin/")).toEqual(["bin/all", "bin/empty"]);
    });

    test("a value that is a view into a larger buffer stores only the view", async () => {
      const backing = bytes(9, 9, 1, 2, 3, 9, 9);
      await store.put("view", backing.subarray(2, 5));
      expect(await store.get("view")).toEqual(bytes(1, 2, 3));
    });

    test("large values (4 MB) round-trip", async () => {
      const large = pattern(4 * 1024 * 1024 + 3, 7);
      await store.put("large/value", large);
      const back = await store.get("large/value");
      expect(back?.length).toBe(large.length);
      expect(Buffer.compare(Buffer.from(back ?? []), Buffer.from(large))).toBe(0);
    });

    test("list returns keys with the prefix, sorted by code unit", async () => {
      const keys = ["b", "a/Z", "a/a", "a/B", "a/_", "a/-", "a/0", "a/z/9", "a/z", "a.b", "A"];
      for (const key of [...keys].reverse()) await store.put(key, text(key));
      expect(await store.list("")).toEqual([...keys].sort());
      expect(await store.list("a/")).toEqual(["a/-", "a/0", "a/B", "a/Z", "a/_", "a/a", "a/z", "a/z/9"]);
      expect(await store.list("a")).toEqual(["a.b", "a/-", "a/0", "a/B", "a/Z", "a/_", "a/a", "a/z", "a/z/9"]);
      expect(await store.list("nothing/")).toEqual([]);
    });

    test("a prefix ending inside a segment, at a dot, lists only names starting with it (Data API blob lookup)", async () => {
      const keys = ["sessions/s1/data/Blob0123456789abcd.10", "sessions/s1/data/Blob0123456789abcd-2.5", "sessions/s1/data/Blob0123456789abcdE.7", "sessions/s1/meta"];
      for (const key of keys) await store.put(key, text(key));
      expect(await store.list("sessions/s1/data/Blob0123456789abcd.")).toEqual(["sessions/s1/data/Blob0123456789abcd.10"]);
      expect(await store.list("sessions/s1/data/")).toEqual(keys.slice(0, 3).sort());
      await store.delete(keys[0]!);
      expect(await store.list("sessions/s1/data/Blob0123456789abcd.")).toEqual([]);
    });

    test("keys differing only in case are distinct", async () => {
      await store.put("case/Key", text("upper"));
      await store.put("case/key", text("lower"));
      expect(await store.get("case/Key")).toEqual(text("upper"));
      expect(await store.get("case/key")).toEqual(text("lower"));
      expect(await store.list("case/")).toEqual(["case/Key", "case/key"]);
    });

    test("sibling prefixes: a/b, a/bc and a/b/c coexist and list keeps them apart", async () => {
      await store.put("a/b", text("b"));
      await store.put("a/bc", text("bc"));
      await store.put("a/b/c", text("c"));
      expect(await store.get("a/b")).toEqual(text("b"));
      expect(await store.get("a/bc")).toEqual(text("bc"));
      expect(await store.get("a/b/c")).toEqual(text("c"));
      expect(await store.list("a/b/")).toEqual(["a/b/c"]);
      expect(await store.list("a/b")).toEqual(["a/b", "a/b/c", "a/bc"]);
      expect(await store.list("a/bc")).toEqual(["a/bc"]);
      expect(await store.list("a/bc/")).toEqual([]);
      await store.delete("a/b");
      expect(await store.list("a/")).toEqual(["a/b/c", "a/bc"]);
      await store.delete("a/b/c");
      expect(await store.list("a/")).toEqual(["a/bc"]);
      await store.put("a/b", text("again"));
      expect(await store.list("a/b")).toEqual(["a/b", "a/bc"]);
    });

    test("invalid keys are rejected with StorageError", async () => {
      const invalid = ["", "/abs", "a//b", "a/", "a/../b", "..", ".", "a/./b", "a b", "a\\b", "é", "a:b", "a/b?", "x".repeat(2000)];
      for (const key of invalid) {
        await expectStorageError(store.put(key, bytes(1)));
        await expectStorageError(store.get(key));
        await expectStorageError(store.delete(key));
      }
      for (const prefix of ["/a", "a//", "../", "a/../", "a b", "é"]) await expectStorageError(store.list(prefix));
      expect(await store.list("")).toEqual([]);
    });

    test("names that look like parents or dot files are ordinary keys", async () => {
      await store.put("..a/.b/c..", bytes(1));
      await store.put("-/_/x", new Uint8Array(0));
      expect(await store.get("..a/.b/c..")).toEqual(bytes(1));
      expect(await store.list("..a/")).toEqual(["..a/.b/c.."]);
      expect(await store.list("")).toEqual(["-/_/x", "..a/.b/c.."]);
    });

    test("returned bytes do not alias the store, and neither does the value put", async () => {
      const value = bytes(1, 2, 3);
      await store.put("alias", value);
      value[0] = 99;
      const first = await store.get("alias");
      expect(first).toEqual(bytes(1, 2, 3));
      first?.fill(0);
      expect(await store.get("alias")).toEqual(bytes(1, 2, 3));
    });

    test("put then immediate get sees the new value", async () => {
      for (let i = 0; i < 20; i++) {
        await store.put("seq/k", bytes(i));
        expect(await store.get("seq/k")).toEqual(bytes(i));
      }
    });

    test("concurrent puts to one key leave one of the values, intact", async () => {
      const values = Array.from({ length: 12 }, (_, i) => pattern(64 * 1024 + i, i + 1));
      await Promise.all(values.map((v) => store.put("race/key", v)));
      const final = await store.get("race/key");
      expect(final).toBeDefined();
      expect(values.some((v) => Buffer.compare(Buffer.from(v), Buffer.from(final ?? [])) === 0)).toBe(true);
      expect(await store.list("race/")).toEqual(["race/key"]);
    });

    test("readers racing a put see the old value or the new one, never a mix", async () => {
      const old = pattern(256 * 1024, 3);
      const next = pattern(256 * 1024, 4);
      await store.put("torn/key", old);
      const reads = Array.from({ length: 8 }, () => store.get("torn/key"));
      await Promise.all([store.put("torn/key", next), ...reads]);
      for (const read of await Promise.all(reads)) {
        const b = Buffer.from(read ?? []);
        expect(Buffer.compare(b, Buffer.from(old)) === 0 || Buffer.compare(b, Buffer.from(next)) === 0).toBe(true);
      }
    });

    test("concurrent puts to different keys all land", async () => {
      const keys = Array.from({ length: 40 }, (_, i) => `many/${i % 4}/k${String(i).padStart(2, "0")}`);
      await Promise.all(keys.map((key, i) => store.put(key, bytes(i))));
      expect(await store.list("many/")).toEqual([...keys].sort());
      for (const [i, key] of keys.entries()) expect(await store.get(key)).toEqual(bytes(i));
    });

    test("concurrent deletes and puts in one directory do not lose the puts", async () => {
      for (let i = 0; i < 10; i++) await store.put(`dir/old${i}`, bytes(i));
      await Promise.all([
        ...Array.from({ length: 10 }, (_, i) => store.delete(`dir/old${i}`)),
        ...Array.from({ length: 10 }, (_, i) => store.put(`dir/new${i}`, bytes(i))),
      ]);
      expect(await store.list("dir/")).toEqual(Array.from({ length: 10 }, (_, i) => `dir/new${i}`));
    });

    test("operations after close fail with StorageError", async () => {
      await store.put("k", bytes(1));
      await store.close();
      await expectStorageError(store.get("k"));
      await expectStorageError(store.put("k", bytes(2)));
      await expectStorageError(store.list(""));
      if (store.deleteMany !== undefined) await expectStorageError(store.deleteMany(["k"]));
    });

    // deleteMany is optional: an adapter without it is served a delete per key.
    test("deleteMany removes exactly the keys given, ignoring missing ones and an empty list", async () => {
      if (store.deleteMany === undefined) return;
      for (let i = 0; i < 300; i++) await store.put(`log/${String(i).padStart(4, "0")}`, bytes(i & 0xff));
      await store.put("log", bytes(1));
      await store.put("log/0005/x", bytes(2));
      await store.deleteMany([]);
      const gone = Array.from({ length: 250 }, (_, i) => `log/${String(i).padStart(4, "0")}`);
      await store.deleteMany([...gone, "log/9999", "never/there"]);
      const kept = Array.from({ length: 50 }, (_, i) => `log/${String(250 + i).padStart(4, "0")}`);
      expect(await store.list("log")).toEqual(["log", "log/0005/x", ...kept]);
      expect(await store.get("log/0000")).toBeUndefined();
      expect(await store.get("log/0250")).toEqual(bytes(250));
      await store.put("log/0000", bytes(3)); // a key deleted may be put again
      expect(await store.get("log/0000")).toEqual(bytes(3));
    });

    test("on a store with orderedWrites, deleteMany lands in call order among unawaited puts", async () => {
      if (store.deleteMany === undefined || store.orderedWrites !== true) return;
      await store.put("k/a", bytes(1));
      const puts = [store.put("k/b", bytes(2)), store.put("k/c", bytes(3))];
      const deleted = store.deleteMany(["k/a", "k/b"]);
      const after = store.put("k/a", bytes(4));
      await Promise.all([...puts, deleted, after]);
      // Issued in this order to one key, the last wins; the order across keys is the call order.
      expect(await store.list("k/")).toEqual(["k/a", "k/c"]);
      expect(await store.get("k/a")).toEqual(bytes(4));
    });

    test("deleteMany with an invalid key rejects with StorageError and removes nothing", async () => {
      if (store.deleteMany === undefined) return;
      await store.put("a/1", bytes(1));
      await store.put("a/2", bytes(2));
      await expectStorageError(store.deleteMany(["a/1", "a//2"]));
      await expectStorageError(store.deleteMany(["a/1", "x".repeat(2000)]));
      expect(await store.list("a/")).toEqual(["a/1", "a/2"]);
    });
  });
}
