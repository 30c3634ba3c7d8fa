/**
 * Bulk data in version-2 envelopes (AES-256-GCM), end to end on a real reflector: what clients
 * upload (snapshots, the base slot's persisted data) is version 2; a joiner boots from it; data
 * an earlier release stored as version 1 (secretbox) still boots a joiner and still starts a new
 * code version; a tampered snapshot fails the join with the usual JoinError.
 *
 * The earlier release is simulated by a socket that re-seals the uploads of a current client as
 * version 1 on their way out (synchronously, with node:crypto and the same derivations), so the
 * reflector stores exactly what an old client would have uploaded.
 */
import { createDecipheriv } from "node:crypto";
import { DEFAULT_LIMITS, MessageType, decodeClientMessage, decodeServerMessage, encodeClientMessage, encodeServerMessage } from "@lockstep/protocol";
import { startReflector, type Logger, type Reflector } from "@lockstep/reflector";
import { Model, Session, View, type LockstepSession } from "../src/index";
import { uploadChunks } from "../src/session/chunks";
import { defaultSocketFactory, type SocketFactory } from "../src/session/connection";
import { deriveMasterKey, deriveSessionKeys, deriveSubkey, hmacSha512, seal, slotKeys } from "../src/session/crypto";
import { sessionSlotOf } from "../src/session/persist-uploads";
import { captureWhen } from "./int-helpers";
import { startProxy } from "./proxy";

const APP = "test.lockstep.bulk-envelopes";
const PASSWORD = "bulk pw";
const utf8 = new TextEncoder();

/** A log of what it is told, saved as the session's persisted data. */
class Ledger extends Model {
  static persistDelay = 10;
  lines: string[] = [];
  restored: unknown = null;
  override init(_options: unknown, persisted?: unknown): void {
    this.restored = persisted ?? null;
    this.subscribe("ledger", "add", this.add);
  }
  add(line: string): void {
    this.lines.push(line);
    this.persistSession(() => ({ lines: this.lines }));
  }
}
Ledger.register("BulkEnvelopes.Ledger");

type Event = { event: string; fields: Record<string, unknown> };
const events: Event[] = [];
const waiters: Array<{ pred: (e: Event) => boolean; resolve: () => void }> = [];
const record = (event: string, fields: Record<string, unknown> = {}): void => {
  const e = { event, fields };
  events.push(e);
  for (const w of waiters.splice(0)) (w.pred(e) ? w.resolve : () => waiters.push(w))();
};
const logger: Logger = { info: record, warn: record, error: record };
function nextEvent(pred: (e: Event) => boolean): Promise<void> {
  return new Promise((resolve) => waiters.push({ pred, resolve }));
}

let reflector: Reflector;
beforeAll(async () => {
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger, snapshots: { everyMessages: 20, voteTimeoutMs: 2000 } });
});
afterAll(() => reflector.close());

function join(name: string, extra: Record<string, unknown> = {}): Promise<LockstepSession<Ledger, View>> {
  return Session.join({ appId: APP, name, password: PASSWORD, model: Ledger, view: View, reflector: reflector.url, ...extra }) as Promise<LockstepSession<Ledger, View>>;
}

/** Publishes `count` lines, each in its own turn (one stream entry each: snapshots are due by entries). */
async function addLines(session: LockstepSession<Ledger, View>, prefix: string, count: number): Promise<void> {
  for (let n = 0; n < count; n++) {
    session.view.publish("ledger", "add", `${prefix}${n}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Opens a version-2 envelope synchronously, as a test can with the raw key bits. */
function openV2(aesKey: Uint8Array, envelope: Uint8Array): Uint8Array {
  expect(envelope[0]).toBe(2);
  const decipher = createDecipheriv("aes-256-gcm", aesKey, envelope.subarray(1, 13));
  decipher.setAAD(Uint8Array.of(2));
  decipher.setAuthTag(envelope.subarray(envelope.length - 16));
  return new Uint8Array(Buffer.concat([decipher.update(envelope.subarray(13, envelope.length - 16)), decipher.final()]));
}

/**
 * A socket factory for a client of an earlier release: every SnapshotChunk and PersistChunk upload
 * leaves re-sealed as a version-1 envelope (its chunks buffered until the upload is complete).
 * `keys` resolves the raw keys once the session's ids are known.
 */
function earlierRelease(keys: () => { snapshotBox: Uint8Array; snapshotAes: Uint8Array; slot: string; slotBox: Uint8Array; slotAes: Uint8Array }) {
  const rewritten: Array<{ type: number; total: number; first: number }> = [];
  const factory: SocketFactory = async (url) => {
    const socket = await defaultSocketFactory(url);
    const send = socket.send.bind(socket);
    const parts = new Map<string, Uint8Array[]>();
    socket.send = (data: Uint8Array) => {
      const msg = decodeClientMessage(data, DEFAULT_LIMITS);
      if (msg.type !== MessageType.SnapshotChunk && msg.type !== MessageType.PersistChunk) return send(data);
      const id = msg.type === MessageType.SnapshotChunk ? `s${msg.seq}` : `p${msg.slot}@${msg.seq}`;
      const got = [...(parts.get(id) ?? []), msg.data];
      parts.set(id, got);
      if (msg.offset + msg.data.length < msg.total) return;
      parts.delete(id);
      const envelope = Buffer.concat(got);
      const k = keys();
      const old =
        msg.type === MessageType.SnapshotChunk ? seal(k.snapshotBox, openV2(k.snapshotAes, envelope)) : seal(k.slotBox, openV2(k.slotAes, envelope));
      rewritten.push({ type: msg.type, total: old.length, first: old[0]! });
      for (const { offset, data: chunk } of uploadChunks(old)) send(encodeClientMessage({ ...msg, total: old.length, offset, data: chunk }));
    };
    return socket;
  };
  return { factory, rewritten };
}

/** The raw bytes behind a session's bulk keys (what deriveSessionKeys and Persister derive). */
async function rawKeys(persistentId: string, sessionId: string) {
  const keys = await deriveSessionKeys(PASSWORD, persistentId, sessionId);
  const master = await deriveMasterKey(PASSWORD, persistentId);
  const slot = sessionSlotOf(keys.persistMaster);
  return {
    snapshotBox: keys.snapshot.box,
    snapshotAes: await deriveSubkey(master, `lockstep/v2/snapshot-aes/${sessionId}`),
    slot,
    slotBox: slotKeys(keys.persistMaster, slot).enc,
    slotAes: hmacSha512(keys.persistMaster, utf8.encode(`lockstep/v2/persist/enc-aes/${slot}`)).subarray(0, 32),
  };
}

test("snapshots and the base slot's data are uploaded as version-2 envelopes, and a late joiner boots from them identical", async () => {
  const uploads: Array<{ type: number; first: number; size: number; total: number }> = [];
  const factory: SocketFactory = async (url) => {
    const socket = await defaultSocketFactory(url);
    const send = socket.send.bind(socket);
    socket.send = (data: Uint8Array) => {
      const msg = decodeClientMessage(data, DEFAULT_LIMITS);
      if (msg.type === MessageType.SnapshotChunk && msg.offset === 0) uploads.push({ type: msg.type, first: msg.data[0]!, size: 0, total: msg.total });
      if (msg.type === MessageType.PersistChunk && msg.offset === 0) uploads.push({ type: msg.type, first: msg.data[0]!, size: msg.size, total: msg.total });
      send(data);
    };
    return socket;
  };
  const a = await join("v2", { socket: factory });
  const snapshotted = nextEvent((e) => e.event === "snapshot.stored");
  await addLines(a, "a", 30);
  await snapshotted;
  await a.flushPersistence();
  const snapshots = uploads.filter((u) => u.type === MessageType.SnapshotChunk);
  const saves = uploads.filter((u) => u.type === MessageType.PersistChunk);
  expect(snapshots.length).toBeGreaterThan(0);
  expect(saves.length).toBeGreaterThan(0);
  for (const u of [...snapshots, ...saves]) expect(u.first).toBe(2);
  for (const u of saves) expect(u.total).toBe(u.size + 29);

  const late = await join("v2");
  const points = [a, late].map((s) => captureWhen(s, () => s.model.lines.includes("end")));
  a.view.publish("ledger", "add", "end");
  const [pa, pl] = await Promise.all(points);
  expect(pl!.seq).toBe(pa!.seq);
  expect(pl!.hash).toBe(pa!.hash);
  await Promise.all([a.leave(), late.leave()]);
});

test("a snapshot and persisted data an earlier release stored as version 1 still boot a joiner and start a new code version", async () => {
  let keys: Awaited<ReturnType<typeof rawKeys>> | undefined;
  const old = earlierRelease(() => keys!);
  const a = await join("old", { socket: old.factory });
  // Nothing is uploaded before the first publish: the ids of the session are known by then.
  keys = await rawKeys(a.persistentId, a.id);
  const snapshotted = nextEvent((e) => e.event === "snapshot.stored");
  await addLines(a, "old", 30);
  await snapshotted;
  await a.flushPersistence();
  expect(old.rewritten.some((r) => r.type === MessageType.SnapshotChunk)).toBe(true);
  expect(old.rewritten.some((r) => r.type === MessageType.PersistChunk)).toBe(true);
  expect(old.rewritten.every((r) => r.first === 1)).toBe(true);
  // What the reflector stored are the version-1 envelopes: their sizes are the rewritten uploads'.
  const lastSnapshot = [...old.rewritten].reverse().find((r) => r.type === MessageType.SnapshotChunk)!;
  expect(events.filter((e) => e.event === "snapshot.stored").map((e) => e.fields.bytes)).toContain(lastSnapshot.total);

  // A current client joins from the version-1 snapshot (plus the log since) and ends identical.
  const synced: number[] = [];
  const proxy = await startProxy(reflector.url, {
    tamper: (frame) => {
      const msg = decodeServerMessage(frame);
      if (msg.type === MessageType.Sync) synced.push(msg.snapshot[0] ?? 0);
      return frame;
    },
  });
  const b = await join("old", { reflector: proxy.url });
  expect(synced).toEqual([1]);
  const points = [a, b].map((s) => captureWhen(s, () => s.model.lines.includes("check")));
  a.view.publish("ledger", "add", "check");
  const [pa, pb] = await Promise.all(points);
  expect(pb!.hash).toBe(pa!.hash);
  expect(b.model.lines.filter((l) => l.startsWith("old"))).toHaveLength(30);
  // The earlier release stays the first view (the uploader) until it leaves, after b.
  await a.flushPersistence();
  await b.leave();
  await a.leave();
  await proxy.close();
  const saves = events.filter((e) => e.event === "persist.stored" && e.fields.slot === keys!.slot);
  const last = saves[saves.length - 1]!;
  expect(last.fields.bytes).toBe((last.fields.size as number) + 41);

  // A new code version of the name (another sessionId, same persisted slot) starts from the version-1 data.
  const next = await join("old", { options: { codeVersion: 2 } });
  expect(next.id).not.toBe(a.id);
  expect(next.model.restored).toEqual({ lines: [...Array.from({ length: 30 }, (_, n) => `old${n}`), "check"] });
  await next.leave();
});

test("a tampered version-2 snapshot fails the join with the snapshot's JoinError", async () => {
  const a = await join("tampered");
  const snapshotted = nextEvent((e) => e.event === "snapshot.stored");
  await addLines(a, "t", 30);
  await snapshotted;
  const tampered: number[] = [];
  const proxy = await startProxy(reflector.url, {
    tamper: (frame) => {
      const msg = decodeServerMessage(frame);
      if (msg.type !== MessageType.Sync || msg.snapshot.length === 0) return frame;
      const snapshot = msg.snapshot.slice();
      snapshot[snapshot.length >> 1]! ^= 0x10;
      tampered.push(msg.snapshot[0]!);
      return encodeServerMessage({ ...msg, snapshot });
    },
  });
  try {
    await expect(join("tampered", { reflector: proxy.url })).rejects.toThrow(
      new RegExp(`^the snapshot of session ${a.id} could not be decrypted \\(tampered, or another key\\): envelope failed authentication`),
    );
    expect(tampered).toEqual([2]); // one Sync, carrying a version-2 snapshot
  } finally {
    await proxy.close();
    await a.leave();
  }
});
