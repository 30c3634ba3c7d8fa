import { types } from "node:util";
import { MessageType } from "@lockstep/protocol";
import { runAsModel, runAsView } from "../src/kernel/execution";
import { Model } from "../src/kernel/model";
import { registry } from "../src/kernel/registry";
import { VirtualMachine, type ModelGuard, type ViewEvent } from "../src/kernel/vm";
import { deserialize, serialize } from "../src/serializer/index";
import { openPayload } from "../src/session/payload";
import { ViewDomain } from "../src/view/domain";
import { View, withRealm } from "../src/view/view";
import { createWriteGuard, writeGuardFor } from "../src/view/write-guard";
import { testPayload } from "./vm-helpers";

const ADVICE = "(model state may only change in model code: publish an event instead)";
const viewWrote = (what: string) => new TypeError(`debug=write: view code wrote ${what} ${ADVICE}`);

class Child extends Model {
  name = "";
  override init(options: { name: string }): void {
    this.name = options.name;
  }
}
Child.register("WriteGuard.Child");

class Counter extends Model {
  count = 0;
  items: number[] = [];
  config = { size: 1, nested: { deep: true } };
  scores = new Map<string, { points: number }>();
  seen = new Set<number>();
  byChild = new Map<Child, string>();
  bytes = new Uint8Array(4);
  child!: Child;
  children: Child[] = [];
  log: string[] = [];
  override init(): void {
    this.child = Child.create({ name: "first" });
    this.children.push(this.child);
    this.byChild.set(this.child, "first");
    this.child.beWellKnownAs("firstChild");
    this.subscribe("counter", "add", this.add);
    this.subscribe("counter", "spawn", this.spawn);
    this.subscribe("counter", "tidy", this.tidy);
    this.future(100).tick();
  }
  add(n: number): void {
    this.count += n;
    this.items.push(n);
    this.scores.set(`k${n}`, { points: n });
    this.seen.add(n);
    this.config.size = n;
    this.child.name = `child of ${this.count}`;
    // A pending future holding model state: the snapshot must share it, guard or not.
    this.future(50).consume(this.items, this.config);
    this.publish("counter", "changed", this.items);
  }
  consume(items: number[], config: { size: number }): void {
    this.log.push(`${items.length}/${config.size}@${this.now()}`);
  }
  spawn(name: string): void {
    const c = Child.create({ name });
    this.children.push(c);
    this.byChild.set(c, name);
  }
  tidy(): void {
    delete (this as { extra?: number }).extra;
    this.seen.clear();
    this.items.length = 0;
  }
  tick(): void {
    this.count++;
    (this as { extra?: number }).extra = this.count; // a property added by model code, after creation
    this.future(100).tick();
  }
}
Counter.register("WriteGuard.Counter");

const dec = new TextDecoder();
const codecs = { classOf: (o: object) => registry.codecOf(o), classById: (id: string) => registry.codecById(id) };

/** A VM the way vm-helpers builds one, with `guard` in its host; one view ("v1") joins a fresh VM. */
function replica(guard: ModelGuard | undefined, state?: unknown) {
  const viewEvents: Array<[string, unknown]> = [];
  const errors: unknown[] = [];
  const vm = new VirtualMachine({
    sessionId: "write-guard",
    registry,
    openPayload: (payload) => openPayload(payload),
    decodeEvent: (event) => JSON.parse(dec.decode(event)) as ViewEvent,
    decodeViewData: () => undefined,
    modelEvent: (topic, data) => viewEvents.push([topic, data]),
    reportError: (context, error) => errors.push([context, error]),
    modelGuard: guard,
  }, state);
  let seq = vm.seq;
  const [viewId, joinSeq, lastCounter] = vm.state().senders[0] ?? ["v1", 1, 0];
  let counter = lastCounter;
  const r = {
    vm,
    viewEvents,
    errors,
    get root(): Counter {
      return vm.wellKnownModel("modelRoot") as Counter;
    },
    relay(time: number, event: string, data?: unknown): void {
      const payload = testPayload({ viewId, joinSeq, counter: ++counter }, "counter", event, data);
      vm.processEntry({ type: MessageType.Relay, seq: ++seq, time, payload });
    },
    tick(time: number): void {
      vm.advanceTo(time);
    },
    bytes: (): Uint8Array => serialize(vm.state(), codecs),
  };
  if (state === undefined) {
    vm.createRoot(Counter, {}, undefined);
    vm.processEntry({ type: MessageType.ViewJoin, seq: ++seq, time: 0, viewId, viewData: new Uint8Array(0) });
  }
  return r;
}

const guarded = (state?: unknown) => replica(createWriteGuard(), state);

test("a write from view code to the root model throws at the write, naming class and property", () => {
  const { root } = guarded();
  expect(() => {
    root.count = 5;
  }).toThrow(viewWrote("Counter.count"));
  expect(() => {
    root.count++;
  }).toThrow(TypeError);
  expect(() => {
    (root as unknown as { extra: number }).extra = 1; // a new property
  }).toThrow(viewWrote("Counter.extra"));
  expect(() => Object.defineProperty(root, "count", { value: 9 })).toThrow(viewWrote("Counter.count"));
  expect(() => Object.freeze(root)).toThrow("debug=write: view code froze or sealed Counter");
  expect(() => Object.setPrototypeOf(root, null)).toThrow("debug=write: view code changed the prototype of Counter");
  expect(root.count).toBe(0);
  expect("extra" in root).toBe(false);
});

test("a delete from view code throws", () => {
  const { root } = guarded();
  expect(() => {
    delete (root as Partial<Counter>).count;
  }).toThrow(new TypeError(`debug=write: view code deleted Counter.count ${ADVICE}`));
  expect(() => {
    delete (root.config as Partial<Counter["config"]>).size;
  }).toThrow(`debug=write: view code deleted Counter.config.size`);
  expect(root.count).toBe(0);
  expect(root.config.size).toBe(1);
});

test("nested models are guarded, and every path reaches the same object", () => {
  const r = guarded();
  r.relay(10, "spawn", "second");
  const { root, vm } = r;
  const child = root.child;
  expect(() => {
    child.name = "x";
  }).toThrow(viewWrote("Child.name"));
  expect(() => {
    root.children[1]!.name = "x";
  }).toThrow(viewWrote("Child.name"));
  // One object per model: model properties, arrays and Map keys of the state, getModel, wellKnownModel.
  expect(root.children[0]).toBe(child);
  expect(vm.getModel(child.id)).toBe(child);
  expect(root.getModel(child.id)).toBe(child);
  expect(vm.wellKnownModel("firstChild")).toBe(child);
  expect(root.wellKnownModel("modelRoot")).toBe(root);
  expect(root.byChild.get(child)).toBe("first");
  expect(root.byChild.get(root.children[1]!)).toBe("second");
  expect([...root.byChild.keys()]).toEqual([child, root.children[1]]);
  expect(child).toBeInstanceOf(Child);
  expect(child).toBeInstanceOf(Model);
  expect(types.isProxy(root) && types.isProxy(child)).toBe(true);
  // The model API still refuses view code the way it always did.
  expect(() => root.publish("counter", "add", 1)).toThrow(/called from view or app code/);
  expect(root.sessionId).toBe("write-guard");
});

test("plain objects, arrays, Maps and Sets in model state are read-only for view code", () => {
  const r = guarded();
  r.relay(10, "add", 1);
  r.relay(20, "add", 2);
  const { root } = r;
  expect(() => root.items.push(3)).toThrow(viewWrote("Counter.items[2]"));
  expect(() => root.items.sort((a, b) => b - a)).toThrow(TypeError);
  expect(() => {
    root.items.length = 0;
  }).toThrow(viewWrote("Counter.items.length"));
  expect(() => {
    root.config.nested.deep = false;
  }).toThrow(viewWrote("Counter.config.nested.deep"));
  expect(() => root.scores.set("k9", { points: 9 })).toThrow(`debug=write: view code called set() on Counter.scores ${ADVICE}`);
  expect(() => root.scores.delete("k1")).toThrow("view code called delete() on Counter.scores");
  expect(() => {
    root.scores.get("k1")!.points = 0;
  }).toThrow(viewWrote('Counter.scores.get("k1").points'));
  expect(() => root.seen.add(7)).toThrow("view code called add() on Counter.seen");
  expect(() => root.seen.clear()).toThrow("view code called clear() on Counter.seen");
  for (const [, score] of root.scores) expect(() => (score.points = 0)).toThrow(TypeError);

  // Reading works as ever, and one original gives one read-only object.
  expect([...root.items]).toEqual([1, 2]);
  expect(root.items.map((n) => n * 10)).toEqual([10, 20]);
  expect(JSON.stringify(root.config)).toBe('{"size":2,"nested":{"deep":true}}');
  expect({ ...root.config }.size).toBe(2);
  expect(root.items).toBe(root.items);
  expect(root.scores.size).toBe(2);
  expect(root.scores.get("k2")).toEqual({ points: 2 });
  expect([...root.scores.values()][0]).toBe(root.scores.get("k1"));
  expect([...root.scores.entries()].map(([k, v]) => `${k}=${v.points}`)).toEqual(["k1=1", "k2=2"]);
  const seen: number[] = [];
  root.seen.forEach((n) => seen.push(n));
  expect(seen).toEqual([1, 2]);
  expect(root.seen.has(2)).toBe(true);
  expect(Array.isArray(root.items) && root.scores instanceof Map && root.seen instanceof Set).toBe(true);
  expect(Object.getOwnPropertyDescriptor(root, "items")!.value).toBe(root.items);
  expect(root.count).toBe(3);
  expect(r.errors).toEqual([]);
});

test("not caught: typed arrays (view code gets them as they are)", () => {
  const { root } = guarded();
  expect(types.isProxy(root.bytes)).toBe(false);
  root.bytes[0] = 1; // documented in write-guard.ts
  expect(root.bytes[0]).toBe(1);
});

test("events a model publishes reach views read-only, as the same object the views read", () => {
  const r = guarded();
  r.relay(10, "add", 1);
  const [topic, data] = r.viewEvents.find(([t]) => t === "counter:changed")!;
  expect(topic).toBe("counter:changed");
  expect(data).toBe(r.root.items);
  expect(() => (data as number[]).push(2)).toThrow(TypeError);
  // Immediate view handlers run inside model execution, but as view code: still refused.
  expect(() =>
    runAsModel(r.vm, () =>
      runAsView(() => {
        r.root.count = 1;
      }),
    ),
  ).toThrow(viewWrote("Counter.count"));
});

test("model code writes freely with the guard on: init, create, handlers, futures", () => {
  const r = guarded();
  r.relay(10, "add", 4);
  r.relay(20, "spawn", "second");
  r.tick(250);
  const { root } = r;
  expect(r.errors).toEqual([]);
  expect(root.count).toBe(4 + 2); // add, and two ticks
  expect((root as unknown as { extra: number }).extra).toBe(6);
  expect([...root.items]).toEqual([4]);
  expect(root.scores.get("k4")!.points).toBe(4);
  expect(root.child.name).toBe("child of 4");
  expect(root.children.map((c) => c.name)).toEqual(["child of 4", "second"]);
  expect([...root.log]).toEqual(["1/4@60"]);
  r.relay(300, "tidy");
  expect(r.errors).toEqual([]);
  expect("extra" in root).toBe(false);
  expect(root.items.length).toBe(0);
  expect(root.seen.size).toBe(0);
  // Model code of another session is not this session's model code.
  const other = guarded();
  expect(() =>
    runAsModel(other.vm, () => {
      root.count = 0;
    }),
  ).toThrow(`debug=write: model code of another session wrote Counter.count ${ADVICE}`);
});

test("models restored from a snapshot are guarded, with the same identities, and run on identically", () => {
  const a = guarded();
  a.relay(10, "add", 1);
  a.relay(20, "spawn", "second");
  a.relay(30, "add", 2); // its future is pending in the snapshot
  const snapshot = a.bytes();

  const b = guarded(deserialize(snapshot, codecs));
  expect(b.bytes()).toEqual(snapshot);
  const root = b.root;
  expect(types.isProxy(root)).toBe(true);
  expect(root).toBeInstanceOf(Counter);
  expect(() => {
    root.count = 0;
  }).toThrow(viewWrote("Counter.count"));
  expect(() => {
    root.children[1]!.name = "x";
  }).toThrow(viewWrote("Child.name"));
  expect(() => root.items.push(1)).toThrow(viewWrote("Counter.items[2]"));
  expect(root.children[0]).toBe(root.child);
  expect(b.vm.getModel(root.child.id)).toBe(root.child);
  expect(b.vm.wellKnownModel("firstChild")).toBe(root.child);
  expect(root.byChild.get(root.children[1]!)).toBe("second");

  // Subscriptions and futures hold the same objects: the restored replica keeps in step.
  for (const t of [a, b]) {
    t.relay(40, "add", 3);
    t.tick(400);
  }
  expect(b.bytes()).toEqual(a.bytes());
  expect([...b.root.log]).toEqual([...a.root.log]);
  expect(b.errors).toEqual([]);
});

test("state bytes are identical with and without the guard", () => {
  const plain = replica(undefined);
  const checked = guarded();
  const step = (t: ReturnType<typeof replica>, i: number) => {
    t.relay(i * 40 + 10, "add", i);
    if (i % 3 === 0) t.relay(i * 40 + 20, "spawn", `c${i}`);
    if (i % 4 === 0) t.relay(i * 40 + 30, "tidy");
    t.tick(i * 40 + 35);
  };
  for (let i = 1; i <= 12; i++) {
    step(plain, i);
    step(checked, i);
    // View code reading everything between entries must not change what is written.
    const root = checked.root;
    void [root.items, root.config.nested, [...root.scores.values()], [...root.seen], [...root.byChild], root.children.map((c) => c.name)];
    expect(checked.bytes()).toEqual(plain.bytes());
  }
  expect(checked.errors).toEqual([]);
  // A guarded restore of the unguarded snapshot, and an unguarded restore of the guarded one.
  const bytes = plain.bytes();
  expect(guarded(deserialize(bytes, codecs)).bytes()).toEqual(bytes);
  expect(replica(undefined, deserialize(checked.bytes(), codecs)).bytes()).toEqual(bytes);
});

test("a view constructed on the root model gets the guarded one, identical to wellKnownModel's", () => {
  const r = guarded();
  const realm = {
    viewId: "v1",
    sessionId: r.vm.sessionId,
    domain: new ViewDomain(() => {}),
    session: undefined,
    modelTime: () => r.vm.time,
    externalNow: () => r.vm.time,
    extrapolatedNow: () => r.vm.time,
    publish: () => {},
    wellKnownModel: (name: string) => r.vm.wellKnownModel(name) as Model | undefined,
  };
  class ReadingView extends View {
    constructor(readonly model: Counter) {
      super(model);
    }
  }
  class WritingView extends View {
    constructor(model: Counter) {
      super(model);
      model.items.push(1);
    }
  }
  const view = withRealm(realm, () => new ReadingView(r.root));
  expect(view.model).toBe(view.wellKnownModel("modelRoot"));
  expect(() => withRealm(realm, () => new WritingView(r.root))).toThrow(viewWrote("Counter.items[0]"));
});

test("without the flag no guard is installed", () => {
  expect(writeGuardFor(new Set())).toBeUndefined();
  expect(writeGuardFor(new Set(["session"]))).toBeUndefined();
  expect(writeGuardFor(new Set(["session", "write"]))).toBeDefined();
  const r = replica(writeGuardFor(new Set(["session"])));
  r.relay(10, "add", 1);
  const root = r.root;
  expect(types.isProxy(root) || types.isProxy(root.child) || types.isProxy(root.items)).toBe(false);
  expect(types.isProxy(r.viewEvents.find(([t]) => t === "counter:changed")![1])).toBe(false);
  root.count = 5; // unguarded, as before
  expect(root.count).toBe(5);
});
