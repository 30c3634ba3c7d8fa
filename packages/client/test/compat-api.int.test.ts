/**
 * Croquet/Multisynq API compatibility against a real reflector on a loopback port: joins without
 * a name or password, `tps` clamping and `"10x3"` local ticks (replicas identical, late joiner
 * included), arrow handlers in models, `view.realm`, the `synced` event in the viewId scope,
 * functions in Constants in the sessionId, `optionsFromUrl`, `startSession`.
 */
import { MessageType } from "@lockstep/protocol";
import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { Model, Session, View, startSession, type JoinOptions, type LockstepSession } from "../src/index";
import { captureWhen, recordingSockets } from "./int-helpers";

class Spinner extends Model {
  steps = 0;
  angle = 0;
  pushes: Array<[string, number]> = [];
  level: unknown;
  override init(options: { level?: unknown }): void {
    this.level = options.level;
    // Croquet's shorthand: a simple arrow stands for the method it calls.
    this.subscribe("spin", "push", (who: string) => this.push(who));
    this.future(1000 / 30).step();
  }
  step(): void {
    this.steps++;
    this.angle = (this.angle + Math.floor(this.random() * 360)) % 360;
    this.future(1000 / 30).step();
  }
  push(who: string): void {
    this.pushes.push([who, this.steps]);
  }
}
Spinner.register("CompatInt.Spinner");

class SpinView extends View {
  synced: Array<[string, boolean]> = [];
  constructor(readonly model: Spinner) {
    super(model);
    this.subscribe(this.viewId, "synced", (s: boolean) => this.synced.push(["viewId", s]));
    this.subscribe(this.sessionId, "synced", (s: boolean) => this.synced.push(["sessionId", s]));
  }
}

let reflector: Reflector;
beforeAll(async () => {
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, snapshots: { everyMessages: 20 } });
});
afterAll(() => reflector.close());

const base = { appId: "test.lockstep.compat", password: "pw", model: Spinner, view: SpinView };
function join(name: string, extra: Partial<JoinOptions<Spinner, SpinView>> = {}): Promise<LockstepSession<Spinner, SpinView>> {
  return Session.join<Spinner, SpinView>({ ...base, name, reflector: reflector.url, ...extra });
}

function until(done: () => boolean, what: string, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = (): void => {
      if (done()) resolve();
      else if (Date.now() - started > ms) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 5);
    };
    check();
  });
}

test("tps outside 1–60 is clamped as Croquet does; the Join asks the reflector for the clamped rate", async () => {
  for (const [tps, sent] of [[0, 1], [500, 60], ["10x3", 10], [12.7, 12]] as const) {
    const rec = recordingSockets();
    const s = await join(`clamp-${String(tps)}`, { tps, socket: rec.factory });
    expect(rec.joins()[0]!.tps).toBe(sent);
    expect(s.view.realm.vm.controller.msPerTick).toBeCloseTo(1000 / sent);
    await s.leave();
  }
});

test('"10x3": the reflector ticks at 10 Hz and models step three times per tick, in local ticks trailing the stream', async () => {
  let clockNow = 1_000_000;
  const s = await join("ticks-manual", { tps: "10x3", step: "manual", clock: () => clockNow });
  expect(s.view.realm.vm.controller.tickMultiplier).toBe(3);
  for (let round = 0; round < 5; round++) {
    // Let reflector ticks arrive while the local clock stands still, then step through the local ticks.
    s.step();
    const before = s.view.externalNow();
    await until(() => s.view.externalNow() >= before + 100, "the next reflector tick");
    const heard = s.view.externalNow();
    s.step();
    expect(s.view.now()).toBe(Math.round(heard - 200 / 3));
    clockNow += 34;
    s.step();
    expect(s.view.now()).toBe(Math.round(heard - 100 / 3));
    clockNow += 34;
    s.step();
    expect(s.view.now()).toBe(heard);
  }
  // Futures every 33 ms ran once per local tick, about three per reflector tick.
  expect(s.model.steps).toBeGreaterThan(0);
  await s.leave();
});

test('"10x3" with two clients and a late joiner (after a snapshot): every replica identical at the same point of the stream', async () => {
  const rec = recordingSockets();
  const a = await join("ticks-replicas", { tps: "10x3", socket: rec.factory });
  const b = await join("ticks-replicas", { tps: "10x3", socket: rec.factory });
  expect(b.id).toBe(a.id);
  for (let i = 0; i < 30; i++) {
    (i % 2 ? a : b).view.publish("spin", "push", i % 2 ? "a" : "b");
    await new Promise((r) => setImmediate(r)); // one entry each: publishes of one turn travel together
  }
  await until(() => a.model.pushes.length === 30 && b.model.pushes.length === 30, "all pushes applied");
  // The reflector asks for a snapshot every 20 entries: one was uploaded before the late join.
  await until(() => rec.sent.some((m) => m.type === MessageType.SnapshotUpload || m.type === MessageType.SnapshotChunk), "a snapshot upload");
  const late = await join("ticks-replicas", { tps: "10x3" });
  expect(late.model.pushes).toHaveLength(30);
  const sessions = [a, b, late];
  const marks = sessions.map((s) => captureWhen(s, () => s.model.pushes.length === 31));
  a.view.publish("spin", "push", "end");
  const points = await Promise.all(marks);
  expect(new Set(points.map((p) => p.seq)).size).toBe(1);
  expect(new Set(points.map((p) => p.hash)).size).toBe(1);
  // The model stepped at 30 Hz: about 30 steps per second of model time.
  expect(a.model.steps).toBeGreaterThanOrEqual(Math.floor(a.model.now() / (1000 / 30)) - 1);
  await Promise.all(sessions.map((s) => s.leave()));
});

test("view.realm.vm.controller has what Croquet apps read every frame, and never throws", async () => {
  const a = await join("realm");
  const b = await join("realm");
  await until(() => a.view.realm.vm.controller.users === 2, "a to see two users");
  const { controller } = a.view.realm.vm;
  expect(controller.backlog).toBeGreaterThanOrEqual(0);
  expect(controller.starvation).toBeGreaterThanOrEqual(0);
  expect(controller.starvation).toBeLessThan(5000);
  expect(controller.synced).toBe(true);
  expect(controller.connected).toBe(true);
  expect(controller.id).toBe(a.id);
  expect(controller.viewId).toBe(a.viewId);
  expect(a.view.realm.vm.time).toBe(a.view.now());
  expect(a.view.realm.vm.get("modelRoot")).toBe(a.model);
  controller.connection.pongHook = () => {}; // apps set it; it is never called
  await b.leave();
  await until(() => controller.users === 1, "a to see b leave");
  await a.leave();
  expect(controller.connected).toBe(false);
  expect(() => [controller.backlog, controller.starvation, controller.lag, controller.users, a.view.realm.vm.time]).not.toThrow();
});

test("the synced event reaches views in the viewId scope (where Croquet publishes it) and in the sessionId scope", async () => {
  const s = await join("synced");
  expect(s.view.synced).toEqual([["sessionId", true], ["viewId", true]]);
  await s.leave();
});

test("synced is false while a connected view falls behind (2 s without hearing the reflector), true once caught up", async () => {
  let clockNow = 0;
  const s = await join("synced-behind", { step: "manual", clock: () => clockNow });
  s.step();
  expect(s.view.synced.filter(([scope]) => scope === "viewId")).toEqual([["viewId", true]]);
  clockNow += 1900; // nothing heard for 1.9 s (the local clock jumps, messages wait): still in sync
  s.step();
  clockNow += 200;
  s.step();
  expect(s.view.synced.filter(([scope]) => scope === "viewId")).toEqual([["viewId", true], ["viewId", false]]);
  expect(s.view.realm.vm.controller.starvation).toBe(2100);
  s.step(); // no repeats
  const heard = s.view.externalNow();
  await until(() => s.view.externalNow() > heard, "a tick");
  s.step();
  expect(s.view.synced.filter(([scope]) => scope === "viewId")).toEqual([["viewId", true], ["viewId", false], ["viewId", true]]);
  expect(s.status).toBe("connected");
  await s.leave();
});

test("Session.join without name and password in Node: a new session is announced; --q= and --pw= join it", async () => {
  const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
  const argv = process.argv;
  try {
    const first = await Session.join({ ...base, reflector: reflector.url, name: undefined, password: undefined });
    const said = String(warn.mock.calls.find((c) => String(c[0]).includes("no session name given"))?.[0]);
    const [, name, pw] = /--q=(\S+) --pw=(\S+) /.exec(said) ?? [];
    expect(name).toBeDefined();
    process.argv = [argv[0]!, argv[1]!, `--q=${name}`, `--pw=${pw}`];
    const second = await Session.join({ ...base, reflector: reflector.url, name: undefined, password: undefined });
    expect(second.id).toBe(first.id);
    await until(() => first.model.viewCount === 2, "both views in one session");
    await Promise.all([first.leave(), second.leave()]);
  } finally {
    process.argv = argv;
    warn.mockRestore();
  }
});

test("optionsFromUrl: named options come from the command line (the URL in a page) and are part of the sessionId", async () => {
  const argv = process.argv;
  try {
    process.argv = [argv[0]!, argv[1]!, "--level=3", "--other=1"];
    const three = await join("url-options", { options: { level: 1 }, optionsFromUrl: ["level"] });
    expect(three.model.level).toBe(3);
    process.argv = [argv[0]!, argv[1]!, "--level=4"];
    const four = await join("url-options", { options: { level: 1 }, optionsFromUrl: ["level"] });
    expect(four.model.level).toBe(4);
    expect(four.id).not.toBe(three.id);
    await Promise.all([three.leave(), four.leave()]);
  } finally {
    process.argv = argv;
  }
});

test("startSession(name, Model, View, options) joins like Session.join, with a deprecation warning", async () => {
  const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
  try {
    const s = (await startSession("old-style", Spinner, SpinView, { appId: base.appId, password: "pw", reflector: reflector.url })) as LockstepSession<Spinner, SpinView>;
    const t = await join("old-style");
    expect(t.id).toBe(s.id);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining("startSession() is deprecated"));
    await Promise.all([s.leave(), t.leave()]);
  } finally {
    warn.mockRestore();
  }
});

test("a function in Constants is part of the sessionId: the same helper code shares a session, another gets its own", async () => {
  type Lib = typeof import("../src/index");
  // Each client loads its own copy of the library (as separate pages do), with its own Constants.
  function client(helper: string): Lib {
    let lib: Lib | undefined;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      lib = require("../src/index") as Lib;
    });
    const l = lib!;
    l.Constants.score = new Function("n", helper);
    return l;
  }
  async function joinWith(lib: Lib): Promise<LockstepSession> {
    class Scorer extends lib.Model {
      total = 0;
      override init(): void {
        this.subscribe("s", "add", this.add);
      }
      add(n: number): void {
        this.total += (lib.Constants.score as (n: number) => number)(n);
      }
    }
    Scorer.register("CompatInt.Scorer");
    return lib.Session.join({ appId: base.appId, name: "constants", password: "pw", model: Scorer, reflector: reflector.url });
  }
  const [a, b, c] = await Promise.all([joinWith(client("return n * 2;")), joinWith(client("return n * 2;")), joinWith(client("return n * 3;"))]);
  expect(b.id).toBe(a.id);
  expect(c.id).not.toBe(a.id);
  expect(c.persistentId).toBe(a.persistentId);
  const marks = [a, b].map((s) => captureWhen(s, () => (s.model as unknown as { total: number }).total === 14));
  a.view.publish("s", "add", 7);
  const [pa, pb] = await Promise.all(marks);
  expect(pa).toEqual(pb);
  await Promise.all([a.leave(), b.leave(), c.leave()]);
});
