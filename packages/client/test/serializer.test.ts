/** Round trips of every supported kind of value, sharing, cycles, classes, refs and determinism. */
import { runInNewContext } from "node:vm";
import { deserialize, FORMAT_VERSION, SerializationError, serialize } from "../src/serializer/index";
import { hex, sameBytes, toHex } from "@lockstep/test-support";
import { graphDifference, Point, registry, Tagged, Vec3 } from "./serializer.helpers";

const options = registry();

/** Serializes, restores, checks structure and that the copy serializes to the same bytes. */
function roundTrip<T>(value: T): T {
  const bytes = serialize(value, options);
  expect(sameBytes(serialize(value, options), bytes)).toBe(true);
  const copy = deserialize(bytes, options) as T;
  expect(graphDifference(value, copy)).toBeUndefined();
  expect(toHex(serialize(copy, options))).toBe(toHex(bytes));
  return copy;
}

describe("serializer: primitives", () => {
  it.each([
    ["undefined", undefined],
    ["null", null],
    ["true", true],
    ["false", false],
    ["0", 0],
    ["-0", -0],
    ["NaN", NaN],
    ["Infinity", Infinity],
    ["-Infinity", -Infinity],
    ["small ints", 63],
    ["negative", -64],
    ["int32 max", 2147483647],
    ["int32 min", -2147483648],
    ["beyond int32", 2 ** 40 + 1],
    ["largest INT", 2 ** 52 - 1],
    ["smallest INT", -(2 ** 52)],
    ["2^52 (float)", 2 ** 52],
    ["MAX_SAFE_INTEGER", Number.MAX_SAFE_INTEGER],
    ["MIN_SAFE_INTEGER", Number.MIN_SAFE_INTEGER],
    ["MAX_VALUE", Number.MAX_VALUE],
    ["MIN_VALUE", Number.MIN_VALUE],
    ["EPSILON", Number.EPSILON],
    ["fraction", -0.1],
    ["empty string", ""],
    ["ascii", "hello"],
    ["unicode", "héllo wörld ✓ 日本語 🎉"],
    ["lone high surrogate", "a\ud800b"],
    ["lone low surrogate", "\udc00"],
    ["long string", "x".repeat(100_000)],
    ["long unicode", "🎉é".repeat(5_000)],
    ["bigint 0", 0n],
    ["bigint small", 7n],
    ["bigint negative", -255n],
    ["bigint 2^64", 2n ** 64n],
    ["bigint huge negative", -(3n ** 500n)],
    ["bigint odd hex digits", 0xabcn],
  ])("%s", (_name, value) => {
    const copy = roundTrip(value);
    expect(Object.is(copy, value)).toBe(true);
  });

  it("keeps -0 distinct from 0 and NaN as NaN inside containers", () => {
    const copy = roundTrip({ a: [-0, 0, NaN], m: new Map([[1, -0]]) });
    expect(Object.is(copy.a[0], -0)).toBe(true);
    expect(Object.is(copy.a[1], 0)).toBe(true);
    expect(Number.isNaN(copy.a[2])).toBe(true);
    expect(Object.is(copy.m.get(1), -0)).toBe(true);
  });

  it("canonicalises NaN bit patterns so every CPU writes the same bytes", () => {
    const weird = new Float64Array(new Uint32Array([1, 0xfff80000]).buffer)[0]!; // negative NaN with payload
    expect(toHex(serialize(weird, options))).toBe(toHex(serialize(NaN, options)));
  });
});

describe("serializer: containers", () => {
  it("plain objects keep insertion order (integer-like keys first, as JS orders them)", () => {
    const obj: Record<string, unknown> = { zeta: 1, alpha: 2, "odd key": 3, "": 4, 10: 5, 2: 6 };
    const copy = roundTrip(obj);
    expect(Object.keys(copy)).toEqual(Object.keys(obj));
  });

  it("null-prototype objects stay null-prototype", () => {
    const obj = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, b: "x" });
    const copy = roundTrip(obj);
    expect(Object.getPrototypeOf(copy)).toBeNull();
  });

  it("an own __proto__ property stays a property and does not change the prototype", () => {
    const obj = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const copy = roundTrip(obj);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(["__proto__", "a"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("arrays, nested, empty, and with holes", () => {
    // eslint-disable-next-line no-sparse-arrays
    const holes = [1, , , 4, , undefined];
    const copy = roundTrip({ empty: [], nested: [[1, [2, [3]]]], holes, trailing: new Array(5) });
    expect(1 in copy.holes).toBe(false);
    expect(5 in copy.holes).toBe(true);
    expect(copy.trailing.length).toBe(5);
  });

  it("a very sparse array stays small", () => {
    const sparse: unknown[] = [];
    sparse[100_000] = "end";
    const bytes = serialize(sparse, options);
    expect(bytes.length).toBeLessThan(20);
    roundTrip(sparse);
  });

  it("Map and Set with any keys, in insertion order", () => {
    const objKey = { k: 1 };
    const map = new Map<unknown, unknown>([
      ["b", 1],
      ["a", 2],
      [3, "three"],
      [objKey, [objKey]],
      [NaN, "nan"],
      [null, undefined],
      [10n, true],
    ]);
    const set = new Set<unknown>(["z", 1, objKey, NaN, undefined]);
    const copy = roundTrip({ map, set });
    expect([...copy.map.keys()].slice(0, 3)).toEqual(["b", "a", 3]);
    expect(copy.map.get(NaN)).toBe("nan");
  });

  it("ArrayBuffer, every typed array kind and DataView", () => {
    const buf = new ArrayBuffer(64);
    new Uint8Array(buf).forEach((_, i, a) => (a[i] = (i * 37) & 0xff));
    const views = {
      i8: new Int8Array([-128, 127]),
      u8: new Uint8Array([0, 255]),
      u8c: new Uint8ClampedArray([0, 255]),
      i16: new Int16Array([-32768, 32767]),
      u16: new Uint16Array([65535]),
      i32: new Int32Array([-(2 ** 31)]),
      u32: new Uint32Array([2 ** 32 - 1]),
      f32: new Float32Array([1.5, NaN, -0]),
      f64: new Float64Array([Math.PI, -0, Infinity]),
      i64: new BigInt64Array([-(2n ** 63n)]),
      u64: new BigUint64Array([2n ** 64n - 1n]),
      dv: new DataView(buf, 3, 7),
      windowed: new Uint16Array(buf, 8, 4),
      empty: new Float64Array(0),
      raw: buf,
    };
    const copy = roundTrip(views);
    expect(copy.dv.buffer).toBe(copy.raw);
    expect(copy.windowed.buffer).toBe(copy.raw);
    expect(copy.i64[0]).toBe(-(2n ** 63n));
  });

  it("views sharing one ArrayBuffer still share it, whichever is met first", () => {
    const buf = new ArrayBuffer(16);
    const a = new Uint8Array(buf, 0, 8);
    const b = new Float64Array(buf, 8, 1);
    const copy = roundTrip([a, b, buf] as const);
    expect(copy[0].buffer).toBe(copy[1].buffer);
    expect(copy[2]).toBe(copy[0].buffer);
    copy[0][0] = 42;
    expect(new Uint8Array(copy[2])[0]).toBe(42);
  });
});

describe("serializer: values from another realm", () => {
  it("plain objects, arrays, Maps, Sets, buffers and views from a vm context serialize like local ones", () => {
    const foreign = runInNewContext(
      "const b = new ArrayBuffer(8); ({ o: { a: [1, 2] }, m: new Map([[1, 'x']]), s: new Set([1]), b, v: new Int16Array(b, 2, 2), d: new DataView(b) })",
    ) as Record<string, unknown>;
    expect(Object.getPrototypeOf(foreign.o)).not.toBe(Object.prototype);
    const local = (() => {
      const b = new ArrayBuffer(8);
      return { o: { a: [1, 2] }, m: new Map([[1, "x"]]), s: new Set([1]), b, v: new Int16Array(b, 2, 2), d: new DataView(b) };
    })();
    const bytes = serialize(foreign, options);
    expect(toHex(bytes)).toBe(toHex(serialize(local, options)));
    const copy = deserialize(bytes, options) as typeof local;
    expect(Object.getPrototypeOf(copy.o)).toBe(Object.prototype);
    expect(copy.v.buffer).toBe(copy.b);
  });

  it("subclasses of built-ins are not mistaken for the built-ins", () => {
    class Stack extends Array<number> {}
    class Registry extends Map<string, number> {}
    expect(() => serialize({ s: Stack.from([1]) }, options)).toThrow(SerializationError);
    expect(() => serialize({ r: new Registry() }, options)).toThrow('unregistered class Registry at root.r');
  });
});

describe("serializer: sharing and cycles", () => {
  it("shared references stay shared", () => {
    const shared = { n: 1 };
    const copy = roundTrip({ a: shared, b: shared, list: [shared, shared] });
    expect(copy.a).toBe(copy.b);
    expect(copy.list[1]).toBe(copy.a);
  });

  it("an object containing itself", () => {
    const obj: Record<string, unknown> = {};
    obj.self = obj;
    const copy = roundTrip(obj);
    expect(copy.self).toBe(copy);
  });

  it("an array containing itself, a Map keyed by itself, a Set holding itself", () => {
    const arr: unknown[] = [];
    arr.push(arr);
    const map = new Map<unknown, unknown>();
    map.set(map, map);
    const set = new Set<unknown>();
    set.add(set);
    const copy = roundTrip({ arr, map, set });
    expect(copy.arr[0]).toBe(copy.arr);
    expect(copy.map.get(copy.map)).toBe(copy.map);
    expect(copy.set.has(copy.set)).toBe(true);
  });

  it("cycles through registered class instances", () => {
    const a = new Point(1, null);
    const b = new Point(2, a);
    a.y = b;
    const copy = roundTrip([a, b] as const);
    expect(copy[0]).toBeInstanceOf(Point);
    expect((copy[0].y as Point).y).toBe(copy[0]);
    expect(copy[1].norm1()).toBeNaN(); // a real Point: prototype methods work
  });

  it("custom types that share objects with the rest of the graph", () => {
    const shared = { n: 1 };
    const copy = roundTrip({ t: new Tagged("x", shared), s: shared, v: new Vec3(1, 2, 3) });
    expect(copy.t).toBeInstanceOf(Tagged);
    expect(copy.t.payload).toBe(copy.s);
    expect(copy.v).toEqual(new Vec3(1, 2, 3));
  });

  it("a custom type object referenced twice is read() once", () => {
    const v = new Vec3(1, 2, 3);
    const copy = roundTrip([v, v, { v }]);
    expect(copy[1]).toBe(copy[0]);
  });

  it("deep graphs (a 100,000-node linked list) round-trip without exhausting the stack", () => {
    type Node = { value: number; next: Node | null; head?: Node };
    let list: Node | null = null;
    for (let i = 0; i < 100_000; i++) list = { value: i, next: list };
    list!.head = list!; // and a cycle back from the front
    const copy = roundTrip(list!);
    let n = 0;
    for (let p: Node | null = copy; p !== null; p = p.next) n++;
    expect(n).toBe(100_000);
  });

  it("deeply nested arrays, Maps and class instances with cross links", () => {
    let value: unknown = "leaf";
    const all: unknown[] = [];
    for (let i = 0; i < 3_000; i++) {
      const kind = i % 4;
      value = kind === 0 ? [value] : kind === 1 ? new Map([[i, value]]) : kind === 2 ? new Point(value, all[i >> 1]) : new Set([value]);
      all.push(value);
    }
    roundTrip({ value, all });
  });
});

describe("serializer: registered classes and custom types", () => {
  it("restores instances with Object.create(prototype), without running the constructor", () => {
    const seen: unknown[] = [];
    class Counted {
      count = 1;
      constructor() {
        seen.push(this);
      }
    }
    const opts = registry([{ id: "Counted", prototype: Counted.prototype }]);
    const original = new Counted();
    const copy = deserialize(serialize(original, opts), opts) as Counted;
    expect(copy).toBeInstanceOf(Counted);
    expect(copy.count).toBe(1);
    expect(seen).toEqual([original]);
  });

  it("custom type data can be any supported value", () => {
    const copy = roundTrip(new Tagged("deep", { list: [1n, new Map([["a", new Set([-0])]])], buf: new Uint8Array([1, 2]) }));
    expect(copy).toBeInstanceOf(Tagged);
  });

  it("nested custom types", () => {
    const copy = roundTrip(new Tagged("outer", new Tagged("inner", new Vec3(0, -0, NaN))));
    expect((copy.payload as Tagged).payload).toBeInstanceOf(Vec3);
  });
});

describe("serializer: message mode", () => {
  class Model {
    constructor(readonly id: string) {}
  }
  const models = new Map([
    ["m1", new Model("m1")],
    ["m2", new Model("m2")],
  ]);
  const messageOptions = {
    ...registry(),
    refOf: (obj: object) => (obj instanceof Model ? obj.id : undefined),
    resolveRef: (id: string) => models.get(id)!,
  };

  it("writes objects with an id as references and resolves them back to the same objects", () => {
    const m1 = models.get("m1")!;
    const data = { who: m1, again: m1, list: [models.get("m2"), { x: 1 }] };
    const bytes = serialize(data, messageOptions);
    const copy = deserialize(bytes, messageOptions) as typeof data;
    expect(copy.who).toBe(m1);
    expect(copy.again).toBe(m1);
    expect(copy.list[0]).toBe(models.get("m2"));
    expect(copy.list[1]).toEqual({ x: 1 });
    expect(graphDifference(data, copy)).toBeUndefined();
  });

  it("a reference is smaller than the object's content and the root itself can be one", () => {
    const m1 = models.get("m1")!;
    expect(deserialize(serialize(m1, messageOptions), messageOptions)).toBe(m1);
    expect(toHex(serialize(m1, messageOptions))).toBe("01 11 00 02 6d 31");
  });
});

describe("serializer: determinism and format", () => {
  it("starts with the format version", () => {
    expect(FORMAT_VERSION).toBe(1);
    expect(serialize(null, options)[0]).toBe(1);
  });

  it("the same graph built the same way gives identical bytes; different order, different bytes", () => {
    const build = (order: string[]) => {
      const obj: Record<string, unknown> = {};
      const map = new Map<string, number>();
      for (const k of order) {
        obj[k] = k.length;
        map.set(k, k.length);
      }
      return { obj, map, set: new Set(order) };
    };
    expect(toHex(serialize(build(["a", "bb", "ccc"]), options))).toBe(toHex(serialize(build(["a", "bb", "ccc"]), options)));
    expect(toHex(serialize(build(["a", "bb", "ccc"]), options))).not.toBe(toHex(serialize(build(["bb", "a", "ccc"]), options)));
  });

  it("golden bytes: property names and repeated strings are written once", () => {
    const bytes = serialize([{ a: 1, b: "x" }, { a: 2, b: "x" }, "a"], options);
    // ARRAY of 3: OBJECT {"a" (new name #0) → INT 1, "b" (#1) → STRING "x" (new #2)},
    //             OBJECT {#0 → INT 2, #1 → STRING #2}, STRING "a" (values and names are cached
    //             separately, so this is new #3)
    expect(toHex(bytes)).toBe(
      toHex(hex("01 20 03  21 02 00 01 61 04 02 00 01 62 06 00 01 78  21 02 03 04 04 04 06 05  06 00 01 61")),
    );
  });

  it("many distinct and repeated string values round-trip (string cache growth)", () => {
    const values = Array.from({ length: 30_000 }, (_, i) => (i % 3 === 0 ? `id-${i}` : `name-${i % 97}`));
    const copy = roundTrip(values);
    expect(copy[29_999]).toBe(values[29_999]);
    const unique = serialize(Array.from({ length: 30_000 }, (_, i) => `id-${i}`), options).length;
    const repeated = serialize(Array.from({ length: 30_000 }, (_, i) => `id-${i % 50}`), options).length;
    expect(repeated).toBeLessThan(unique / 2);
  });

  it("golden bytes: numbers", () => {
    expect(toHex(serialize(-1, options))).toBe("01 04 01");
    expect(toHex(serialize(300, options))).toBe("01 04 d8 04");
    expect(toHex(serialize(-0, options))).toBe("01 05 00 00 00 00 00 00 00 80");
    expect(toHex(serialize(NaN, options))).toBe("01 05 00 00 00 00 00 00 f8 7f");
    expect(toHex(serialize(2 ** 52, options))).toBe("01 05 00 00 00 00 00 00 30 43");
    expect(toHex(serialize(-256n, options))).toBe("01 08 02 00 01");
  });

  it("golden bytes: sharing, holes, typed arrays and registered classes", () => {
    const shared = {};
    // eslint-disable-next-line no-sparse-arrays
    expect(toHex(serialize([shared, shared, , ,], options))).toBe("01 20 04 21 00 10 01 41 02");
    expect(toHex(serialize(new Uint8Array([7, 8]), options))).toBe("01 31 01 30 02 07 08 00 02");
    expect(toHex(serialize(new Point(1, 2), options))).toBe(
      "01 25 00 05 50 6f 69 6e 74 02 00 01 78 04 02 00 01 79 04 04",
    );
    expect(toHex(serialize(new Vec3(1, 2, 3), options))).toBe("01 26 00 04 56 65 63 33 20 03 04 02 04 04 04 06");
  });

  it("deserializes from a subarray of a larger buffer", () => {
    const bytes = serialize({ x: [1.5, "y"] }, options);
    const framed = new Uint8Array(bytes.length + 7);
    framed.set(bytes, 3);
    expect(deserialize(framed.subarray(3, 3 + bytes.length), options)).toEqual({ x: [1.5, "y"] });
  });
});
