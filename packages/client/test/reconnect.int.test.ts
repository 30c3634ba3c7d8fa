import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { Model, Session, View, type LockstepSession } from "../src/index";
import { captureWhen } from "./int-helpers";
import { startProxy, type Proxy } from "./proxy";

/** Who is here (from view-join/view-exit, in order) and what was written. */
class Room extends Model {
  present: string[] = [];
  joins: string[] = [];
  exits: string[] = [];
  lines: string[] = [];
  override init(): void {
    this.subscribe(this.sessionId, "view-join", this.joined);
    this.subscribe(this.sessionId, "view-exit", this.exited);
    this.subscribe("room", "write", this.write);
  }
  joined(view: { viewId: string } | string): void {
    const id = typeof view === "string" ? view : view.viewId;
    this.joins.push(id);
    this.present.push(id);
  }
  exited(view: { viewId: string } | string): void {
    const id = typeof view === "string" ? view : view.viewId;
    this.exits.push(id);
    this.present = this.present.filter((v) => v !== id);
  }
  write(line: string): void {
    this.lines.push(line);
  }
}
Room.register("ReconnectInt.Room");

/** Counts root views built per viewId: a rejoin detaches the old one and builds a new one. */
class RoomView extends View {
  static built = new Map<string, number>();
  static waiters: Array<() => void> = [];
  detached = false;
  constructor(model: Room) {
    super(model);
    RoomView.built.set(this.viewId, (RoomView.built.get(this.viewId) ?? 0) + 1);
    for (const w of RoomView.waiters.splice(0)) w();
  }
  override detach(): void {
    this.detached = true;
    super.detach();
  }
}

/** Resolves once `session` has built `n` root views (the first join counts as one). */
async function viewsBuilt(session: LockstepSession, n: number): Promise<void> {
  while ((RoomView.built.get(session.viewId) ?? 0) < n) await new Promise<void>((resolve) => RoomView.waiters.push(resolve));
}

type R = LockstepSession<Room, RoomView>;
const base = { appId: "test.lockstep.reconnect", password: "pw", model: Room, view: RoomView, tps: 30 };

/** Writes `line` from `from` and resolves with every session's state hash right after it. */
async function writeAndCompare(from: R, line: string, all: R[]): Promise<string[]> {
  const points = all.map((s) => captureWhen(s, () => s.model.lines.includes(line)));
  from.view.publish("room", "write", line);
  const reached = await Promise.all(points);
  expect(new Set(reached.map((r) => r.seq)).size).toBe(1);
  return reached.map((r) => r.hash);
}

let reflector: Reflector;
let proxy: Proxy;
let dataDir: string;
beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "lockstep-reconnect-"));
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, dataDir });
  proxy = await startProxy(reflector.url);
});
afterEach(async () => {
  await proxy.close();
  await reflector.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test("a dropped connection rejoins by itself with the same viewId: the others see its exit and join, and the replicas agree", async () => {
  const name = `drop-${Date.now()}`;
  const a = (await Session.join({ ...base, name, reflector: proxy.url })) as R;
  const b = (await Session.join({ ...base, name, reflector: reflector.url })) as R;
  await writeAndCompare(a, "before", [a, b]);
  const oldView = a.view;
  const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
  try {
    proxy.cut();
    await viewsBuilt(a, 2);
    expect(warn.mock.calls.some(([line]) => String(line).includes("lost the connection to the reflector"))).toBe(true);
  } finally {
    warn.mockRestore();
  }
  expect(oldView.detached).toBe(true);
  expect(a.view).not.toBe(oldView);
  const [ha, hb] = await writeAndCompare(a, "after", [a, b]);
  expect(ha).toBe(hb);
  // Nothing lost, nothing doubled; one exit for the dropped connection, then the rejoin.
  expect(a.model.lines).toEqual(["before", "after"]);
  expect(b.model.exits).toEqual([a.viewId]);
  expect(b.model.joins.filter((v) => v === a.viewId)).toHaveLength(2);
  expect(b.model.present.sort()).toEqual([a.viewId, b.viewId].sort());
  await Promise.all([a.leave(), b.leave()]);
});

test("a connection that dies silently is noticed within the silence limit and replaced on the reflector", async () => {
  const name = `silent-${Date.now()}`;
  const a = (await Session.join({ ...base, name, reflector: proxy.url })) as R;
  const b = (await Session.join({ ...base, name, reflector: reflector.url })) as R;
  const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
  try {
    proxy.freeze(); // the reflector still sees a's old socket as alive (the proxy answers its pings)
    await viewsBuilt(a, 2);
  } finally {
    warn.mockRestore();
  }
  const [ha, hb] = await writeAndCompare(a, "after-silence", [a, b]);
  expect(ha).toBe(hb);
  expect(b.model.exits).toEqual([a.viewId]);
  expect(b.model.present.sort()).toEqual([a.viewId, b.viewId].sort());
  await Promise.all([a.leave(), b.leave()]);
}, 30_000);

test("every client rejoins a restarted reflector (with backoff while it is down) and the session goes on from its stored state", async () => {
  const name = `restart-${Date.now()}`;
  const port = Number(new URL(reflector.url).port);
  const url = reflector.url;
  const a = (await Session.join({ ...base, name, reflector: url })) as R;
  const b = (await Session.join({ ...base, name, reflector: url })) as R;
  await writeAndCompare(a, "one", [a, b]);
  await writeAndCompare(b, "two", [a, b]);
  const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
  try {
    await reflector.close();
    // Down for a while: the clients retry and fail a few times before it is back.
    await new Promise((resolve) => setTimeout(resolve, 600));
    // The publish of a disconnected client is dropped (with a warning), not thrown at the app.
    expect(() => a.view.publish("room", "write", "lost")).not.toThrow();
    reflector = await startReflector({ port, host: "127.0.0.1", logger: silentLogger, dataDir });
    await Promise.all([viewsBuilt(a, 2), viewsBuilt(b, 2)]);
    expect(warn.mock.calls.some(([line]) => String(line).includes("not connected"))).toBe(true);
  } finally {
    warn.mockRestore();
  }
  const [ha, hb] = await writeAndCompare(b, "three", [a, b]);
  expect(ha).toBe(hb);
  expect(a.model.lines).toEqual(["one", "two", "three"]);
  // A newcomer boots from what the restarted reflector stored and agrees.
  const c = (await Session.join({ ...base, name, reflector: url })) as R;
  const hashes = await writeAndCompare(c, "four", [a, b, c]);
  expect(new Set(hashes).size).toBe(1);
  await Promise.all([a.leave(), b.leave(), c.leave()]);
});

test("a session left while it is reconnecting stops trying", async () => {
  const name = `leave-${Date.now()}`;
  const port = Number(new URL(reflector.url).port);
  const a = (await Session.join({ ...base, name, reflector: reflector.url })) as R;
  const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
  try {
    await reflector.close();
    await new Promise((resolve) => setTimeout(resolve, 300)); // a retries meanwhile
    await a.leave();
    expect(() => a.view.publish("room", "write", "x")).toThrow(/left/);
    reflector = await startReflector({ port, host: "127.0.0.1", logger: silentLogger, dataDir });
    // Longer than the backoff could have grown to by now: a left client never comes back.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(reflector.stats().connections).toBe(0);
  } finally {
    warn.mockRestore();
  }
});

/** Just enough of a page's `document` for the visibility API. */
class FakeDocument extends EventTarget {
  visibilityState: "visible" | "hidden" = "visible";
  set(state: "visible" | "hidden"): void {
    this.visibilityState = state;
    this.dispatchEvent(new Event("visibilitychange"));
  }
}

test("autoSleep: a page hidden for autoSleep seconds disconnects (its view exits for the others), and rejoins when visible again", async () => {
  const doc = new FakeDocument();
  (globalThis as { document?: unknown }).document = doc;
  const name = `sleep-${Date.now()}`;
  const log = jest.spyOn(console, "log").mockImplementation(() => {});
  try {
    const a = (await Session.join({ ...base, name, reflector: reflector.url, autoSleep: 0.2, debug: "session" })) as R;
    const b = (await Session.join({ ...base, name, reflector: reflector.url, autoSleep: false })) as R;
    await writeAndCompare(a, "awake", [a, b]);
    const exited = captureWhen(b, () => b.model.exits.includes(a.viewId));
    doc.set("hidden");
    await exited; // a's view-exit: it disconnected
    expect(log.mock.calls.some(([line]) => String(line).includes("Page hidden for 0.2 s"))).toBe(true);
    expect(b.model.present).toEqual([b.viewId]);
    // Hidden and visible again within autoSleep: nothing happens.
    doc.set("visible");
    await viewsBuilt(a, 2);
    const [ha, hb] = await writeAndCompare(a, "awake again", [a, b]);
    expect(ha).toBe(hb);
    expect(b.model.present.sort()).toEqual([a.viewId, b.viewId].sort());
    doc.set("hidden");
    doc.set("visible");
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(b.model.exits).toEqual([a.viewId]);
    await Promise.all([a.leave(), b.leave()]);
  } finally {
    log.mockRestore();
    delete (globalThis as { document?: unknown }).document;
  }
});

test("a session ended by a fatal error stays ended: it does not rejoin by itself", async () => {
  let garble = false;
  const garbling = await startProxy(reflector.url, { tamper: (frame) => (garble ? new Uint8Array([0xff, 0xff, 0xff]) : frame) });
  const errors = jest.spyOn(console, "error").mockImplementation(() => {});
  try {
    const a = (await Session.join({ ...base, name: `fatal-${Date.now()}`, reflector: garbling.url })) as R;
    garble = true; // the next frame from the reflector (a tick) is malformed: fatal
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (errors.mock.calls.some(([line]) => String(line).includes("error in session"))) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    garble = false;
    // Longer than the first backoff steps: a rejoin would have built a second root view by now.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(RoomView.built.get(a.viewId)).toBe(1);
    expect(reflector.stats().connections).toBe(0);
    expect(() => a.view.publish("room", "write", "x")).toThrow(/failed/);
    await a.leave();
  } finally {
    errors.mockRestore();
    await garbling.close();
  }
});

/** A room whose lines are persisted: going to sleep has something to save first. */
class SavedRoom extends Room {
  override write(line: string): void {
    super.write(line);
    this.persistSession(() => ({ lines: this.lines }));
  }
}
SavedRoom.register("ReconnectInt.SavedRoom");

test("autoSleep: a page visible again while it saves before sleeping stays awake", async () => {
  const doc = new FakeDocument();
  (globalThis as { document?: unknown }).document = doc;
  // Acknowledgements of the save take 300 ms to arrive: the page is visible again before that.
  const slow = await startProxy(reflector.url, { delayMs: 300 });
  const name = `sleep-save-${Date.now()}`;
  const room = { ...base, model: SavedRoom, name };
  try {
    const a = (await Session.join({ ...room, reflector: slow.url, autoSleep: 0.1 })) as R;
    const b = (await Session.join({ ...room, reflector: reflector.url, autoSleep: false })) as R;
    await writeAndCompare(a, "unsaved", [a, b]);
    doc.set("hidden");
    await new Promise((resolve) => setTimeout(resolve, 180)); // asleep is due at 100 ms: saving now
    doc.set("visible");
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(b.model.exits).toEqual([]);
    expect(RoomView.built.get(a.viewId)).toBe(1);
    const [ha, hb] = await writeAndCompare(a, "still here", [a, b]);
    expect(ha).toBe(hb);
    await Promise.all([a.leave(), b.leave()]);
  } finally {
    await slow.close();
    delete (globalThis as { document?: unknown }).document;
  }
});
