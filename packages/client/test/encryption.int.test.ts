import { DEFAULT_LIMITS, MessageType, decodeClientMessage, decodeServerMessage } from "@lockstep/protocol";
import { createMemoryStore, startReflector, silentLogger, type BlobStore, type Reflector } from "@lockstep/reflector";
import { Model, Session, View, type LockstepSession } from "../src/index";
import { captureWhen, recordingSockets } from "./int-helpers";
import { startProxy } from "./proxy";

const MARKERS = {
  event: "MARKER-event-payload-7f3a",
  viewData: "MARKER-view-data-91c2",
  state: "MARKER-state-value-0b5e",
  password: "MARKER-password-c4d8",
  name: "MARKER-session-name-3e1f",
};

/** Keeps what it is told, so that marker strings become model state too. */
class Vault extends Model {
  notes: string[] = [];
  nicks: string[] = [];
  override init(): void {
    this.subscribe("vault", "note", this.note);
    this.subscribe(this.sessionId, "view-join", this.joined);
  }
  note(text: string): void {
    this.notes.push(text, `${text}:${MARKERS.state}`);
  }
  joined(e: { viewId: string; viewData?: { nick: string } }): void {
    this.nicks.push(e.viewData?.nick ?? e.viewId);
  }
}
Vault.register("EncryptionInt.Vault");

/** Collects the session's error events (view side). */
class ErrorView extends View {
  errors: unknown[] = [];
  #firstError!: () => void;
  /** Resolves with the first error event this view receives. */
  readonly firstError = new Promise<void>((resolve) => (this.#firstError = resolve));
  constructor(model: Vault) {
    super(model);
    this.subscribe(model.sessionId, "error", this.onError);
  }
  onError(e: unknown): void {
    this.errors.push(e);
    this.#firstError();
  }
}

let reflector: Reflector;
beforeAll(async () => {
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });
});
afterAll(() => reflector.close());

function join(url: string, name: string, extra: Record<string, unknown> = {}): Promise<LockstepSession<Vault, ErrorView>> {
  return Session.join({
    appId: "test.lockstep.encryption",
    name,
    password: MARKERS.password,
    model: Vault,
    view: ErrorView,
    reflector: url,
    ...extra,
  }) as Promise<LockstepSession<Vault, ErrorView>>;
}

function containsText(haystack: Uint8Array, needle: string): boolean {
  return Buffer.from(haystack).includes(Buffer.from(needle, "utf8"));
}

test("the reflector receives, stores and sends only ciphertext", async () => {
  // A reflector whose storage records every byte written, and that snapshots often.
  const stored: Uint8Array[] = [];
  const memory = createMemoryStore();
  const storage: BlobStore = {
    get: (key) => memory.get(key),
    put: (key, value) => (stored.push(value.slice()), memory.put(key, value)),
    delete: (key) => memory.delete(key),
    list: (prefix) => memory.list(prefix),
    close: () => memory.close(),
  };
  const recording = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, storage, snapshots: { everyMessages: 5 } });
  const proxy = await startProxy(recording.url);
  try {
    const name = MARKERS.name;
    const a = await join(proxy.url, name, { viewData: { nick: MARKERS.viewData } });
    const b = await join(proxy.url, name);
    const seen = captureWhen(b, () => b.model.notes.length === 2 * 8);
    // Each in its own turn (one entry each: a turn's publishes travel as one), so that a snapshot is due.
    for (let i = 0; i < 8; i++) {
      a.view.publish("vault", "note", MARKERS.event);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await seen;
    expect(b.model.notes.slice(0, 2)).toEqual([MARKERS.event, `${MARKERS.event}:${MARKERS.state}`]);
    expect(b.model.nicks[0]).toBe(MARKERS.viewData);
    // A late joiner is sent everything the reflector stored for the session.
    const late = await join(proxy.url, name);
    expect(late.model.notes).toEqual(b.model.notes);
    // No client frame exceeds the frame limit: uploads travel in chunks.
    const decoded = proxy.frames.map((f) => (f.direction === "toClient" ? decodeServerMessage(f.bytes) : decodeClientMessage(f.bytes, DEFAULT_LIMITS)));
    // The snapshot travelled both ways (uploaded, then synced to the late joiner), and was stored.
    expect(decoded.some((m) => m.type === MessageType.SnapshotChunk)).toBe(true);
    expect(decoded.some((m) => m.type === MessageType.SnapshotUpload)).toBe(false);
    expect(decoded.some((m) => m.type === MessageType.Sync && m.snapshot.length > 0)).toBe(true);
    expect(stored.length).toBeGreaterThan(3);

    expect(proxy.frames.length).toBeGreaterThan(10);
    // The reflector knows the session only by its keyed wire id: the public sessionId never travels.
    const joinFrame = decoded.find((m) => m.type === MessageType.Join);
    expect(joinFrame?.type === MessageType.Join && joinFrame.sessionId).not.toBe(a.id);
    const secrets = { ...MARKERS, sessionId: a.id };
    for (const bytes of [...proxy.frames.map((f) => f.bytes), ...stored]) {
      for (const marker of Object.values(secrets)) expect({ marker, found: containsText(bytes, marker) }).toEqual({ marker, found: false });
    }
    await Promise.all([a.leave(), b.leave(), late.leave()]);
  } finally {
    await proxy.close();
    await recording.close();
  }
});

test("two passwords give two isolated sessions: the other password's client gets its own new session, and neither sees the other", async () => {
  const sockets = recordingSockets();
  const a = await join(reflector.url, "guarded", { socket: sockets.factory });
  const b = await join(reflector.url, "guarded");
  const seenA = [a, b].map((s) => captureWhen(s, () => s.model.notes.length === 2));
  a.view.publish("vault", "note", "for the right password");
  await Promise.all(seenA);
  // No error: a wrong password cannot be told apart from a new session, by anyone.
  const other = await join(reflector.url, "guarded", { password: "not-the-password", socket: sockets.factory });
  expect(other.id).toBe(a.id); // the same public ids: same appId, name, options and code
  expect(other.persistentId).toBe(a.persistentId);
  const [joinA, joinOther] = sockets.joins();
  expect(joinOther!.sessionId).not.toBe(joinA!.sessionId); // but another session on the reflector
  expect(joinOther!.persistentId).toBe(joinA!.persistentId);
  expect(other.model.notes).toEqual([]);
  expect(other.model.viewCount).toBe(1);
  expect(other.view.errors).toEqual([]);

  const seenOther = captureWhen(other, () => other.model.notes.length === 2);
  other.view.publish("vault", "note", "for the other password");
  const seenAgain = [a, b].map((s) => captureWhen(s, () => s.model.notes.length === 4));
  a.view.publish("vault", "note", "still fine");
  const [pa, pb] = await Promise.all(seenAgain);
  await seenOther;
  expect(pa!.hash).toBe(pb!.hash);
  expect(a.model.notes.filter((n) => !n.includes(":"))).toEqual(["for the right password", "still fine"]);
  expect(other.model.notes.filter((n) => !n.includes(":"))).toEqual(["for the other password"]);
  // Neither session saw the other's client join.
  expect(a.model.viewCount).toBe(2);
  expect(a.model.nicks).toHaveLength(2);
  expect(other.model.nicks).toHaveLength(1);
  await Promise.all([a.leave(), b.leave(), other.leave()]);
});

test("a relayed message sent again (captured ciphertext replayed to the reflector) is dropped by every replica, reported once, and the replicas stay identical", async () => {
  // Every Send (and SendBatch: its publishes of one turn) of the client behind the proxy reaches the reflector twice.
  const proxy = await startProxy(reflector.url, { replay: (frame) => frame[1] === MessageType.Send || frame[1] === MessageType.SendBatch });
  const warnings: unknown[] = [];
  const warn = jest.spyOn(console, "warn").mockImplementation((...args) => void warnings.push(args));
  try {
    const sender = await join(proxy.url, "replayed");
    const other = await join(reflector.url, "replayed");
    const all = [sender, other];
    const NOTES = 5;
    const done = all.map((s) => captureWhen(s, () => s.model.notes.includes("end")));
    for (let i = 0; i < NOTES; i++) sender.view.publish("vault", "note", `n${i}`);
    sender.view.publish("vault", "note", "end");
    const [ps, po] = await Promise.all(done);
    // Each note once, although each was relayed twice.
    for (const s of all) expect(s.model.notes.filter((n) => !n.includes(":"))).toEqual(["n0", "n1", "n2", "n3", "n4", "end"]);
    // The copy of "end" comes right after it: compare again once both replicas processed it too.
    const after = all.map((s) => captureWhen(s, () => s.model.notes.includes("after")));
    other.view.publish("vault", "note", "after");
    const [as, ao] = await Promise.all(after);
    expect(ps!.hash).toBe(po!.hash);
    expect(as!.seq).toBe(ao!.seq);
    expect(as!.hash).toBe(ao!.hash);
    await Promise.all(all.map((s) => s.view.firstError));
    for (const s of all) expect(s.view.errors).toEqual([expect.objectContaining({ kind: "replay", sessionId: s.id })]);
    expect(warnings).toHaveLength(2); // one per client
    await Promise.all(all.map((s) => s.leave()));
  } finally {
    warn.mockRestore();
    await proxy.close();
  }
});

test("tampered relayed payloads are dropped identically, reported once, and replicas with the same frames stay identical", async () => {
  // Flip one bit in the payload of every third relayed message reaching clients behind the proxy.
  const proxy = await startProxy(reflector.url, {
    tamper: (frame) => {
      const msg = decodeServerMessage(frame);
      if (msg.type !== MessageType.Relay || msg.seq % 3 !== 0) return frame;
      const out = frame.slice();
      out[out.length - 1]! ^= 0x01;
      return out;
    },
  });
  const warnings: unknown[] = [];
  const warn = jest.spyOn(console, "warn").mockImplementation((...args) => void warnings.push(args));
  try {
    const direct1 = await join(reflector.url, "tampered");
    const direct2 = await join(reflector.url, "tampered");
    const behind1 = await join(proxy.url, "tampered");
    const behind2 = await join(proxy.url, "tampered");
    const all = [direct1, direct2, behind1, behind2];
    const NOTES = 30;
    const done = all.map((s) => captureWhen(s, () => s.model.notes.includes("end")));
    for (let i = 0; i < NOTES; i++) all[i % all.length]!.view.publish("vault", "note", `n${i}`);
    // The last note must get through the tampering (its seq is not a multiple of 3): resend until it does.
    all[0]!.view.publish("vault", "note", "end");
    all[0]!.view.publish("vault", "note", "end");
    all[0]!.view.publish("vault", "note", "end");
    const points = await Promise.all(done);
    // Replicas that received the same frames agree; the tampered ones lost exactly the tampered messages.
    expect(points[0]!.hash).toBe(points[1]!.hash);
    expect(points[2]!.hash).toBe(points[3]!.hash);
    expect(points[2]!.seq).toBe(points[3]!.seq);
    expect(behind1.model.notes.length).toBeLessThan(direct1.model.notes.length);
    expect(behind1.model.notes.every((n) => direct1.model.notes.includes(n))).toBe(true);
    // Reported once per session: one error event to views, one console warning, per tampered client.
    await Promise.all([behind1.view.firstError, behind2.view.firstError]);
    expect(behind1.view.errors).toEqual([expect.objectContaining({ kind: "decryption", sessionId: behind1.id })]);
    expect(behind2.view.errors).toHaveLength(1);
    expect(direct1.view.errors).toHaveLength(0);
    expect(warnings).toHaveLength(2);
    await Promise.all(all.map((s) => s.leave()));
  } finally {
    warn.mockRestore();
    await proxy.close();
  }
});
