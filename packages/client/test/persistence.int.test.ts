/**
 * Persistence across code versions, on a real reflector: the seeds' DocumentEditor story (v1 saves,
 * everyone leaves, v2 code joins the same appId + name and migrates), and what must never happen:
 * a corrupt blob or a wrong password overwriting data, an acknowledged save lost to kill -9.
 * The session's data lives in a slot named from the password (not the public persistentId).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_LIMITS, MessageType, type PersistChunkMessage } from "@lockstep/protocol";
import { PersistStore, createFsStore, startReflector, silentLogger, type Logger, type Reflector } from "@lockstep/reflector";
import type { Model as ModelType } from "../src/index";
import { testRng } from "@lockstep/test-support";
import { captureWhen, recordingSockets, sessionSlot } from "./int-helpers";
import { startReflectorProcess } from "./reflector-process";
import { add, editor, opts, sessionLog, v1Saves, type ClientModule, type Doc } from "./persistence-helpers";


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
  const random = testRng("big persisted data").next;
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
