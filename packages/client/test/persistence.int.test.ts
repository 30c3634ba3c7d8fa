/**
 * Persistence across code versions, on a real reflector: the seeds' DocumentEditor story (v1 saves,
 * everyone leaves, v2 code joins the same appId + name and migrates), and what must never happen:
 * a corrupt blob or a wrong password overwriting data, an acknowledged save lost to kill -9.
 * The session's data lives in a slot named from the password (not the public persistentId).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { WebSocket } from "ws";
import {
  DEFAULT_LIMITS,
  MessageType,
  PersistOutcome,
  decodeServerMessage,
  encodeClientMessage,
  encodeJoinAuth,
  type PersistChunkMessage,
  type ServerMessage,
} from "@lockstep/protocol";
import { PersistStore, createFsStore, startReflector, silentLogger, type Logger, type Reflector } from "@lockstep/reflector";
import type { Model as ModelType } from "../src/index";
import { captureWhen, mulberry32, recordingSockets, sessionSlot, testSeed } from "./int-helpers";
import { startReflectorProcess } from "./reflector-process";

type ClientModule = typeof import("../src/index");
type Doc = { title: string; body: string; tags?: string[] };

/**
 * One code version of the seeds' document editor, loaded into its own module registry so that
 * several versions can live in one test process. v1 saves Map-based documents as entry arrays
 * (format 1); v2 adds tags and metadata (format 2) and follows the seeds' SafeModel pattern.
 */
function editor(version: 1 | 2 | 3): { client: ClientModule; cls: typeof ModelType } {
  let out!: { client: ClientModule; cls: typeof ModelType };
  jest.isolateModules(() => {
    const client = require("../src/index") as ClientModule;
    class DocumentEditorV1 extends client.Model {
      documents = new Map<string, Doc>();
      restoredFrom: unknown = null;
      override init(_options: unknown, persisted?: { version: number; documents: Array<[string, Doc]> }): void {
        if (persisted) {
          this.documents = new Map(persisted.documents);
          this.restoredFrom = persisted.version;
        }
        this.subscribe("docs", "add", this.addDocument);
      }
      addDocument(doc: Doc & { id: string }): void {
        this.documents.set(doc.id, { title: doc.title, body: doc.body });
        this.save();
      }
      save(): void {
        this.persistSession(() => ({ version: 1, documents: Array.from(this.documents.entries()) }));
      }
    }
    class DocumentEditorV2 extends client.Model {
      documents = new Map<string, Doc>();
      metadata: Record<string, unknown> = {};
      loadingPersistentData?: boolean;
      loadingPersistentDataErrored?: boolean;
      override init(_options: unknown, persisted?: unknown): void {
        if (persisted) {
          delete this.loadingPersistentDataErrored;
          this.loadingPersistentData = true;
          try {
            this.fromSavedData(persisted as { version?: number; documents?: Array<[string, Doc]>; metadata?: Record<string, unknown> });
          } catch {
            this.loadingPersistentDataErrored = true;
            this.documents = new Map();
          } finally {
            delete this.loadingPersistentData;
          }
        }
        this.subscribe("docs", "add", this.addDocument);
      }
      fromSavedData(persisted: { version?: number; documents?: Array<[string, Doc]>; metadata?: Record<string, unknown> }): void {
        if (!persisted.version) throw new Error("Missing version in persistent data");
        if (persisted.version > 2) throw new Error(`Unsupported version: ${persisted.version}`);
        // Format 1 had no tags: migrate every document.
        const docs = (persisted.documents ?? []).map(([id, d]): [string, Doc] => [id, { ...d, tags: d.tags ?? [] }]);
        this.documents = new Map(docs);
        this.metadata = { ...(persisted.metadata ?? {}), migratedFrom: persisted.version };
      }
      addDocument(doc: Doc & { id: string }): void {
        this.documents.set(doc.id, { title: doc.title, body: doc.body, tags: doc.tags ?? [] });
        this.save();
      }
      save(): void {
        if (this.loadingPersistentData || this.loadingPersistentDataErrored) return;
        this.persistSession(() => ({ version: 2, documents: Array.from(this.documents.entries()), metadata: this.metadata }));
      }
    }
    // v3 only differs from v2 in its source text: a third code version of the same app.
    class DocumentEditorV3 extends DocumentEditorV2 {
      readonly generation = 3;
    }
    const cls = version === 1 ? DocumentEditorV1 : version === 2 ? DocumentEditorV2 : DocumentEditorV3;
    cls.register("PersistInt.DocumentEditor");
    out = { client, cls };
  });
  return out;
}

const opts = { appId: "test.lockstep.persist", password: "correct horse" };

let dataDir: string;
let reflector: Reflector | undefined;
const events: string[] = [];
const logger: Logger = { ...silentLogger, info: (event: string) => void events.push(event), warn: (event: string) => void events.push(event) };

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "lockstep-persist-"));
  events.length = 0;
});
afterEach(async () => {
  await reflector?.close();
  reflector = undefined;
  rmSync(dataDir, { recursive: true, force: true });
  jest.restoreAllMocks();
});

async function start(): Promise<string> {
  reflector = await startReflector({ port: 0, logger, dataDir });
  return reflector.url;
}

/** Captures `[Lockstep]` console lines; `next(prefix)` resolves when one starting with it is printed. */
function sessionLog(): { lines: string[]; next(prefix: string): Promise<string> } {
  const lines: string[] = [];
  const waiters: Array<[string, (line: string) => void]> = [];
  jest.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
    const line = args.map(String).join(" ");
    lines.push(line);
    for (const [prefix, resolve] of waiters.splice(0)) {
      if (line.startsWith(prefix)) resolve(line);
      else waiters.push([prefix, resolve]);
    }
  });
  return {
    lines,
    next: (prefix) => new Promise((resolve) => waiters.push([prefix, resolve])),
  };
}

function add(session: { view: { publish(scope: string, event: string, data: unknown): void } }, id: string, title: string): void {
  session.view.publish("docs", "add", { id, title, body: `${title} body` });
}

/** v1 writes three documents and saves them (the automatic, delayed save); everyone leaves. */
async function v1Saves(url: string, name: string, log: ReturnType<typeof sessionLog>): Promise<{ sessionId: string; persistentId: string }> {
  const v1 = editor(1);
  const a = await v1.client.Session.join({ ...opts, name, model: v1.cls as never, view: v1.client.View, reflector: url, debug: "session" });
  const b = await v1.client.Session.join({ ...opts, name, model: v1.cls as never, view: v1.client.View, reflector: url });
  const saved = log.next("[Lockstep] Persistent data saved");
  add(a, "d1", "Plans");
  add(b, "d2", "Notes");
  add(a, "d3", "Ideas");
  expect(await saved).toMatch(/^\[Lockstep\] Persistent data saved \(\d+B\)$/);
  const ids = { sessionId: a.id, persistentId: a.persistentId };
  await Promise.all([a.leave(), b.leave()]);
  return ids;
}

test("the seed's story: v1 saves, everyone leaves, v2 joins the same name, init gets v1's data and migrates it; a later v2 joiner ends identical", async () => {
  const url = await start();
  const log = sessionLog();
  const v1ids = await v1Saves(url, "story", log);
  expect(events.filter((e) => e === "persist.stored").length).toBeGreaterThanOrEqual(1);

  const v2 = editor(2);
  const c = await v2.client.Session.join({ ...opts, name: "story", model: v2.cls as never, view: v2.client.View, reflector: url, debug: "session" });
  expect(c.persistentId).toBe(v1ids.persistentId);
  expect(c.id).not.toBe(v1ids.sessionId);
  expect(log.lines).toContain(`[Lockstep] Session loaded from persistent data (persistentId: ${c.persistentId})`);
  expect(log.lines.some((l) => /^\[Lockstep\] Restoring \d+B of persistent data$/.test(l))).toBe(true);
  expect(log.lines.some((l) => l.startsWith(`[Lockstep] Joining session (sessionId: ${c.id}, persistentId: ${c.persistentId}, versionId: ${c.versionId}`))).toBe(true);
  const model = c.model as unknown as { documents: Map<string, Doc>; metadata: Record<string, unknown> };
  // Two clients published concurrently: the reflector's order decides, whatever it was.
  expect([...model.documents.keys()].sort()).toEqual(["d1", "d2", "d3"]);
  expect(model.documents.get("d2")).toEqual({ title: "Notes", body: "Notes body", tags: [] });
  expect(model.metadata).toEqual({ migratedFrom: 1 });

  // Before the first snapshot, a later joiner replays from init with the same persisted data.
  const d = await v2.client.Session.join({ ...opts, name: "story", model: v2.cls as never, view: v2.client.View, reflector: url });
  const points = [c, d].map((s) => captureWhen(s, () => (s.model as unknown as { documents: Map<string, Doc> }).documents.size === 4));
  add(d, "d4", "v2 only");
  const [pc, pd] = await Promise.all(points);
  expect(pc!.seq).toBe(pd!.seq);
  expect(pc!.hash).toBe(pd!.hash);
  await Promise.all([c.leave(), d.leave()]);
});

test("a leaving client flushes a save still waiting for its delay; identical data is stored once", async () => {
  const url = await start();
  let client!: ClientModule;
  let cls!: typeof ModelType;
  jest.isolateModules(() => {
    client = require("../src/index") as ClientModule;
    class Slow extends client.Model {
      static persistDelay = 60_000;
      text = "";
      override init(_o: unknown, persisted?: { text: string }): void {
        this.text = persisted?.text ?? "";
        this.subscribe("t", "set", this.set);
      }
      set(text: string): void {
        this.text = text;
        this.persistSession(() => ({ text: this.text }));
      }
    }
    Slow.register("PersistInt.Slow");
    cls = Slow;
  });
  const a = await client.Session.join({ ...opts, name: "flush", model: cls as never, view: client.View, reflector: url });
  const set = captureWhen(a, () => (a.model as unknown as { text: string }).text === "kept");
  a.view.publish("t", "set", "kept");
  await set;
  expect(events).not.toContain("persist.stored"); // a minute of model time has not passed
  await a.leave();
  expect(events.filter((e) => e === "persist.stored")).toHaveLength(1);

  const b = await client.Session.join({ ...opts, name: "flush", model: cls as never, view: client.View, reflector: url });
  expect((b.model as unknown as { text: string }).text).toBe("kept"); // the same session: from its log
  const again = captureWhen(b, () => true);
  b.view.publish("t", "set", "kept");
  await again;
  await b.flushPersistence();
  expect(events.filter((e) => e === "persist.stored")).toHaveLength(1);
  expect(events).toContain("persist.unchanged");
  await b.leave();
  await reflector!.close();
  reflector = undefined;
  const blobs = await createFsStore(dataDir);
  const slots = await new PersistStore(blobs).slots();
  const slot = await sessionSlot(opts.password, a.persistentId);
  expect(slot).not.toBe(a.persistentId);
  expect(slots).toEqual([slot]);
  expect(await new PersistStore(blobs).versions(slot)).toHaveLength(1);
  await blobs.close();
});

test("a wrong password reaches another, empty session whose saves go to another slot; the right one still gets its data", async () => {
  const url = await start();
  const log = sessionLog();
  const { persistentId } = await v1Saves(url, "pw", log);
  const v2 = editor(2);
  const docs = (s: { model: unknown }) => (s.model as unknown as { documents: Map<string, Doc> }).documents;
  // Nobody can tell it from a new session: no error, no data, and its own saves land elsewhere.
  const wrong = await v2.client.Session.join({ ...opts, password: "wrong", name: "pw", model: v2.cls as never, view: v2.client.View, reflector: url });
  expect(docs(wrong).size).toBe(0);
  const added = captureWhen(wrong, () => docs(wrong).size === 1);
  add(wrong, "w1", "Intruder");
  await added;
  await wrong.leave(); // flushes its save: into the wrong password's slot
  const right = await v2.client.Session.join({ ...opts, name: "pw", model: v2.cls as never, view: v2.client.View, reflector: url });
  expect([...docs(right).keys()].sort()).toEqual(["d1", "d2", "d3"]);
  await right.leave();
  await reflector!.close();
  reflector = undefined;
  const blobs = await createFsStore(dataDir);
  const store = new PersistStore(blobs);
  const [rightSlot, wrongSlot] = await Promise.all([sessionSlot(opts.password, persistentId), sessionSlot("wrong", persistentId)]);
  expect(rightSlot).not.toBe(wrongSlot);
  expect((await store.slots()).sort()).toEqual([rightSlot, wrongSlot].sort());
  expect(await store.versions(wrongSlot)).toHaveLength(1);
  await blobs.close();
});

test("a corrupt blob fails the join naming the persistentId and is not overwritten; a rollback to the previous version recovers", async () => {
  let url = await start();
  const log = sessionLog();
  const { persistentId } = await v1Saves(url, "corrupt", log);
  const slot = await sessionSlot(opts.password, persistentId);
  // A second v1 version: one more document, saved when the writer leaves.
  const v1 = editor(1);
  const a = await v1.client.Session.join({ ...opts, name: "corrupt", model: v1.cls as never, view: v1.client.View, reflector: url });
  const added = captureWhen(a, () => (a.model as unknown as { documents: Map<string, Doc> }).documents.size === 4);
  add(a, "d4", "Later");
  await added;
  await a.leave();
  await reflector!.close();

  let blobs = await createFsStore(dataDir);
  let store = new PersistStore(blobs);
  const versions = await store.versions(slot);
  expect(versions.map((v) => v.version)).toEqual([1, 2]);
  const key = `persist/${slot}/v/${"2".padStart(16, "0")}`;
  const record = (await blobs.get(key))!;
  record[record.length - 5]! ^= 0xff; // inside the envelope: authentication must fail
  await blobs.put(key, record);
  await blobs.close();

  url = await start();
  const v2 = editor(2);
  const failed = v2.client.Session.join({ ...opts, name: "corrupt", model: v2.cls as never, view: v2.client.View, reflector: url });
  await expect(failed).rejects.toThrow(new RegExp(`persisted data of persistentId ${persistentId} could not be decrypted.*Nothing was overwritten.*persist list ${slot}`));
  await reflector!.close();

  blobs = await createFsStore(dataDir);
  store = new PersistStore(blobs);
  expect(await blobs.get(key)).toEqual(record);
  expect((await store.versions(slot)).map((v) => v.version)).toEqual([1, 2]);
  expect(await store.rollback(slot, 1)).toBe(3);
  await blobs.close();

  url = await start();
  const v3 = editor(3); // the v2 session is stuck on the data it started from; the next code version picks up the rollback
  const c = await v3.client.Session.join({ ...opts, name: "corrupt", model: v3.cls as never, view: v3.client.View, reflector: url });
  expect([...(c.model as unknown as { documents: Map<string, Doc> }).documents.keys()].sort()).toEqual(["d1", "d2", "d3"]);
  await c.leave();
});

test("a reflector killed right after acknowledging a save loses nothing", async () => {
  const first = await startReflectorProcess(["--data-dir", dataDir]);
  const v1 = editor(1);
  const a = await v1.client.Session.join({ ...opts, name: "kill", model: v1.cls as never, view: v1.client.View, reflector: first.url });
  const added = captureWhen(a, () => (a.model as unknown as { documents: Map<string, Doc> }).documents.size === 2);
  add(a, "k1", "One");
  add(a, "k2", "Two");
  await added;
  jest.spyOn(console, "error").mockImplementation(() => undefined);
  await a.flushPersistence(); // resolves on the reflector's durable acknowledgement
  await first.kill9();
  await a.leave().catch(() => undefined);

  const second = await startReflectorProcess(["--data-dir", dataDir]);
  try {
    const v2 = editor(2);
    const b = await v2.client.Session.join({ ...opts, name: "kill", model: v2.cls as never, view: v2.client.View, reflector: second.url });
    expect([...(b.model as unknown as { documents: Map<string, Doc> }).documents.keys()]).toEqual(["k1", "k2"]);
    await b.leave();
  } finally {
    await second.stop();
  }
});

test("persistSession outside the root model is a clear error", async () => {
  const url = await start();
  let client!: ClientModule;
  let Root!: typeof ModelType;
  jest.isolateModules(() => {
    client = require("../src/index") as ClientModule;
    class Child extends client.Model {
      override init(): void {
        this.persistSession(() => ({}));
      }
    }
    Child.register("PersistInt.Child");
    class RootModel extends client.Model {
      error = "";
      override init(): void {
        this.subscribe("r", "spawn", this.spawn);
      }
      spawn(): void {
        try {
          Child.create();
        } catch (e) {
          this.error = (e as Error).message;
        }
      }
    }
    RootModel.register("PersistInt.Root");
    Root = RootModel;
  });
  const s = await client.Session.join({ ...opts, name: "child", model: Root as never, view: client.View, reflector: url });
  const done = captureWhen(s, () => (s.model as unknown as { error: string }).error !== "");
  s.view.publish("r", "spawn", null);
  await done;
  expect((s.model as unknown as { error: string }).error).toMatch(/persistSession\(\) belongs to the root model; Child is not it/);
  await s.leave();
});

/** A root model that saves what it is sent, with a minute's delay (so only a flush saves it). */
function slowSaver(): { client: ClientModule; cls: typeof ModelType } {
  let out!: { client: ClientModule; cls: typeof ModelType };
  jest.isolateModules(() => {
    const client = require("../src/index") as ClientModule;
    class Saver extends client.Model {
      static persistDelay = 60_000;
      texts: string[] = [];
      override init(_o: unknown, persisted?: { texts: string[] }): void {
        this.texts = persisted?.texts ?? [];
        this.subscribe("s", "add", this.add);
      }
      add(text: string): void {
        this.texts.push(text);
        this.persistSession(() => ({ texts: this.texts }));
      }
    }
    Saver.register("PersistInt.Saver");
    out = { client, cls: Saver };
  });
  return out;
}

test("persisted data larger than a chunk is uploaded in chunks, and the next code version starts from all of it", async () => {
  const url = await start();
  const random = mulberry32(testSeed("big persisted data"));
  const v1 = slowSaver();
  const sockets = recordingSockets();
  const a = await v1.client.Session.join({ ...opts, name: "big", model: v1.cls as never, view: v1.client.View, reflector: url, socket: sockets.factory });
  const texts = Array.from({ length: 6 }, () => Array.from({ length: 200 * 1024 }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join(""));
  const added = captureWhen(a, () => (a.model as unknown as { texts: string[] }).texts.length === texts.length);
  for (const t of texts) a.view.publish("s", "add", t);
  await added;
  await a.leave(); // the flush uploads ~1.2 MB
  const chunks = sockets.sent.filter((m): m is PersistChunkMessage => m.type === MessageType.PersistChunk);
  expect(sockets.sent.some((m) => m.type === MessageType.PersistUpload)).toBe(false);
  expect(chunks.length).toBeGreaterThan(2);
  let offset = 0;
  for (const c of chunks) {
    expect(c.offset).toBe(offset);
    expect(c.total).toBe(chunks[0]!.total);
    expect(c.data.length).toBeLessThanOrEqual(DEFAULT_LIMITS.maxChunkBytes);
    offset += c.data.length;
  }
  expect(offset).toBe(chunks[0]!.total);
  expect(events.filter((e) => e === "persist.stored")).toHaveLength(1);

  // Other options: a new session of the same name, which starts from the persisted data.
  const next = slowSaver();
  const b = await next.client.Session.join({ ...opts, name: "big", options: { v: 2 }, model: next.cls as never, view: next.client.View, reflector: url });
  expect(b.id).not.toBe(a.id);
  expect((b.model as unknown as { texts: string[] }).texts).toEqual(texts);
  await b.leave();
});

test("only the first view uploads persisted data: another view's flush sends nothing and resolves at once", async () => {
  const url = await start();
  const m = slowSaver();
  const firstSockets = recordingSockets();
  const otherSockets = recordingSockets();
  const join = (socket: ReturnType<typeof recordingSockets>) =>
    m.client.Session.join({ ...opts, name: "first-view", model: m.cls as never, view: m.client.View, reflector: url, socket: socket.factory });
  const first = await join(firstSockets);
  const other = await join(otherSockets);
  const added = [first, other].map((s) => captureWhen(s, () => (s.model as unknown as { texts: string[] }).texts.length === 1));
  other.view.publish("s", "add", "saved by the first view");
  await Promise.all(added);
  await other.flushPersistence();
  expect(otherSockets.sent.filter((f) => f.type === MessageType.PersistChunk)).toEqual([]);
  expect(events).not.toContain("persist.stored");
  await other.leave(); // leaving flushes nothing either
  expect(otherSockets.sent.filter((f) => f.type === MessageType.PersistChunk)).toEqual([]);
  await first.flushPersistence();
  expect(firstSockets.sent.filter((f) => f.type === MessageType.PersistChunk).length).toBeGreaterThan(0);
  expect(events.filter((e) => e === "persist.stored")).toHaveLength(1);
  await first.leave();
});

test("an outsider acting first (knowing the appId, the name and the code, not the password) cannot stop honest clients from creating, joining, saving and loading", async () => {
  const url = await start();
  const name = "squatted";
  // What an outsider can compute: the public ids. Learn them from a throwaway client on another reflector.
  const scout = await startReflector({ port: 0, logger: silentLogger });
  const v1 = editor(1);
  const probe = await v1.client.Session.join({ ...opts, password: "anything", name, model: v1.cls as never, view: v1.client.View, reflector: scout.url });
  const publicIds = { sessionId: probe.id, persistentId: probe.persistentId };
  await probe.leave();
  await scout.close();

  // The outsider, first: it creates the public sessionId with its own verifier, and from there
  // registers its own token on every slot it can name from public information.
  const squatter = await rawClient(url);
  const squatToken = createHash("sha256").update("squatter").digest();
  squatter.send(
    encodeClientMessage({
      type: MessageType.Join,
      ...publicIds,
      viewId: "squatter",
      tps: 20,
      auth: encodeJoinAuth({ token: squatToken, verifier: createHash("sha256").update(squatToken).digest(), check: new Uint8Array(48), slot: "", slotToken: new Uint8Array(0) }),
      viewData: new Uint8Array(0),
    }),
  );
  await squatter.next(MessageType.Sync);
  const token = new Uint8Array(32).fill(7);
  for (const slot of [publicIds.persistentId, publicIds.sessionId]) {
    const blob = new Uint8Array(64).fill(1);
    squatter.send(encodeClientMessage({ type: MessageType.PersistChunk, slot, token, seq: 1, hash: new Uint8Array(32), size: 1, total: blob.length, offset: 0, data: blob }));
    const ack = await squatter.next(MessageType.PersistAck);
    expect(ack.type === MessageType.PersistAck && ack.outcome).toBe(PersistOutcome.Stored); // it now "owns" that slot
  }

  // Honest clients: create, join, save, leave; a new code version loads the saved data.
  const log = sessionLog();
  const honest = await v1Saves(url, name, log);
  expect(honest.sessionId).toBe(publicIds.sessionId); // the same public id the outsider squatted…
  const v2 = editor(2);
  const next = await v2.client.Session.join({ ...opts, name, model: v2.cls as never, view: v2.client.View, reflector: url });
  const model = next.model as unknown as { documents: Map<string, Doc>; metadata: Record<string, unknown> };
  expect([...model.documents.keys()].sort()).toEqual(["d1", "d2", "d3"]); // …yet its data loads
  expect(model.metadata).toEqual({ migratedFrom: 1 });
  // A second honest client joins the live session and ends identical.
  const other = await v2.client.Session.join({ ...opts, name, model: v2.cls as never, view: v2.client.View, reflector: url });
  const points = [next, other].map((s) => captureWhen(s, () => (s.model as unknown as { documents: Map<string, Doc> }).documents.has("d5")));
  add(other, "d5", "after the squat");
  const [pn, po] = await Promise.all(points);
  expect(pn!.seq).toBe(po!.seq);
  expect(pn!.hash).toBe(po!.hash);
  // The outsider's session is its own: it saw none of this.
  expect(squatter.seen.filter((f) => f.type === MessageType.Relay)).toHaveLength(0);
  await Promise.all([next.leave(), other.leave()]);
  squatter.close();
});

/** A bare protocol client (an outsider does not use the library): send frames, await decoded ones by type. */
async function rawClient(url: string): Promise<{ send(frame: Uint8Array): void; next(type: number): Promise<ServerMessage>; seen: ServerMessage[]; close(): void }> {
  const ws = new WebSocket(url);
  ws.binaryType = "nodebuffer";
  const seen: ServerMessage[] = [];
  const waiters: Array<{ type: number; resolve: (m: ServerMessage) => void }> = [];
  ws.on("message", (data: Buffer) => {
    const msg = decodeServerMessage(new Uint8Array(data));
    seen.push(msg);
    const i = waiters.findIndex((w) => w.type === msg.type);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(msg);
  });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  return {
    send: (frame) => ws.send(frame),
    next: (type) => new Promise((resolve) => waiters.push({ type, resolve })),
    seen,
    close: () => ws.close(),
  };
}
