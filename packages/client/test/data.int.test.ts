/**
 * The Data API on a real reflector: blobs stored by one client and fetched by another through a
 * handle sent in an event, a late joiner fetching a handle from a snapshot after a reflector
 * restart, wrong keys and tampered blobs rejected, oversized blobs refused, unauthenticated
 * requests refused, and no plaintext in the reflector's traffic or storage.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryStore, startReflector, silentLogger, type BlobStore, type Logger, type Reflector } from "@lockstep/reflector";
import { Data, DataError, DataHandle, DecryptionError, Model, Session, View, type LockstepSession } from "../src/index";
import { deriveSessionKeys } from "../src/session/crypto";
import { captureWhen, recordingSockets, sha256 } from "./int-helpers";
import { encodeClientMessage } from "@lockstep/protocol";

interface Entry {
  readonly handle: DataHandle;
  readonly name: string;
}

class Shelf extends Model {
  files: Entry[] = [];
  notes = 0;
  override init(): void {
    this.subscribe("shelf", "add", this.add);
    this.subscribe("shelf", "note", this.note);
  }
  note(): void {
    this.notes++;
  }
  add(entry: Entry): void {
    this.files.push(entry);
  }
}
Shelf.register("DataIntShelf");

const APP = "io.lockstep.test.data";
/** Recognisable plaintext: the scans below look for it in the reflector's storage and traffic. */
const SECRET = new TextEncoder().encode("PLAINTEXT-MARKER: the quick brown fox jumps over the lazy dog ".repeat(40));

let dataDir: string;
let reflector: Reflector | undefined;
const sessions: LockstepSession[] = [];
const events: { event: string; fields: Record<string, unknown> | undefined }[] = [];
const logger: Logger = { ...silentLogger, info: (event, fields) => void events.push({ event, fields: fields as Record<string, unknown> | undefined }) };

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "lockstep-data-"));
  events.length = 0;
});
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.leave().catch(() => undefined)));
  await reflector?.close();
  reflector = undefined;
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(options: { storage?: BlobStore; caps?: Record<string, number> } = {}): Promise<string> {
  reflector = await startReflector({
    port: 0,
    logger,
    snapshots: { everyMessages: 10, voteTimeoutMs: 2000 },
    ...(options.storage ? { storage: options.storage } : { dataDir }),
    ...(options.caps ? { caps: options.caps } : {}),
  });
  return reflector.url;
}

async function joinShelf(url: string, name: string, password = "pw-data", extra: Record<string, unknown> = {}): Promise<LockstepSession<Shelf>> {
  const s = await Session.join({ appId: APP, name, password, model: Shelf, view: View, reflector: url, ...extra });
  sessions.push(s);
  return s as LockstepSession<Shelf>;
}

/** Resolves once `s`'s model holds `n` files. */
function files(s: LockstepSession<Shelf>, n: number): Promise<{ seq: number; hash: string }> {
  return captureWhen(s, () => s.model.files.length >= n);
}

function httpBase(url: string): string {
  return url.replace(/^ws/, "http").replace(/\/$/, "");
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack).includes(Buffer.from(needle));
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

test("a handle sent in an event is fetched by another client; replicas stay identical; nothing in plaintext reaches storage", async () => {
  const url = await start();
  // The reflector's traffic: every frame the clients send, and every HTTP body both ways.
  const frames = recordingSockets();
  const http: Uint8Array[] = [];
  const realFetch = globalThis.fetch;
  const spy = jest.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const body: unknown = init?.body;
    if (body instanceof Uint8Array) http.push(body.slice());
    const res = await realFetch(input, init);
    http.push(new Uint8Array(await res.clone().arrayBuffer()));
    return res;
  });
  const a = await joinShelf(url, "round-trip", "pw-data", { socket: frames.factory });
  const b = await joinShelf(url, "round-trip", "pw-data", { socket: frames.factory });
  const buffer = SECRET.slice().buffer;
  const handle = await a.data.store(buffer, { keep: true });
  expect(buffer.byteLength).toBe(SECRET.length); // kept
  expect(handle).toBeInstanceOf(DataHandle);
  expect(Data.fromId(Data.toId(handle))).toBe(handle); // handles compare by id: the same object

  const points = [a, b].map((s) => files(s, 1));
  a.view.publish("shelf", "add", { handle, name: "note" });
  const [pa, pb] = await Promise.all(points);
  expect(pa!.seq).toBe(pb!.seq);
  expect(pa!.hash).toBe(pb!.hash);

  const got = b.model.files[0]!.handle;
  expect(got).toBe(handle); // the event carried the handle, restored by id
  const bytes = new Uint8Array(await b.data.fetch(got));
  expect(sha256(bytes)).toBe(sha256(SECRET));
  expect(await Data.hash(bytes)).toBe(await Data.hash(SECRET));

  // Not kept: the buffer is taken over (detached), as in Croquet.
  const taken = SECRET.slice().buffer;
  await a.data.store(taken);
  expect(taken.byteLength).toBe(0);

  spy.mockRestore();
  expect(http.length).toBeGreaterThanOrEqual(4);
  const marker = SECRET.subarray(0, 16);
  for (const body of http) expect(contains(body, marker)).toBe(false);
  for (const frame of frames.sent) expect(contains(encodeClientMessage(frame), marker)).toBe(false);
  for (const file of filesUnder(dataDir)) expect(contains(readFileSync(file), marker)).toBe(false);
});

test("a late joiner after a reflector restart fetches a handle from the snapshot it starts from", async () => {
  let url = await start();
  const a = await joinShelf(url, "late");
  const handle = await a.data.store(SECRET, { shareable: false });
  const added = files(a, 1);
  a.view.publish("shelf", "add", { handle, name: "late" });
  const { seq } = await added;
  // A snapshot after the handle was added (snapshots are due by stream entries): the late joiner's model comes from it.
  const snapshotted = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (events.some((e) => e.event === "snapshot.stored" && Number(e.fields?.["seq"]) >= seq)) {
        clearInterval(check);
        resolve();
      }
    }, 10);
  });
  for (let n = 0; n < 12; n++) {
    a.view.publish("shelf", "note");
    await new Promise((resolve) => setImmediate(resolve));
  }
  await snapshotted;
  await a.leave();
  sessions.length = 0;
  await reflector!.close();
  url = await start();

  const c = await joinShelf(url, "late");
  expect(c.model.files.length).toBe(1);
  const restored = c.model.files[0]!.handle;
  expect(restored).toBeInstanceOf(DataHandle);
  expect(Data.toId(restored)).toBe(Data.toId(handle));
  expect(sha256(new Uint8Array(await c.data.fetch(restored)))).toBe(sha256(SECRET));
});

test("another password cannot read a session blob, a shareable one opens anywhere, a tampered blob is rejected", async () => {
  const blobs = createMemoryStore();
  const url = await start({ storage: blobs });
  const a = await joinShelf(url, "keys", "pw-one");
  const other = await joinShelf(url, "keys", "pw-two"); // same name, other password: another session
  const handle = await a.data.store(SECRET);
  const shared = await a.data.store(SECRET, { shareable: true });
  expect(shared.shareable).toBe(true);

  await expect(other.data.fetch(handle)).rejects.toBeInstanceOf(DecryptionError);
  expect(sha256(new Uint8Array(await other.data.fetch(Data.toId(shared))))).toBe(sha256(SECRET));

  // Flip one byte of the stored ciphertext.
  const [key] = (await blobs.list("sessions/")).filter((k) => k.includes(`/data/${handle.blob}.`));
  const stored = (await blobs.get(key!))!;
  stored[stored.length - 5]! ^= 0x01;
  await blobs.put(key!, stored);
  const failure = await a.data.fetch(handle).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(DecryptionError);
  expect((failure as Error).message).toMatch(/failed authentication/);
});

test("an oversized blob is refused with a clear error; unauthenticated requests are refused", async () => {
  const url = await start({ caps: { maxDataBytes: 4096 } });
  const a = await joinShelf(url, "caps");
  const failure = await a.data.store(new Uint8Array(10_000)).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(DataError);
  expect((failure as DataError).status).toBe(413);
  expect((failure as Error).message).toMatch(/larger than this reflector's limit of 4096 bytes/);
  const small = await a.data.store(new Uint8Array(100));

  const keys = await deriveSessionKeys("pw-data", a.persistentId, a.id);
  const path = `${httpBase(url)}/data/${keys.wireSessionId}/${small.blob}`;
  expect((await fetch(path)).status).toBe(401);
  expect((await fetch(path, { method: "PUT", body: new Uint8Array(10) })).status).toBe(401);
  const forged = `Bearer ${keys.wireSessionId}.${Buffer.alloc(32, 7).toString("base64url")}`;
  expect((await fetch(path, { headers: { authorization: forged } })).status).toBe(401);
  const good = `Bearer ${keys.wireSessionId}.${Buffer.from(keys.accessToken).toString("base64url")}`;
  const ok = await fetch(path, { headers: { authorization: good } });
  expect(ok.status).toBe(200);
  expect(ok.headers.get("access-control-allow-origin")).toBe("*");
  const preflight = await fetch(path, { method: "OPTIONS" });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get("access-control-allow-headers")).toMatch(/authorization/);
});
