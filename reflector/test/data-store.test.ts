import { createHash } from "node:crypto";
import { DataStore, SessionStore, StorageError, createMemoryStore, type BlobStore } from "../src/storage";
import { parseArgs } from "../src/cli";

const token = new Uint8Array(32).fill(7);
const verifier = new Uint8Array(createHash("sha256").update(token).digest());
const limits = { maxBlobBytes: 100, maxSessionBytes: 250, maxSessionBlobs: 3 };
const blob = (n: number): string => `blob${String(n).padStart(12, "0")}`;

async function withSession(blobs: BlobStore, id = "session-aaaaaaaaaaaa", now = () => 1_000): Promise<SessionStore> {
  const sessions = new SessionStore(blobs, { retentionMs: 1_000, now });
  await sessions.create({ sessionId: id, persistentId: "p", tps: 20, verifier, check: new Uint8Array(4), createdAt: 1 });
  return sessions;
}

describe("DataStore", () => {
  test("authorizes the session's access token only, and nothing for a session not stored", async () => {
    const blobs = createMemoryStore();
    await withSession(blobs);
    const data = new DataStore(blobs, limits);
    expect(await data.authorize("session-aaaaaaaaaaaa", token)).toBe(true);
    expect(await data.authorize("session-aaaaaaaaaaaa", new Uint8Array(32))).toBe(false);
    expect(await data.authorize("session-bbbbbbbbbbbb", token)).toBe(false);
  });

  test("stores immutable blobs within the per-blob, per-session byte and count bounds", async () => {
    const blobs = createMemoryStore();
    await withSession(blobs);
    const data = new DataStore(blobs, limits);
    const id = "session-aaaaaaaaaaaa";
    expect(await data.put(id, blob(1), new Uint8Array(101))).toEqual({ reason: "too-large", limit: 100 });
    expect(await data.put(id, blob(1), new Uint8Array(100).fill(1))).toBeUndefined();
    expect(await data.put(id, blob(1), new Uint8Array(5))).toEqual({ reason: "exists" });
    expect(await data.get(id, blob(1))).toEqual(new Uint8Array(100).fill(1));
    expect(await data.put(id, blob(2), new Uint8Array(100))).toBeUndefined();
    expect(await data.put(id, blob(3), new Uint8Array(60))).toEqual({ reason: "quota-bytes", limit: 250, used: 200 });
    expect(await data.put(id, blob(3), new Uint8Array(50))).toBeUndefined();
    expect(await data.put(id, blob(4), new Uint8Array(0))).toEqual({ reason: "quota-blobs", limit: 3 });
    expect(await data.usage(id)).toEqual({ blobs: 3, bytes: 250 });
    expect(await data.get(id, blob(9))).toBeUndefined();
    await expect(data.get(id, "../meta")).rejects.toBeInstanceOf(StorageError);
    await expect(data.put("a/b", blob(1), new Uint8Array(1))).rejects.toBeInstanceOf(StorageError);
  });

  test("concurrent uploads cannot overshoot the session's quota together", async () => {
    const blobs = createMemoryStore();
    await withSession(blobs);
    const data = new DataStore(blobs, { ...limits, maxSessionBlobs: 100 });
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => data.put("session-aaaaaaaaaaaa", blob(n), new Uint8Array(100))));
    expect(results.filter((r) => r === undefined)).toHaveLength(2);
    expect((await data.usage("session-aaaaaaaaaaaa")).bytes).toBe(200);
  });

  test("retention removes a session's blobs with the session; a new session of that id starts empty", async () => {
    const blobs = createMemoryStore();
    let now = 1_000;
    const sessions = await withSession(blobs, "session-aaaaaaaaaaaa", () => now);
    const data = new DataStore(blobs, limits);
    await data.put("session-aaaaaaaaaaaa", blob(1), new Uint8Array(10));
    now += 10_000;
    expect(await sessions.collectGarbage()).toBe(1);
    expect(await blobs.list("sessions/")).toEqual([]);
    expect(await data.get("session-aaaaaaaaaaaa", blob(1))).toBeUndefined();
    expect(await data.authorize("session-aaaaaaaaaaaa", token)).toBe(false);
  });

  test("refuses bounds that are not positive integers", () => {
    expect(() => new DataStore(createMemoryStore(), { ...limits, maxBlobBytes: 0 })).toThrow(/maxBlobBytes must be a positive integer/);
  });
});

describe("Data API caps on the command line", () => {
  test("--max-data-… flags and their environment variables set the caps", () => {
    const parsed = parseArgs(["--max-data-bytes", "1024", "--max-data-blobs-per-session=7"], { LOCKSTEP_MAX_DATA_BYTES_PER_SESSION: "4096" });
    expect(parsed).toMatchObject({ kind: "run", settings: { caps: { maxDataBytes: 1024, maxDataBlobsPerSession: 7, maxDataBytesPerSession: 4096 } } });
    expect(parseArgs(["--max-data-bytes", "0"])).toMatchObject({ kind: "error" });
  });
});
