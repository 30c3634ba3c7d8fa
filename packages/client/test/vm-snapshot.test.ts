import { Model } from "../src/kernel/model";
import { registry } from "../src/kernel/registry";
import { deserialize, serialize } from "../src/serializer/index";
import { makeVM } from "./vm-helpers";

/** A model graph with everything a snapshot must carry: children, shared refs, futures, subscriptions, PRNG use. */
class World extends Model {
  things: Thing[] = [];
  byName = new Map<string, Thing>();
  log: string[] = [];
  override init(): void {
    this.subscribe("w", "spawn", this.spawn);
    this.subscribe("w", "poke", this.poke);
    this.future(50).heartbeat();
  }
  spawn(name: string): void {
    const t = Thing.create({ name, world: this });
    this.things.push(t);
    this.byName.set(name, t);
  }
  poke(name: string): void {
    this.byName.get(name)?.poked();
  }
  heartbeat(): void {
    this.log.push(`beat@${this.now()}:${Math.floor(this.random() * 100)}`);
    this.future(50).heartbeat();
  }
}
World.register("VmSnapshot.World");

class Thing extends Model {
  name = "";
  world!: World;
  pokes = 0;
  override init(options: { name: string; world: World }): void {
    this.name = options.name;
    this.world = options.world;
    this.subscribe(this.id, "nudge", this.nudged);
  }
  poked(): void {
    this.pokes++;
    this.publish(this.id, "nudge", this.pokes);
    this.future(Math.floor(Math.random() * 30)).settle();
  }
  nudged(n: number): void {
    this.world.log.push(`${this.name} nudged ${n}`);
  }
  settle(): void {
    this.world.log.push(`${this.name} settled@${this.now()}`);
  }
}
Thing.register("VmSnapshot.Thing");

const codecs = { classOf: (o: object) => registry.codecOf(o), classById: (id: string) => registry.codecById(id) };
const bytesOf = (t: ReturnType<typeof makeVM>) => serialize(t.vm.state(), codecs);

test("a VM restored from its snapshot continues exactly like the original", () => {
  const a = makeVM("snap");
  a.root(World);
  a.relay(10, "w", "spawn", "ann");
  a.relay(20, "w", "spawn", "bob");
  a.relay(30, "w", "poke", "ann");
  a.tick(75);
  const snapshot = bytesOf(a);

  const b = makeVM("snap", deserialize(snapshot, codecs));
  expect(bytesOf(b)).toEqual(snapshot);
  const root = b.vm.wellKnownModel("modelRoot") as World;
  expect(root).toBeInstanceOf(World);
  expect(root.byName.get("ann")).toBe(root.things[0]);
  expect(root.things[0]!.world).toBe(root);
  expect(b.vm.getModel(root.things[1]!.id)).toBe(root.things[1]);

  // Same entries from here on: identical state, futures and PRNG included.
  for (const t of [a, b]) {
    t.relay(80, "w", "poke", "bob");
    t.relay(90, "w", "spawn", "cid");
    t.relay(95, "w", "poke", "cid");
    t.tick(400);
  }
  expect(bytesOf(b)).toEqual(bytesOf(a));
  expect((b.vm.wellKnownModel("modelRoot") as World).log).toEqual((a.vm.wellKnownModel("modelRoot") as World).log);
  expect(a.errors).toEqual([]);
  expect(b.errors).toEqual([]);
});

test("a snapshot of another session, or of something else, is refused", () => {
  const a = makeVM("one");
  a.root(World);
  const state = deserialize(bytesOf(a), codecs);
  expect(() => makeVM("two", state)).toThrow(/belongs to session one/);
  expect(() => makeVM("one", { hello: 1 })).toThrow(/not a Lockstep VM state/);
});

/** A plain class used in model state, declared through `static types()`. */
class Vec {
  constructor(
    public x: number,
    public y: number,
  ) {}
  length(): number {
    return Math.hypot(this.x, this.y);
  }
}
/** A class with its own encoding. */
class Color {
  constructor(public readonly hex: string) {}
}

class Shapes extends Model {
  points: Vec[] = [];
  color = new Color("#ff8800");
  static override types() {
    return { Vec, Color: { cls: Color, write: (c: Color) => c.hex, read: (hex: string) => new Color(hex) } };
  }
  override init(): void {
    this.points.push(new Vec(3, 4));
  }
}
Shapes.register("VmSnapshot.Shapes");

test("classes declared in static types() come back with their prototypes and custom codecs", () => {
  const a = makeVM("types");
  a.root(Shapes);
  const b = makeVM("types", deserialize(bytesOf(a), codecs));
  const root = b.vm.wellKnownModel("modelRoot") as Shapes;
  expect(root.points[0]).toBeInstanceOf(Vec);
  expect(root.points[0]!.length()).toBe(5);
  expect(root.color).toBeInstanceOf(Color);
  expect(root.color.hex).toBe("#ff8800");
  expect(bytesOf(b)).toEqual(bytesOf(a));
});
