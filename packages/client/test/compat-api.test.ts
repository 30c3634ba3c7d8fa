/**
 * Croquet/Multisynq API compatibility, in memory: tick rates ("10x3") and local ticks, arrow
 * handlers stored by method name, Model.isExecuting, persistSession(data), functions in
 * Constants, URL options, the join defaults for name and password, Messenger, VERSION.
 */
import { readFileSync } from "node:fs";
import { join as pathJoin } from "node:path";
import { DEFAULT_TPS, MessageType } from "@lockstep/protocol";
import { Model } from "../src/kernel/model";
import { arrowCall } from "../src/kernel/handler-source";
import { constantsText, functionSource } from "../src/kernel/constants";
import { VERSION } from "../src/kernel/version";
import { UsageError } from "../src/errors";
import { parseTickRate } from "../src/session/tps";
import { LocalTicks } from "../src/session/local-ticks";
import { Stream } from "../src/session/stream";
import { parseArguments, parseQuery, urlOptions } from "../src/session/url-options";
import { sessionNames, withUrlOptions } from "../src/session/join-defaults";
import { LockstepMessenger } from "../src/view/messenger";
import { serializeVM } from "../src/session/boot";
import { registry } from "../src/kernel/registry";
import { deserialize } from "../src/serializer/index";
import { makeVM } from "./vm-helpers";

describe("tps", () => {
  test.each([
    [undefined, DEFAULT_TPS, 1],
    [20, 20, 1],
    [0, 1, 1], // Croquet's floor is one tick per 30 s; a Lockstep reflector's is one per second
    [-5, 1, 1],
    [0.5, 1, 1],
    [12.9, 12, 1], // truncated, as Croquet's parseInt does
    [500, 60, 1],
    [Infinity, 60, 1],
    ["30", 30, 1],
    ["10x3", 10, 3],
    ["10X3", 10, 3],
    [" 5 x 4 ", 5, 4],
    ["x3", 1, 3],
    ["10x", 10, 1],
    ["10x0", 10, 1],
    ["100x1000", 60, 60],
  ])("%p → %p ticks/s × %p", (tps, rate, multiplier) => {
    expect(parseTickRate(tps)).toEqual({ tps: rate, multiplier });
  });

  test.each(["fast", "10x3x2", "ten", {}, [], true, NaN])("%p is a clear UsageError", (tps) => {
    expect(() => parseTickRate(tps)).toThrow(UsageError);
    expect(() => parseTickRate(tps)).toThrow(/tps must be a number of ticks per second .* like "10x3"/);
  });
});

describe("local ticks (10x3)", () => {
  test("trail the latest time heard by up to 2/3 of a tick, catching up in three steps of 33 ms", () => {
    const ticks = new LocalTicks({ tps: 10, multiplier: 3 });
    ticks.heard(1000, 5000); // reflector time 1000 heard at local 5000
    expect(ticks.limit(5000)).toBe(933);
    expect(ticks.nextAt(5000)).toBeCloseTo(5033.33, 1);
    expect(ticks.limit(5033.4)).toBe(967);
    expect(ticks.limit(5066.7)).toBe(1000);
    expect(ticks.nextAt(5066.7)).toBeUndefined();
    // A message heard soon after: the limit never moves back.
    ticks.heard(1010, 5070);
    expect(ticks.limit(5070)).toBe(1000);
    expect(ticks.limit(5104)).toBe(1000);
    expect(ticks.limit(5137)).toBe(1010);
  });

  test("a stream fed at local ticks leaves the replica in exactly the state of one fed everything at once", () => {
    class Stepper extends Model {
      steps: number[] = [];
      inputs: Array<[number, number]> = [];
      override init(): void {
        this.subscribe("s", "in", this.input);
        this.future(1000 / 30).step();
      }
      step(): void {
        this.steps.push(this.now());
        this.future(1000 / 30).step();
      }
      input(n: number): void {
        this.inputs.push([n, this.steps.length]);
      }
    }
    Stepper.register("CompatApi.Stepper");
    // Two replicas: `local` advances in local ticks between reflector ticks, `plain` only at entries.
    const local = makeVM("s-local-ticks");
    const plain = makeVM("s-local-ticks");
    local.root(Stepper);
    plain.root(Stepper);
    const lt = new LocalTicks({ tps: 10, multiplier: 3 });
    let at = 0;
    const runsSeen = new Set<number>();
    for (let tick = 1; tick <= 20; tick++) {
      const time = tick * 100;
      lt.heard(time, (at += 100));
      for (let step = 0; step < 3; step++) {
        local.tick(lt.limit(at + step * 34));
        runsSeen.add(local.vm.time);
      }
      if (tick % 4 === 0) {
        local.relay(time + 7, "s", "in", tick);
        plain.relay(time + 7, "s", "in", tick);
      }
      plain.tick(time);
      local.tick(time);
      expect(Buffer.from(serializeVM(local.vm, registry)).equals(Buffer.from(serializeVM(plain.vm, registry)))).toBe(true);
    }
    // The local replica really stepped in between (about three distinct times per reflector tick).
    expect(runsSeen.size).toBeGreaterThanOrEqual(55);
    expect(local.errors).toEqual([]);
  });

  test("the stream holds back what is later than the limit and advances the VM to the limit", () => {
    let now = 0;
    const timers = { now: () => now, setTimeout: () => 0, clearTimeout: () => {} };
    const stream = new Stream(timers, { tps: 10, multiplier: 3 });
    const h = makeVM("s-stream-held");
    class Idle extends Model {}
    Idle.register("CompatApi.Idle");
    h.root(Idle);
    now = 1000;
    stream.tick({ type: MessageType.Tick, time: 300 });
    expect(stream.feed(h.vm, () => false, Infinity, stream.liveLimit())).toBe("held");
    expect(h.vm.time).toBe(233);
    expect(stream.nextLocalTick()).toBeCloseTo(1033.3, 1);
    now = 1067;
    expect(stream.feed(h.vm, () => false, Infinity, stream.liveLimit())).toBe("drained");
    expect(h.vm.time).toBe(300);
    // Without a multiplier nothing is held.
    expect(new Stream(timers, { tps: 10, multiplier: 1 }).liveLimit()).toBe(Infinity);
  });
});

describe("model subscribe with an arrow that calls one method", () => {
  test("the forms Croquet accepts are read as the method's name", () => {
    /* eslint-disable */
    const cases: Array<[(...a: never[]) => unknown, string, boolean]> = [
      [((x: unknown) => (this as any).moved(x)) as never, "moved", true],
      [((data: unknown) => { (this as any).moved(data); }) as never, "moved", true],
      [(() => (this as any).reset()) as never, "reset", false],
      [new Function("return x => this.moved(x)")() as never, "moved", true],
      [new Function("return (x)=>this.moved(x)")() as never, "moved", true],
      [new Function("return ( evt ) => { return this.onKey( evt ) ; }")() as never, "onKey", true],
      [new Function("return () => this.reset()")() as never, "reset", false],
      [new Function("return $e => this._h$1($e) // why")() as never, "_h$1", true],
    ];
    for (const [fn, method, passesArgument] of cases) {
      const call = arrowCall(fn);
      // Test sources are compiled: `this` may be rewritten; the Function-made ones are exact.
      if (call === undefined && !Function.prototype.toString.call(fn).includes("this.")) continue;
      expect(call).toEqual({ method, passesArgument });
    }
  });

  test.each([
    "return x => this.moved(x, 1)",
    "return x => this.moved(y)",
    "return (x, y) => this.moved(x)",
    "return x => { this.a(x); this.b(x); }",
    "return x => other.moved(x)",
    "return x => this.moved(x).then(() => 0)",
    "return async x => this.moved(x)",
    "return function (x) { this.moved(x); }",
    "return x => this.a.b(x)",
  ])("`%s` is not such an arrow", (body) => {
    expect(arrowCall(new Function(body)() as never)).toBeUndefined();
  });

  class Board extends Model {
    moves: unknown[] = [];
    resets = 0;
    override init(): void {
      this.subscribe("b", "move", new Function("return x => this.move(x)").call(this));
      this.subscribe("b", "reset", new Function("return () => this.reset()").call(this));
      this.subscribe("b", "stop", this.stop);
    }
    stop(): void {
      this.unsubscribe("b", "move", new Function("return d => this.move(d)").call(this));
    }
    move(x: unknown): void {
      this.moves.push(x);
    }
    reset(): void {
      this.resets++;
    }
    tryBad(kind: string): void {
      if (kind === "closure") this.subscribe("b", "x", new Function("return x => this.moves.push(x)").call(this));
      if (kind === "missing") this.subscribe("b", "x", new Function("return x => this.nothing(x)").call(this));
    }
  }
  Board.register("CompatApi.Board");

  test("such a subscription is stored by name: it runs, survives a snapshot and can be unsubscribed with another such arrow", () => {
    const h = makeVM("s-arrow");
    h.root(Board);
    h.relay(10, "b", "move", 1);
    h.relay(20, "b", "reset");
    const board = h.vm.wellKnownModel("modelRoot") as Board;
    expect(board.moves).toEqual([1]);
    expect(board.resets).toBe(1);
    const snapshot = serializeVM(h.vm, registry);
    const restored = makeVM("s-arrow", deserialize(snapshot, { classById: (id) => registry.codecById(id) }));
    const copy = restored.vm.wellKnownModel("modelRoot") as Board;
    restored.relay(30, "b", "move", 2);
    expect(copy.moves).toEqual([1, 2]);
    restored.relay(40, "b", "stop");
    restored.relay(50, "b", "move", 3);
    expect(copy.moves).toEqual([1, 2]);
    expect(h.errors).toEqual([]);
    expect(restored.errors).toEqual([]);
  });

  test("other functions still get the clear error", () => {
    class Bad extends Model {
      override init(options: { kind: string }): void {
        (Board.prototype.tryBad as (this: Model, kind: string) => void).call(this, options.kind);
      }
      moves: unknown[] = [];
      move(): void {}
    }
    Bad.register("CompatApi.Bad");
    for (const [kind, message] of [
      ["closure", /the handler must be a method of Bad .*x => this.someMethod\(x\)/],
      ["missing", /calls this.nothing\(\), but Bad has no method "nothing"/],
    ] as const) {
      const h = makeVM(`s-bad-${kind}`);
      expect(() => h.root(Bad, { kind })).toThrow(message);
    }
    class TakesArg extends Model {
      override init(): void {
        this.subscribe("b", "x", new Function("return () => this.move()").call(this));
      }
      move(_x: unknown): void {}
    }
    TakesArg.register("CompatApi.TakesArg");
    expect(() => makeVM("s-takes").root(TakesArg)).toThrow(/without the event's data, but move takes an argument/);
  });
});

describe("Model.isExecuting", () => {
  test("true in model code only", () => {
    const seen: boolean[] = [];
    class Probe extends Model {
      override init(): void {
        seen.push(Model.isExecuting());
        this.subscribe("p", "go", this.go);
      }
      go(): void {
        seen.push(Model.isExecuting());
      }
    }
    Probe.register("CompatApi.Probe");
    const h = makeVM("s-exec");
    expect(Model.isExecuting()).toBe(false);
    h.root(Probe);
    h.relay(5, "p", "go");
    expect(seen).toEqual([true, true]);
    expect(Model.isExecuting()).toBe(false);
  });
});

describe("persistSession with the data itself", () => {
  class Keeper extends Model {
    static persistDelay = 100;
    items: string[] = [];
    override init(): void {
      this.subscribe("k", "add", this.add);
      this.subscribe("k", "bad", this.bad);
    }
    add(item: string): void {
      this.items.push(item);
      this.persistSession({ items: this.items });
      this.items.push("later, unsaved");
    }
    bad(kind: string): void {
      this.persistSession(kind === "null" ? (null as never) : (7 as never));
    }
  }
  Keeper.register("CompatApi.Keeper");

  test("is copied at the call and saved when due", () => {
    const h = makeVM("s-persist-object");
    h.root(Keeper);
    h.relay(10, "k", "add", "a");
    h.tick(200);
    const saved = h.vm.persistence.unacked();
    expect(saved).toHaveLength(1);
    expect(JSON.parse(saved[0]!.json)).toEqual({ items: ["a"] });
  });

  test("anything but an object or a function is a clear error (reported; the session goes on)", () => {
    const h = makeVM("s-persist-bad");
    h.root(Keeper);
    h.relay(10, "k", "bad", "null");
    h.relay(11, "k", "bad", "number");
    expect(h.errors.map((e) => String(e.error))).toEqual([
      expect.stringMatching(/persistSession\(data\): data must be an object or array .*got null/),
      expect.stringMatching(/persistSession\(data\): data must be an object or array .*got number/),
    ]);
  });
});

describe("functions and classes in Constants", () => {
  test("are hashed by their source text", () => {
    const a = constantsText({ SPEED: 2, clamp: (v: number) => Math.min(1, v) });
    const same = constantsText({ SPEED: 2, clamp: (v: number) => Math.min(1, v) });
    const other = constantsText({ SPEED: 2, clamp: (v: number) => Math.max(1, v) });
    expect(a).toBe(same);
    expect(a).not.toBe(other);
    expect(a).toContain("Math.min(1, v)");
    expect(constantsText({ n: 1, nested: { f: function f() { return 1; } } })).not.toBe(constantsText({ n: 1, nested: { f: function f() { return 2; } } }));
    // Plain data hashes as before (stable JSON).
    expect(constantsText({ b: 1, a: [1, "x"] })).toBe('{"a":[1,"x"],"b":1}');
  });

  test("a class minified into a function is hashed with its prototype's methods", () => {
    const Vec = new Function("function Vec(x) { this.x = x; } Vec.prototype.len = function () { return Math.abs(this.x); }; return Vec;")() as () => unknown;
    const Vec2 = new Function("function Vec(x) { this.x = x; } Vec.prototype.len = function () { return this.x; }; return Vec;")() as () => unknown;
    expect(functionSource(Vec)).toContain("len:function () { return Math.abs(this.x); }");
    expect(functionSource(Vec)).not.toBe(functionSource(Vec2));
    expect(functionSource(class A { m() { return 1; } } as never)).toMatch(/^class A/);
  });

  test("freezing them freezes functions' own values but not a helper class's prototype", () => {
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Constants, freezeConstants } = require("../src/kernel/constants") as typeof import("../src/kernel/constants");
      class Helper {
        static LIMIT = 3;
        twice(n: number): number {
          return 2 * n;
        }
      }
      Constants.Helper = Helper;
      void freezeConstants();
      expect(Object.isFrozen(Helper)).toBe(true);
      expect(Object.isFrozen(Helper.prototype)).toBe(false);
      expect(new Helper().twice(2)).toBe(4);
    });
  });
});

describe("URL options", () => {
  test("query strings parse the way Croquet reads them", () => {
    expect(parseQuery("?q=room&n=3&f=1.5&on=true&off=false&nil=null&flag&list=[a,b]&json=[1,2]&s=%22x%22&text=hello+world&obj={\"a\":1}")).toEqual({
      q: "room", n: 3, f: 1.5, on: true, off: false, nil: null, flag: true, list: ["a", "b"], json: [1, 2], s: "x", text: "hello world", obj: { a: 1 },
    });
    expect(parseQuery("#pw=secret&level=2")).toEqual({ pw: "secret", level: 2 });
    expect(parseQuery("?__proto__=1&bad=%E0%A4%A")).toEqual({ bad: "%E0%A4%A" });
  });

  test("Node's command line stands in for the URL", () => {
    expect(parseArguments(["--q=room", "--level", "3", "file.js", "-x=1", "--fast"])).toEqual({ q: "room", level: 3, fast: true, x: 1 });
  });

  test("optionsFromUrl takes only the named options, overriding the app's", () => {
    const saved = (globalThis as { location?: unknown }).location;
    (globalThis as { location?: unknown }).location = { search: "?level=3&other=9", hash: "#pw=x&mode=hard" };
    try {
      expect(urlOptions()).toMatchObject({ level: 3, other: 9, pw: "x", mode: "hard" });
      expect(withUrlOptions({ level: 1, keep: true }, ["level", "mode", "absent"])).toEqual({ level: 3, mode: "hard", keep: true });
      expect(withUrlOptions({ level: 1 }, undefined)).toEqual({ level: 1 });
      expect(() => withUrlOptions({}, "level")).toThrow(/optionsFromUrl must be a list of option names/);
    } finally {
      (globalThis as { location?: unknown }).location = saved;
    }
  });
});

describe("Session.join without name or password", () => {
  const app = { autoSession: jest.fn(async () => "auto-name"), autoPassword: jest.fn(async () => "auto-pw") };
  afterEach(() => jest.clearAllMocks());

  test("a given name and password are used as they are (promises resolved)", async () => {
    expect(await sessionNames({ name: Promise.resolve("n"), password: "p" }, app)).toEqual({ name: "n", password: "p" });
    expect(await sessionNames({ name: "n" }, app)).toEqual({ name: "n", password: undefined }); // the caller's error, as in Croquet
    expect(app.autoSession).not.toHaveBeenCalled();
  });

  test("in a page, App.autoSession() and (unless given) App.autoPassword()", async () => {
    const saved = (globalThis as { location?: unknown }).location;
    (globalThis as { location?: unknown }).location = { search: "", hash: "" };
    try {
      expect(await sessionNames({}, app)).toEqual({ name: "auto-name", password: "auto-pw" });
      expect(await sessionNames({ password: "mine" }, app)).toEqual({ name: "auto-name", password: "mine" });
      expect(app.autoPassword).toHaveBeenCalledTimes(1);
    } finally {
      (globalThis as { location?: unknown }).location = saved;
    }
  });

  test("in Node, --q= and --pw= on the command line, else made up and announced", async () => {
    const argv = process.argv;
    const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
    try {
      process.argv = ["node", "app.js", "--q=shared", "--pw=pw1"];
      expect(await sessionNames({}, app)).toEqual({ name: "shared", password: "pw1" });
      expect(warn).not.toHaveBeenCalled();
      process.argv = ["node", "app.js"];
      expect(await sessionNames({}, app)).toEqual({ name: "auto-name", password: "auto-pw" });
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('joined new session "auto-name". Run another client with --q=auto-name --pw=auto-pw'));
    } finally {
      process.argv = argv;
      warn.mockRestore();
    }
  });
});

describe("Messenger", () => {
  function fakeWindow(top?: object) {
    const listeners: Array<(e: { data: unknown; source: unknown }) => void> = [];
    const posted: unknown[] = [];
    const w = {
      top: undefined as unknown,
      posted,
      postMessage: (message: unknown, origin: string) => posted.push([message, origin]),
      addEventListener: (_t: string, l: (e: { data: unknown; source: unknown }) => void) => listeners.push(l),
      removeEventListener: (_t: string, l: (e: { data: unknown; source: unknown }) => void) => listeners.splice(listeners.indexOf(l), 1),
      deliver: (data: unknown, source: unknown) => [...listeners].forEach((l) => l({ data, source })),
      listeners,
    };
    w.top = top ?? w;
    return w;
  }

  test("an app in an iframe sends to the top window and gets the container's messages", () => {
    const top = fakeWindow();
    const frame = fakeWindow(top);
    const m = new LockstepMessenger(() => frame as never);
    expect(m.isInIframe).toBe(true);
    const receiver = { got: [] as unknown[], onInfo(data: unknown, source: unknown) { this.got.push([data, source]); } };
    expect(() => m.on("userInfo", "onInfo")).toThrow(/setReceiver/);
    m.setReceiver(receiver);
    m.on("userInfo", "onInfo");
    expect(() => m.on("userInfo", "onInfo")).toThrow(/subscribed already/);
    expect(() => m.on("x", "noSuchMethod")).toThrow(UsageError);
    m.send("requestUserInfo", { who: 1 });
    expect(top.posted).toEqual([[{ event: "requestUserInfo", data: { who: 1 } }, "*"]]);
    frame.deliver({ event: "userInfo", data: { name: "ann" } }, top);
    frame.deliver("not ours", top);
    expect(receiver.got).toEqual([[{ name: "ann" }, top]]);
    m.removeSubscription("userInfo", "onInfo");
    frame.deliver({ event: "userInfo", data: 2 }, top);
    expect(receiver.got).toHaveLength(1);
    m.detach();
    expect(frame.listeners).toHaveLength(0);
    expect(m.ready).toBe(false);
  });

  test("the container sends to one window, or to every enumerated iframe", () => {
    const page = fakeWindow();
    const a = fakeWindow(page);
    const b = fakeWindow(page);
    const m = new LockstepMessenger(() => page as never);
    expect(m.isInIframe).toBe(false);
    m.send("nobody"); // no enumerator yet: nothing, no error
    m.setIframeEnumerator(() => [{ contentWindow: a }, { contentWindow: b }, { contentWindow: null }]);
    m.send("all", 1);
    m.send("one", 2, a);
    expect(a.posted).toEqual([[{ event: "all", data: 1 }, "*"], [{ event: "one", data: 2 }, "*"]]);
    expect(b.posted).toEqual([[{ event: "all", data: 1 }, "*"]]);
  });

  test("outside a browser every call is safe", () => {
    const m = new LockstepMessenger(() => undefined);
    m.setReceiver({ h() {} });
    m.on("e", "h");
    m.send("e", 1);
    m.startPublishingPointerMove();
    m.detach();
    expect(m.isInIframe).toBe(false);
  });
});

test("VERSION is the package's version", () => {
  const pkg = JSON.parse(readFileSync(pathJoin(__dirname, "..", "package.json"), "utf8")) as { version: string };
  expect(VERSION).toBe(pkg.version);
});
