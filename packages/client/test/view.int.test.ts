import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { Model, Session, UsageError, View, type LockstepSession } from "../src/index";

/** Publishes three "tick" events per "burst" request, so views can see how they are batched. */
class Burster extends Model {
  bursts = 0;
  override init(): void {
    this.subscribe("b", "burst", this.burst);
    this.subscribe("b", "spawnView", this.spawnView);
  }
  burst(): void {
    this.bursts++;
    for (let i = 1; i <= 3; i++) this.publish("b", "tick", `${this.bursts}.${i}`);
  }
  spawnView(): void {
    new View(this); // must be refused: models never create views
  }
}
Burster.register("ViewInt.Burster");

class ProbeView extends View {
  queued: string[] = [];
  latest: string[] = [];
  immediate: string[] = [];
  queuedAtImmediate: number[] = [];
  immediateErrors: unknown[] = [];
  local: unknown[] = [];
  blinks: number[] = [];
  constructor(readonly model: Burster) {
    super(model);
    this.subscribe("b", "tick", this.onQueued);
    this.subscribe("b", { event: "tick", handling: "oncePerFrame" }, this.onLatest);
    this.subscribe("b", { event: "tick", handling: "immediate" }, this.onImmediate);
    this.subscribe("ui", "local", this.onLocal);
  }
  onQueued(data: string): void {
    this.queued.push(data);
  }
  onLatest(data: string): void {
    this.latest.push(data);
  }
  onImmediate(data: string): void {
    this.immediate.push(data);
    this.queuedAtImmediate.push(this.queued.length);
    try {
      this.model.publish("b", "sneaky"); // view code must not drive the model, even from an immediate handler
    } catch (error) {
      this.immediateErrors.push(error);
    }
  }
  onLocal(data: unknown): void {
    this.local.push(data);
  }
  blink(n: number): void {
    this.blinks.push(n);
  }
}

let reflector: Reflector;
beforeAll(async () => {
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });
});
afterAll(() => reflector.close());

let clockNow = 0;
async function join(name: string): Promise<LockstepSession<Burster, ProbeView>> {
  return Session.join({
    appId: "test.lockstep.views",
    name,
    password: "pw",
    model: Burster,
    view: ProbeView,
    reflector: reflector.url,
    step: "manual",
    clock: () => clockNow,
  });
}

/** Steps a manual session (as an app's frame loop would) until `done()` holds. */
async function stepUntil(session: LockstepSession, done: () => boolean): Promise<void> {
  for (;;) {
    session.step();
    if (done()) return;
    await new Promise((r) => setImmediate(r));
  }
}

test("queued, oncePerFrame and immediate handling", async () => {
  const s = await join("handling");
  s.view.publish("b", "burst");
  await stepUntil(s, () => s.model.bursts === 1);
  const v = s.view;
  // immediate: synchronously while the model published, before any queued delivery
  expect(v.immediate).toEqual(["1.1", "1.2", "1.3"]);
  expect(v.queuedAtImmediate).toEqual([0, 0, 0]);
  expect(v.immediateErrors).toHaveLength(3);
  expect(v.immediateErrors[0]).toBeInstanceOf(UsageError);
  // queued: all of them in order, in the frame; oncePerFrame: only the frame's last
  expect(v.queued).toEqual(["1.1", "1.2", "1.3"]);
  expect(v.latest).toEqual(["1.3"]);
  await s.leave();
});

test("in manual mode nothing is processed until step()", async () => {
  const s = await join("manual");
  const other = await join("manual");
  other.view.publish("b", "burst");
  // The other client's frame loop sees its own burst; ours has received it but not processed it.
  await stepUntil(other, () => other.model.bursts === 1);
  expect(s.model.bursts).toBe(0);
  await stepUntil(s, () => s.model.bursts === 1);
  expect(s.view.queued).toEqual(["1.1", "1.2", "1.3"]);
  await Promise.all([s.leave(), other.leave()]);
});

test("view-to-view events are delivered locally in the next frame, not to other clients", async () => {
  const a = await join("local");
  const b = await join("local");
  a.view.publish("ui", "local", { x: 1 });
  expect(a.view.local).toEqual([]);
  a.step();
  expect(a.view.local).toEqual([{ x: 1 }]);
  // b never gets a's local view event (it does get the relayed message, which no model handles)
  b.view.publish("b", "burst");
  await stepUntil(b, () => b.model.bursts === 1);
  expect(b.view.local).toEqual([]);
  await Promise.all([a.leave(), b.leave()]);
});

test("a view cannot publish the session's system events (view-join/view-exit come from the reflector)", async () => {
  const a = await join("system");
  expect(() => a.view.publish(a.id, "view-join", "someone")).toThrow(/comes from the reflector only/);
  expect(() => a.view.publish(a.id, "view-exit", a.viewId)).toThrow(UsageError);
  a.view.publish("lobby", "view-join", "fine"); // an app scope may use the name
  await a.leave();
});

test("view futures run after their delay of session time; detach cancels them", async () => {
  const s = await join("futures");
  clockNow = 1000;
  const base = s.view.extrapolatedNow();
  s.view.future(100).blink(1);
  s.view.future(300).blink(2);
  s.step();
  expect(s.view.blinks).toEqual([]);
  clockNow += 150;
  expect(s.view.extrapolatedNow()).toBeGreaterThanOrEqual(base + 150);
  s.step();
  expect(s.view.blinks).toEqual([1]);
  s.view.detach();
  clockNow += 500;
  s.step();
  expect(s.view.blinks).toEqual([1]);
  await s.leave();
});

test("a model that tries to build a view gets a clear error, reported, and the session goes on", async () => {
  const s = await join("no-views-in-models");
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    s.view.publish("b", "spawnView");
    s.view.publish("b", "burst");
    await stepUntil(s, () => s.model.bursts === 1);
  } finally {
    console.error = original;
  }
  expect(JSON.stringify(errors.map((e) => String((e as unknown[])[1])))).toContain("constructed from model code");
  await s.leave();
});
