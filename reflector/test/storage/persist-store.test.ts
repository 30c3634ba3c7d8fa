import { PersistStore, StorageError, createMemoryStore } from "../../src/storage";

const bytes = (...v: number[]): Uint8Array => Uint8Array.from(v);
const record = (seq: number, fill = seq) => ({ sessionId: "S", seq, size: 3, hash: bytes(fill, fill), bytes: bytes(fill, fill, fill) });

describe("PersistStore", () => {
  test("appends versions in order and keeps only the newest N", async () => {
    const blobs = createMemoryStore();
    const store = new PersistStore(blobs, { keep: 3, now: () => 1_700_000_000_000 });
    for (let i = 1; i <= 5; i++) expect(await store.append("slot", record(i))).toBe(i);
    expect((await store.versions("slot")).map((v) => v.version)).toEqual([3, 4, 5]);
    const latest = await store.latest("slot");
    expect(latest).toMatchObject({ version: 5, seq: 5, sessionId: "S", size: 3, createdAt: 1_700_000_000_000, bytesLength: 3 });
    expect(latest!.bytes).toEqual(bytes(5, 5, 5));
    expect(await store.get("slot", 2)).toBeUndefined();
    expect(await store.latest("other")).toBeUndefined();
    expect(await store.slots()).toEqual(["slot"]);
  });

  test("a rollback copies an old version as the newest; nothing is overwritten", async () => {
    const store = new PersistStore(createMemoryStore());
    await store.append("slot", record(1));
    await store.append("slot", record(2));
    expect(await store.rollback("slot", 1)).toBe(3);
    expect((await store.versions("slot")).map((v) => [v.version, v.seq, v.sessionId])).toEqual([
      [1, 1, "S"],
      [2, 2, "S"],
      [3, 1, ""],
    ]);
    expect((await store.latest("slot"))!.bytes).toEqual(bytes(1, 1, 1));
    await expect(store.rollback("slot", 9)).rejects.toThrow(/has no version 9 \(versions kept: 1, 2, 3\)/);
  });

  test("the first registered token is the slot's; other tokens are refused, unknown slots accept any without registering", async () => {
    const store = new PersistStore(createMemoryStore());
    expect(await store.authorize("slot", bytes(1))).toBe(true);
    expect(await store.authorize("slot", bytes(2), true)).toBe(true);
    expect(await store.authorize("slot", bytes(2))).toBe(true);
    expect(await store.authorize("slot", bytes(1))).toBe(false);
  });

  test("corrupt records and bad slots are StorageErrors naming the key", async () => {
    const blobs = createMemoryStore();
    const store = new PersistStore(blobs);
    await store.append("slot", record(1));
    await blobs.put(`persist/slot/v/${"1".padStart(16, "0")}`, bytes(0x50, 9));
    await expect(store.latest("slot")).rejects.toThrow(/persist\/slot\/v\/0000000000000001.*unknown persisted-data format 9/);
    await expect(store.latest("a/b")).rejects.toBeInstanceOf(StorageError);
    expect(() => new PersistStore(blobs, { keep: 0 })).toThrow(StorageError);
  });
});
