import { Model } from "../src/kernel/model";
import { UsageError } from "../src/errors";
import { bundlePlaintext } from "../src/session/payload";
import { makeVM } from "./vm-helpers";

const enc = new TextEncoder();

/** Records every call into `log`, so tests can assert the exact order the VM ran things in. */
class Recorder extends Model {
  log: string[] = [];
  override init() {
    this.subscribe("test", "go", this.onGo);
    this.subscribe("test", "schedule", this.onSchedule);
    this.subscribe("test", "chain", this.chain);
  }
  onGo(data: string) {
    this.log.push(`go:${data}@${this.now()}`);
  }
  onSchedule(spec: Array<[number, string]>) {
    for (const [ms, label] of spec) this.future(ms).mark(label);
  }
  mark(label: string) {
    this.log.push(`future:${label}@${this.now()}`);
  }
  chain(n: number) {
    this.log.push(`chain:${n}@${this.now()}`);
    if (n > 0) this.future(0).chain(n - 1);
  }
}
Recorder.register("VmTest.Recorder");

describe("VM ordering", () => {
  test("futures run in time order, ties in scheduling order", () => {
    const t = makeVM();
    const m = t.root<Recorder>(Recorder);
    t.relay(0, "test", "schedule", [[30, "c"], [10, "a"], [10, "b"], [20, "x"]]);
    t.tick(100);
    expect(m.log).toEqual(["future:a@10", "future:b@10", "future:x@20", "future:c@30"]);
  });

  test("a future due at an event's time runs before that event", () => {
    const t = makeVM();
    const m = t.root<Recorder>(Recorder);
    t.relay(0, "test", "schedule", [[50, "due"]]);
    t.relay(50, "test", "go", "external");
    expect(m.log).toEqual(["future:due@50", "go:external@50"]);
  });

  test("futures due between events run in between, at their own time", () => {
    const t = makeVM();
    const m = t.root<Recorder>(Recorder);
    t.relay(0, "test", "schedule", [[10, "a"], [70, "b"]]);
    t.relay(40, "test", "go", "e1");
    t.relay(90, "test", "go", "e2");
    expect(m.log).toEqual(["future:a@10", "go:e1@40", "future:b@70", "go:e2@90"]);
  });

  test("future(0) from a handler runs right after it, at the same time, without another event", () => {
    const t = makeVM();
    const m = t.root<Recorder>(Recorder);
    t.relay(5, "test", "schedule", [[0, "now"]]);
    expect(m.log).toEqual(["future:now@5"]);
  });

  test("a bundle's events run in order as if each were its own entry: a future(0) of one runs before the next; a bad one is dropped alone", () => {
    const t = makeVM();
    const m = t.root<Recorder>(Recorder);
    t.join(0, "bundler");
    const bodies = [
      enc.encode(JSON.stringify({ scope: "test", event: "schedule", data: [[0, "soon"]] })),
      enc.encode("not json"),
      enc.encode(JSON.stringify({ scope: "test", event: "go", data: "second" })),
    ];
    t.relayPayload(5, bundlePlaintext(t.nextStamp("bundler"), bodies));
    expect(m.log).toEqual(["future:soon@5", "go:second@5"]);
    expect(t.errors.map((e) => e.context)).toEqual([`relayed message #${t.vm.seq}`]);
    // The bundle's stamp is applied once: the same bytes again are a replay, dropped whole.
    t.relayPayload(6, bundlePlaintext({ viewId: "bundler", joinSeq: t.vm.seq - 1, counter: 1 }, bodies));
    expect(m.log).toEqual(["future:soon@5", "go:second@5"]);
  });

  test("ticks advance time and run due futures; time never goes back", () => {
    const t = makeVM();
    const m = t.root<Recorder>(Recorder);
    t.relay(0, "test", "schedule", [[25, "a"]]);
    t.tick(20);
    expect(m.log).toEqual([]);
    expect(t.vm.time).toBe(20);
    t.tick(25);
    expect(m.log).toEqual(["future:a@25"]);
    t.tick(10);
    expect(t.vm.time).toBe(25);
  });

  test("chained future(0) calls all run at the same time", () => {
    const t = makeVM();
    const m = t.root<Recorder>(Recorder);
    t.relay(7, "test", "chain", 3);
    expect(m.log).toEqual(["chain:3@7", "chain:2@7", "chain:1@7", "chain:0@7"]);
  });
});

class Canceller extends Model {
  fired: string[] = [];
  results: boolean[] = [];
  override init() {
    this.future(10).ping("first");
    this.future(20).ping("second");
    this.future(5).pong();
    this.subscribe("c", "cancel", this.doCancel);
  }
  ping(label: string) {
    this.fired.push(label);
  }
  pong() {
    this.fired.push("pong");
  }
  doCancel() {
    this.results.push(this.cancelFuture(this.ping));
    this.results.push(this.cancelFuture("pong"));
    this.results.push(this.cancelFuture(this.pong));
  }
}
Canceller.register("VmTest.Canceller");

test("cancelFuture removes the earliest pending call of that method and says whether there was one", () => {
  const t = makeVM();
  const m = t.root<Canceller>(Canceller);
  t.relay(1, "c", "cancel");
  t.tick(100);
  expect(m.results).toEqual([true, true, false]);
  expect(m.fired).toEqual(["second"]);
});

class Dice extends Model {
  rolls: number[] = [];
  override init() {
    this.subscribe("d", "roll", this.roll);
  }
  roll() {
    this.rolls.push(this.random(), Math.random(), Date.now());
  }
}
Dice.register("VmTest.Dice");

describe("randomness and time inside model code", () => {
  test("the same session id gives the same random sequence, another id a different one", () => {
    const a = makeVM("session-a");
    const b = makeVM("session-a");
    const c = makeVM("session-c");
    const ma = a.root<Dice>(Dice);
    const mb = b.root<Dice>(Dice);
    const mc = c.root<Dice>(Dice);
    for (const t of [a, b, c]) for (let i = 1; i <= 5; i++) t.relay(i * 10, "d", "roll");
    expect(ma.rolls).toEqual(mb.rolls);
    expect(ma.rolls).not.toEqual(mc.rolls);
  });

  test("Math.random() in model code draws from the session PRNG, and Date.now() is model time", () => {
    const a = makeVM("prng");
    const ma = a.root<Dice>(Dice);
    a.relay(42, "d", "roll");
    const [own, fromMath, now] = ma.rolls;
    // A VM with the same seed yields the same first two draws through either API.
    const b = makeVM("prng");
    const mb = b.root<Dice>(Dice);
    b.relay(42, "d", "roll");
    expect(mb.rolls.slice(0, 2)).toEqual([own, fromMath]);
    expect(own).not.toBe(fromMath);
    expect(now).toBe(42);
  });

  test("Math.random and Date.now are the real ones again outside model code", () => {
    const realRandom = Math.random;
    const realNow = Date.now;
    const t = makeVM();
    t.root<Dice>(Dice);
    t.relay(1, "d", "roll");
    expect(Math.random).toBe(realRandom);
    expect(Date.now).toBe(realNow);
    expect(Date.now()).toBeGreaterThan(1_000_000_000_000);
  });
});

class Parent extends Model {
  children: Model[] = [];
  received: unknown[] = [];
  override init() {
    this.subscribe(this.id, "hello", this.onHello);
    this.subscribe("p", "spawn", this.spawn);
    this.subscribe("p", "kill", this.kill);
  }
  spawn() {
    this.children.push(Child.create({ parent: this }));
  }
  kill() {
    this.children.shift()?.destroy();
  }
  onHello(data: unknown) {
    this.received.push(data);
  }
}
Parent.register("VmTest.Parent");
class Child extends Model {
  parentModel!: Parent;
  override init(options: { parent: Parent }) {
    this.parentModel = options.parent;
    this.publish(options.parent.id, "hello", this.id);
    this.future(100).later();
  }
  later() {
    this.publish(this.parentModel.id, "hello", `later:${this.id}`);
  }
}
Child.register("VmTest.Child");

describe("models", () => {
  test("ids are deterministic and model publish reaches model subscribers synchronously", () => {
    const t = makeVM();
    const p = t.root<Parent>(Parent);
    expect(p.id).toBe("M1");
    t.relay(1, "p", "spawn");
    t.relay(2, "p", "spawn");
    expect(p.children.map((c) => c.id)).toEqual(["M2", "M3"]);
    expect(p.received).toEqual(["M2", "M3"]);
    expect(t.vm.wellKnownModel("modelRoot")).toBe(p);
    expect(t.vm.getModel("M2")).toBe(p.children[0]);
  });

  test("model events are offered to views after model subscribers ran", () => {
    const t = makeVM();
    const p = t.root<Parent>(Parent);
    t.relay(1, "p", "spawn");
    expect(t.viewEvents).toContainEqual([`${p.id}:hello`, "M2"]);
  });

  test("destroy drops the model's futures and subscriptions", () => {
    const t = makeVM();
    const p = t.root<Parent>(Parent);
    t.relay(1, "p", "spawn");
    t.relay(2, "p", "spawn");
    t.relay(3, "p", "kill");
    t.tick(500);
    expect(p.received).toEqual(["M2", "M3", "later:M3"]);
    expect(t.vm.getModel("M2")).toBeUndefined();
  });

  test("view-join and view-exit arrive in the session scope and keep viewCount", () => {
    class Lobby extends Model {
      seen: string[] = [];
      override init() {
        this.subscribe(this.sessionId, "view-join", this.joined);
        this.subscribe(this.sessionId, "view-exit", this.exited);
      }
      joined(viewId: string) {
        this.seen.push(`+${viewId}:${this.viewCount}`);
      }
      exited(viewId: string) {
        this.seen.push(`-${viewId}:${this.viewCount}`);
      }
    }
    Lobby.register("VmTest.Lobby");
    const t = makeVM();
    const m = t.root<Lobby>(Lobby);
    t.join(1, "a");
    t.join(2, "b");
    t.exit(3, "a");
    t.exit(4, "zzz"); // never joined: not announced
    expect(m.seen).toEqual(["+a:1", "+b:2", "-a:1"]);
  });

  test("a relayed view-join or view-exit in the session scope (a forged system event) is dropped and reported", () => {
    class Guests extends Model {
      seen: string[] = [];
      override init() {
        this.subscribe(this.sessionId, "view-join", this.joined);
        this.subscribe(this.sessionId, "view-exit", this.exited);
        this.subscribe("room", "view-join", this.other);
      }
      joined(viewId: string) {
        this.seen.push(`+${viewId}`);
      }
      exited(viewId: string) {
        this.seen.push(`-${viewId}`);
      }
      other(name: string) {
        this.seen.push(`room:${name}`);
      }
    }
    Guests.register("VmTest.Guests");
    const t = makeVM("sess-1");
    const m = t.root<Guests>(Guests);
    t.join(1, "real");
    t.relay(2, "sess-1", "view-join", "forged", "real");
    t.relay(3, "sess-1", "view-exit", "real", "real");
    t.relay(4, "room", "view-join", "fine", "real"); // the same event name in an app scope is the app's business
    expect(m.seen).toEqual(["+real", "room:fine"]);
    expect(m.viewCount).toBe(1);
    expect(t.errors.map((e) => String(e.error))).toEqual([
      expect.stringContaining('system event "view-join"'),
      expect.stringContaining('system event "view-exit"'),
    ]);
  });

  test("a throwing handler is reported and the stream goes on", () => {
    class Fragile extends Model {
      count = 0;
      override init() {
        this.subscribe("f", "boom", this.boom);
        this.subscribe("f", "inc", this.inc);
      }
      boom() {
        throw new Error("kaboom");
      }
      inc() {
        this.count++;
      }
    }
    Fragile.register("VmTest.Fragile");
    const t = makeVM();
    const m = t.root<Fragile>(Fragile);
    t.relay(1, "f", "boom");
    t.relay(2, "f", "inc");
    expect(m.count).toBe(1);
    expect(t.errors).toHaveLength(1);
    expect(String(t.errors[0]!.error)).toContain("kaboom");
  });
});

describe("clear errors for misuse", () => {
  test("new on a Model", () => {
    expect(() => new Recorder()).toThrow(/Recorder\.create\(options\), not new Recorder\(\)/);
  });

  test("create outside model code", () => {
    expect(() => Recorder.create()).toThrow(UsageError);
  });

  test("an unregistered class", () => {
    class Stray extends Model {}
    const t = makeVM();
    expect(() => t.root(Stray)).toThrow(/Stray is not registered: call Stray\.register\("Stray"\)/);
  });

  test("model API from view code", () => {
    const t = makeVM();
    const m = t.root<Recorder>(Recorder);
    expect(() => m.publish("x", "y")).toThrow(/called from view or app code/);
    expect(() => m.random()).toThrow(UsageError);
    expect(() => m.future(10)).toThrow(UsageError);
    // reading is fine
    expect(m.now()).toBe(0);
  });

  test("a handler that cannot be serialized", () => {
    class Closure extends Model {
      override init() {
        this.subscribe("a", "b", () => {});
      }
    }
    Closure.register("VmTest.Closure");
    const t = makeVM();
    expect(() => t.root(Closure)).toThrow(/must be a method of Closure/);
  });

  test("registering two classes under one id", () => {
    class One extends Model {}
    class Two extends Model {}
    One.register("VmTest.Same");
    expect(() => Two.register("VmTest.Same")).toThrow(/already registered/);
  });
});
