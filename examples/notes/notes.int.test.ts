/**
 * The notes example against a real reflector, headless: two v1 clients edit one document at once,
 * v1 saves, everyone leaves; v2's code joins the same appId + name (a new sessionId, the same
 * persistentId), gets v1's data in init and migrates it; v2's own data then survives too. And the
 * seeds' SafeModel rule: data of an unknown format is neither loaded nor saved over.
 *
 * v1 and v2 both register the class id "DocumentEditor", so each version is loaded with its own
 * copy of @lockstep/client (jest.isolateModules), as two deployments of the app would be.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startReflector, silentLogger, type Logger, type Reflector } from "@lockstep/reflector";
import type { LockstepSession, View as ViewType } from "@lockstep/client";
import type { NotesModel } from "./editor-view";
import { SCOPE, type TextEvent } from "./events";
import { capture } from "@lockstep/test-support";
import { FakeField } from "./test-helpers";
import { TextSync } from "./text-sync";
import type * as V1 from "./v1/model";
import type * as V2 from "./v2/model";

type Client = typeof import("@lockstep/client");

/** A headless user: a text field on the first document, typed into through TextSync like the browser view. */
interface Typist extends ViewType {
  readonly field: FakeField;
  readonly sync: TextSync;
  /** Replaces `[start, end)` of the field with `text` as keystrokes would, one input event per character. */
  type(start: number, end: number, text: string): void;
  /**
   * Resolves once nothing of this user's is in flight and the field shows the model's text, and
   * that text is `text` if given: another user's edits may still be on their way when this
   * user's own are through.
   */
  settled(text?: string): Promise<void>;
}

function typistClass(client: Client): new (model: NotesModel) => Typist {
  return class extends client.View implements Typist {
    readonly field = new FakeField();
    readonly sync: TextSync;
    readonly #model: NotesModel;
    #waiters: Array<{ text: string | undefined; resolve: () => void }> = [];

    constructor(model: NotesModel) {
      super(model);
      this.#model = model;
      this.sync = new TextSync({
        field: this.field,
        viewId: this.viewId,
        read: (docId) => {
          const doc = this.#model.documents.get(docId);
          return doc && { text: doc.text, rev: this.#model.revisionOf(docId) };
        },
        send: (request) => this.publish(SCOPE, "splice", request),
      });
      this.sync.attach([...model.documents.keys()][0]);
      this.subscribe(SCOPE, "text", this.onText);
    }

    onText(event: TextEvent): void {
      this.sync.received(event);
      if (!this.sync.settled) return;
      const done = this.#waiters.filter((w) => w.text === undefined || w.text === this.field.value);
      this.#waiters = this.#waiters.filter((w) => !done.includes(w));
      for (const w of done) w.resolve();
    }

    type(start: number, end: number, text: string): void {
      if (end > start) {
        this.field.type(start, end, "");
        this.sync.input();
      }
      let at = start;
      for (const ch of text) {
        this.field.type(at, at, ch);
        this.sync.input();
        at += ch.length;
      }
    }

    settled(text?: string): Promise<void> {
      if (this.sync.settled && (text === undefined || text === this.field.value)) return Promise.resolve();
      return new Promise((resolve) => this.#waiters.push({ text, resolve }));
    }
  };
}

/** One code version of the app, with its own copy of the client library (and so its own class registry). */
function load<M>(path: "./v1/model" | "./v2/model"): { client: Client; DocumentEditor: M; Typist: new (model: NotesModel) => Typist } {
  let out!: { client: Client; DocumentEditor: M; Typist: new (model: NotesModel) => Typist };
  jest.isolateModules(() => {
    const client = require("@lockstep/client") as Client;
    const mod = require(path) as { DocumentEditor: M };
    out = { client, DocumentEditor: mod.DocumentEditor, Typist: typistClass(client) };
  });
  return out;
}

let dataDir: string;
let reflector: Reflector;
const events: string[] = [];
const logger: Logger = { ...silentLogger, info: (event: string) => void events.push(event) };
const stored = (): number => events.filter((e) => e === "persist.stored").length;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "lockstep-notes-"));
  events.length = 0;
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger, dataDir });
});
afterEach(async () => {
  await reflector.close();
  rmSync(dataDir, { recursive: true, force: true });
  jest.restoreAllMocks();
});

const base = { appId: "dev.lockstep.notes", password: "notes-test", tps: 60 } as const;

type V1Editor = V1.DocumentEditor;
type V2Editor = V2.DocumentEditor;

test("v1 clients edit together and save; v2 starts from v1's data, migrated; v2's data then survives a rejoin and the next code version", async () => {
  const log: string[] = [];
  jest.spyOn(console, "log").mockImplementation((...args: unknown[]) => void log.push(args.map(String).join(" ")));

  // v1: two users type at once, at both ends of the welcome document.
  const v1 = load<typeof V1.DocumentEditor>("./v1/model");
  const join1 = () => v1.client.Session.join({ ...base, name: "story", model: v1.DocumentEditor, view: v1.Typist, reflector: reflector.url }) as Promise<LockstepSession<V1Editor, Typist>>;
  const a = await join1();
  const b = await join1();
  expect(b.id).toBe(a.id);
  const initial = a.model.documents.get("welcome")!.text;
  expect(a.view.field.value).toBe(initial);
  a.view.type(0, 0, "Alpha ");
  b.view.type(initial.length, initial.length, " Beta 😀");
  const edited = `Alpha ${initial} Beta 😀`;
  await Promise.all([a.view.settled(edited), b.view.settled(edited)]);
  expect(a.model.documents.get("welcome")!.text).toBe(edited);
  expect(b.model.documents.get("welcome")!.text).toBe(edited);
  expect([a.view.field.value, b.view.field.value]).toEqual([edited, edited]);

  // Both replicas are identical at one point of the stream.
  const points = [a, b].map((s) => capture(s, () => s.model.documents.get("welcome")!.text.endsWith("!")));
  b.view.type(edited.length, edited.length, "!");
  const [pa, pb] = await Promise.all(points);
  expect(pa!.seq).toBe(pb!.seq);
  expect(pa!.hash).toBe(pb!.hash);

  // A second document, renamed; invalid requests change nothing.
  const added = capture(a, () => a.model.documents.get("doc-1")?.title === "Second");
  a.view.publish(SCOPE, "add", { viewId: a.viewId });
  a.view.publish(SCOPE, "splice", { docId: "nope", base: 0, from: 0, deleteCount: 0, insert: "x", viewId: a.viewId, opId: "x.1" });
  a.view.publish(SCOPE, "splice", { docId: "welcome", base: 0, from: -1, deleteCount: 0, insert: "x", viewId: a.viewId, opId: "x.2" });
  a.view.publish(SCOPE, "rename", { docId: "doc-1", title: 42 });
  a.view.publish(SCOPE, "rename", { docId: "doc-1", title: "Second" });
  await added;
  expect(a.model.documents.get("welcome")!.text).toBe(`${edited}!`);
  expect([...a.model.documents.keys()]).toEqual(["welcome", "doc-1"]);

  await a.flushPersistence(); // the delayed save, now, acknowledged by the reflector
  expect(stored()).toBeGreaterThanOrEqual(1);
  await Promise.all([a.leave(), b.leave()]);

  // v2: new code, so a new sessionId; same appId + name, so the same persistentId and v1's data.
  const v2 = load<typeof V2.DocumentEditor>("./v2/model");
  const join2 = (options?: Record<string, unknown>) =>
    v2.client.Session.join({ ...base, name: "story", model: v2.DocumentEditor, view: v2.Typist, reflector: reflector.url, debug: "session", ...(options && { options }) }) as Promise<
      LockstepSession<V2Editor, Typist>
    >;
  const c = await join2();
  expect(c.persistentId).toBe(a.persistentId);
  expect(c.id).not.toBe(a.id);
  expect(log).toContain(`[Lockstep] Session loaded from persistent data (persistentId: ${c.persistentId})`);
  expect(c.model.migratedFrom).toBe(1);
  expect(c.model.loadError).toBeNull();
  expect(c.model.documents.get("welcome")).toEqual({ id: "welcome", title: "Welcome", text: `${edited}!` });
  expect(c.model.documents.get("doc-1")).toEqual({ id: "doc-1", title: "Second", text: "" });
  expect(c.model.metadata.get("welcome")).toEqual({ tags: [], pinned: false, createdAt: null, updatedAt: null });
  expect(c.view.field.value).toBe(`${edited}!`);

  // A second v2 user: same state; they tag and type, and both replicas agree.
  const d = await join2();
  expect(d.id).toBe(c.id);
  const tagged = [c, d].map((s) => capture(s, () => s.model.metadata.get("welcome")!.tags.includes("draft") && s.model.documents.get("welcome")!.text.startsWith("v2: ")));
  c.view.publish(SCOPE, "tag", { docId: "welcome", tag: "  Draft ", at: 1_700_000_000_000 });
  d.view.type(0, 0, "v2: ");
  const [pc, pd] = await Promise.all(tagged);
  expect(pc!.seq).toBe(pd!.seq);
  expect(pc!.hash).toBe(pd!.hash);
  const v2Text = `v2: ${edited}!`;
  await Promise.all([c.view.settled(v2Text), d.view.settled(v2Text)]);
  expect(c.model.metadata.get("welcome")).toEqual({ tags: ["draft"], pinned: false, createdAt: null, updatedAt: expect.any(Number) });
  await Promise.all([c.leave(), d.leave()]); // each leave flushes what is not yet saved

  // The same v2 code rejoins: the same session, continued from its log (still "migrated from v1").
  const e = await join2();
  expect(e.id).toBe(c.id);
  expect(e.model.documents.get("welcome")!.text).toBe(v2Text);
  expect(e.model.metadata.get("welcome")!.tags).toEqual(["draft"]);
  expect(e.model.migratedFrom).toBe(1);
  await e.leave();

  // The next code version (here: v2 with other options, another sessionId) starts from v2's saved
  // data: nothing to migrate, so no notice, and the tags are kept.
  const f = await join2({ release: "2.1" });
  expect(f.id).not.toBe(c.id);
  expect(f.persistentId).toBe(c.persistentId);
  expect(f.model.migratedFrom).toBeNull();
  expect(f.model.documents.get("welcome")!.text).toBe(v2Text);
  expect(f.model.metadata.get("welcome")!.tags).toEqual(["draft"]);
  expect([...f.model.documents.keys()]).toEqual(["welcome", "doc-1"]);
  await f.leave();
});

test("data of an unknown format is not loaded and never saved over, by v2 (SafeModel) nor v1", async () => {
  // Some later version saved format 99.
  let client!: Client;
  let Future!: Client["Model"];
  const future = { version: 99, documents: [["x", { id: "x", title: "From the future", text: "keep me" }]], shelves: [] };
  jest.isolateModules(() => {
    client = require("@lockstep/client") as Client;
    class DocumentEditor extends client.Model {
      restored: unknown = null;
      saved = false;
      override init(_options: unknown, persisted?: unknown): void {
        this.restored = persisted ?? null;
        this.subscribe(SCOPE, "save", this.save);
      }
      save(): void {
        this.saved = true;
        this.persistSession(() => future);
      }
    }
    DocumentEditor.register("DocumentEditor");
    Future = DocumentEditor;
  });
  const joinFuture = (options?: Record<string, unknown>) =>
    client.Session.join({ ...base, name: "future", model: Future as never, reflector: reflector.url, ...(options && { options }) }) as Promise<LockstepSession>;
  const w = await joinFuture();
  w.view.publish(SCOPE, "save");
  await capture(w, () => (w.model as unknown as { saved: boolean }).saved);
  await w.leave();
  expect(stored()).toBe(1);

  const v2 = load<typeof V2.DocumentEditor>("./v2/model");
  const c = (await v2.client.Session.join({ ...base, name: "future", model: v2.DocumentEditor, view: v2.Typist, reflector: reflector.url })) as LockstepSession<V2Editor, Typist>;
  expect(c.model.loadError).toMatch(/Unsupported version: 99/);
  expect(c.model.loadingPersistentDataErrored).toBe(true);
  expect([...c.model.documents.keys()]).toEqual(["welcome"]); // the defaults
  expect(c.model.migratedFrom).toBeNull();
  // Edits work (for this session) but are not saved.
  c.view.type(0, 0, "scratch ");
  c.view.publish(SCOPE, "add", { viewId: c.viewId });
  await capture(c, () => c.model.documents.size === 2);
  await c.view.settled();
  await c.flushPersistence();
  await c.leave();

  const v1 = load<typeof V1.DocumentEditor>("./v1/model");
  const o = (await v1.client.Session.join({ ...base, name: "future", model: v1.DocumentEditor, view: v1.Typist, reflector: reflector.url })) as LockstepSession<V1Editor, Typist>;
  expect(o.model.readOnlyPersistence).toBe(true);
  o.view.type(0, 0, "old code ");
  await o.view.settled();
  await o.leave();
  expect(stored()).toBe(1);

  // The stored data is still format 99: the next "future" code version gets it intact.
  const z = await joinFuture({ release: "100" });
  expect((z.model as unknown as { restored: unknown }).restored).toEqual(future);
  await z.leave();
});
