/**
 * The declarative layer (`static persistent = persist({...})`) and its key strategies on a real
 * reflector: automatic hash-deduplicated saves, defaults merged under stored fields, migrations,
 * session() / global() / withKey(fn), and replicas that stay identical while keyed data loads.
 */
import { startReflector, silentLogger, type Logger, type Reflector } from "@lockstep/reflector";
import type { LockstepSession, Model as ModelType } from "../src/index";
import { captureWhen } from "./int-helpers";

type ClientModule = typeof import("../src/index");
type Note = { text: string; color?: string };

/** Loads one code version of the notes app into its own module registry. */
function load<T>(define: (client: ClientModule) => T): { client: ClientModule; value: T } {
  let out!: { client: ClientModule; value: T };
  jest.isolateModules(() => {
    const client = require("../src/index") as ClientModule;
    out = { client, value: define(client) };
  });
  return out;
}

const events: string[] = [];
const logger: Logger = { ...silentLogger, info: (event: string) => void events.push(event) };
let reflector: Reflector;
beforeEach(async () => {
  events.length = 0;
  reflector = await startReflector({ port: 0, logger });
});
afterEach(async () => {
  await reflector.close();
  jest.restoreAllMocks();
});

const base = { appId: "test.lockstep.declarative", password: "pw" };

async function join(client: ClientModule, cls: typeof ModelType, name: string): Promise<LockstepSession> {
  return client.Session.join({ ...base, name, model: cls as never, view: client.View, reflector: reflector.url });
}

/** Waits until `cond` holds after some stream entry (every replica passes the same point). */
const reach = (s: LockstepSession, cond: () => boolean): Promise<{ seq: number; hash: string }> => captureWhen(s, cond);

function notesV1(client: ClientModule) {
  class Notes extends client.Model {
    static persistent = client.persist({ version: 1, fields: { notes: [] as Note[], title: "Untitled" }, delayMs: 50 });
    declare notes: Note[];
    declare title: string;
    override init(): void {
      this.subscribe("notes", "add", this.add);
      this.subscribe("notes", "title", this.rename);
    }
    add(text: string): void {
      this.notes.push({ text });
    }
    rename(title: string): void {
      this.title = title;
    }
  }
  Notes.register("Declarative.Notes");
  return Notes;
}

function notesV2(client: ClientModule) {
  class Notes extends client.Model {
    static persistent = client.persist({
      version: 2,
      fields: { notes: [] as Note[], title: "Untitled", theme: "light" },
      migrate: { 2: (v1: { notes: Note[]; title: string }) => ({ ...v1, notes: v1.notes.map((n) => ({ ...n, color: "yellow" })) }) },
      delayMs: 50,
    });
    declare notes: Note[];
    declare title: string;
    declare theme: string;
    restored: unknown = null;
    override init(_options: unknown, persisted: unknown): void {
      this.restored = persisted ?? null;
      this.subscribe("notes", "add", this.add);
    }
    add(text: string): void {
      this.notes.push({ text, color: "green" });
    }
  }
  Notes.register("Declarative.Notes");
  return Notes;
}

test("declared fields save automatically (once per change), and a new code version migrates them and gets defaults for new fields", async () => {
  const v1 = load(notesV1);
  const a = await join(v1.client, v1.value, "notes");
  const b = await join(v1.client, v1.value, "notes");
  const model = a.model as unknown as { notes: Note[]; title: string };
  expect(model.notes).toEqual([]);
  expect(model.title).toBe("Untitled");
  const added = [a, b].map((s) => reach(s, () => (s.model as unknown as { notes: Note[] }).notes.length === 2));
  a.view.publish("notes", "add", "first");
  b.view.publish("notes", "add", "second");
  const [pa, pb] = await Promise.all(added);
  expect(pa!.hash).toBe(pb!.hash);
  a.view.publish("notes", "title", "Groceries");
  await reach(a, () => model.title === "Groceries");
  await Promise.all([a.flushPersistence(), b.flushPersistence()]);
  const stored = events.filter((e) => e === "persist.stored").length;
  expect(stored).toBeGreaterThanOrEqual(1);
  // An event that changes nothing persisted is not saved again.
  a.view.publish("notes", "title", "Groceries");
  await reach(a, () => true);
  await a.flushPersistence();
  expect(events.filter((e) => e === "persist.stored").length).toBe(stored);
  await Promise.all([a.leave(), b.leave()]);

  const v2 = load(notesV2);
  const c = await join(v2.client, v2.value, "notes");
  const m2 = c.model as unknown as { notes: Note[]; title: string; theme: string; restored: unknown };
  expect(c.id).not.toBe(a.id);
  expect(m2.title).toBe("Groceries");
  expect(m2.theme).toBe("light");
  expect(m2.notes.map((n) => n.color)).toEqual(["yellow", "yellow"]);
  expect(m2.notes.map((n) => n.text).sort()).toEqual(["first", "second"]);
  expect(m2.restored).toEqual({ notes: m2.notes, title: "Groceries", theme: "light" });
  const d = await join(v2.client, v2.value, "notes");
  const both = [c, d].map((s) => reach(s, () => (s.model as unknown as { notes: Note[] }).notes.length === 3));
  d.view.publish("notes", "add", "third");
  const [pc, pd] = await Promise.all(both);
  expect(pc!.hash).toBe(pd!.hash);
  await Promise.all([c.leave(), d.leave()]);
});

test("stored data of a newer format than the code keeps the defaults, reports the error, and is never overwritten", async () => {
  const v2 = load(notesV2);
  const a = await join(v2.client, v2.value, "downgrade");
  a.view.publish("notes", "add", "v2 note");
  await reach(a, () => (a.model as unknown as { notes: Note[] }).notes.length === 1);
  await a.leave();
  const errors: unknown[] = [];
  jest.spyOn(console, "error").mockImplementation((...args) => void errors.push(args));
  const v1 = load(notesV1);
  const b = await join(v1.client, v1.value, "downgrade");
  expect((b.model as unknown as { notes: Note[] }).notes).toEqual([]);
  expect(String(errors[0])).toMatch(/format version 2, newer than this code's version 1/);
  const stored = events.filter((e) => e === "persist.stored").length;
  b.view.publish("notes", "add", "v1 note");
  await reach(b, () => (b.model as unknown as { notes: Note[] }).notes.length === 1);
  await b.leave();
  expect(events.filter((e) => e === "persist.stored").length).toBe(stored);
});

test("global(): every session name of the app starts from the app's latest data", async () => {
  const { client, value: Counter } = load((c) => {
    class Counter extends c.Model {
      static persistent = c.persist({ fields: { count: 0 }, key: c.global(), delayMs: 10 });
      declare count: number;
      override init(): void {
        this.subscribe("c", "inc", this.inc);
      }
      inc(): void {
        this.count++;
      }
    }
    Counter.register("Declarative.Counter");
    return Counter;
  });
  const a = await join(client, Counter, "room-1");
  for (let i = 0; i < 3; i++) a.view.publish("c", "inc", null);
  await reach(a, () => (a.model as unknown as { count: number }).count === 3);
  await a.leave();
  const b = await join(client, Counter, "room-2");
  expect(b.persistentId).not.toBe(a.persistentId);
  expect((b.model as unknown as { count: number }).count).toBe(3);
  await b.leave();
});

test("withKey(): each user's data loads through the stream when the key appears, identically on every replica, and follows the user to other sessions", async () => {
  const { client, value: Desk } = load((c) => {
    class Desk extends c.Model {
      static persistent = c.persist({ fields: { todos: [] as string[] }, key: c.withKey((m: Desk) => m.user), delayMs: 10 });
      declare todos: string[];
      user: string | null = null;
      loadedFor: string | null = null;
      override init(): void {
        this.subscribe("desk", "login", this.login);
        this.subscribe("desk", "logout", this.logout);
        this.subscribe("desk", "todo", this.todo);
      }
      login(user: string): void {
        this.user = user;
      }
      logout(): void {
        this.user = null;
      }
      onPersistLoaded(key: string): void {
        this.loadedFor = key;
      }
      todo(text: string): void {
        this.todos.push(text);
      }
    }
    Desk.register("Declarative.Desk");
    return Desk;
  });
  type D = { todos: string[]; user: string | null; loadedFor: string | null };
  const a = await join(client, Desk, "desk-1");
  const b = await join(client, Desk, "desk-1");
  const m = (s: LockstepSession): D => s.model as unknown as D;

  a.view.publish("desk", "login", "alice");
  await Promise.all([a, b].map((s) => reach(s, () => m(s).loadedFor === "alice")));
  a.view.publish("desk", "todo", "write tests");
  a.view.publish("desk", "todo", "ship");
  const alice = [a, b].map((s) => reach(s, () => m(s).todos.length === 2));
  const [pa, pb] = await Promise.all(alice);
  expect(pa!.hash).toBe(pb!.hash);
  expect(m(a).todos).toEqual(["write tests", "ship"]);
  await a.flushPersistence();

  // Switching user: bob has nothing stored, so his list starts from the defaults.
  a.view.publish("desk", "logout", null);
  a.view.publish("desk", "login", "bob");
  await reach(a, () => m(a).loadedFor === "bob");
  a.view.publish("desk", "todo", "bob's task");
  const bob = [a, b].map((s) => reach(s, () => m(s).user === "bob" && m(s).todos.length === 1));
  const [qa, qb] = await Promise.all(bob);
  expect(qa!.hash).toBe(qb!.hash);
  expect(m(b).todos).toEqual(["bob's task"]);
  await Promise.all([a.leave(), b.leave()]);

  // Another session of the app: alice's list follows her.
  const c = await join(client, Desk, "desk-2");
  c.view.publish("desk", "login", "alice");
  await reach(c, () => m(c).loadedFor === "alice");
  expect(m(c).todos).toEqual(["write tests", "ship"]);
  await c.leave();
});
