/** What cannot be serialized fails with a SerializationError that names it and its exact path. */
import { SerializationError, serialize } from "../src/serializer/index";
import { Point, Point3, registry, Tagged, Vec3 } from "./serializer.helpers";

const options = registry();

/** The SerializationError `value` causes (fails the test if there is none). */
function failure(value: unknown, opts = options): SerializationError {
  try {
    serialize(value, opts);
  } catch (error) {
    expect(error).toBeInstanceOf(SerializationError);
    return error as SerializationError;
  }
  throw new Error("expected a SerializationError");
}

describe("serializer errors: messages and paths", () => {
  it("a function inside a Map value", () => {
    const e = failure({ players: new Map([["ann", { name: "Ann", onClick() {} }]]) });
    expect(e.message).toBe('cannot serialize a function at root.players.get("ann").onClick');
    expect(e.path).toBe('root.players.get("ann").onClick');
  });

  it("a Date", () => {
    const e = failure({ when: new Date(0) });
    expect(e.message).toBe("cannot serialize a Date at root.when (Date is not serializable: store a number)");
    expect(e.path).toBe("root.when");
  });

  it("an instance of an unregistered class", () => {
    class Foo {}
    const e = failure({ x: new Foo() });
    expect(e.message).toBe('cannot serialize an instance of unregistered class Foo at root.x: call Foo.register("Foo")');
    expect(e.path).toBe("root.x");
  });

  it("an unregistered subclass of a registered class", () => {
    const e = failure([new Point(1, 2), new Point3(1, 2)]);
    expect(e.path).toBe("root[1]");
    expect(e.message).toContain("unregistered class Point3");
    expect(e.message).toContain('call Point3.register("Point3")');
  });

  it("a symbol-keyed property", () => {
    const e = failure({ a: { ok: 1, [Symbol("secret")]: 2 } });
    expect(e.path).toBe("root.a");
    expect(e.message).toBe(
      "cannot serialize a property keyed by Symbol(secret) at root.a (symbols are unique to each client: use a string key)",
    );
  });

  it("a symbol value", () => {
    const e = failure({ list: [1, 2, Symbol("s")] });
    expect(e.path).toBe("root.list[2]");
    expect(e.message).toBe("cannot serialize Symbol(s) at root.list[2] (symbols are unique to each client: use a string)");
  });

  it("a WeakMap, WeakSet, Promise, RegExp, Error and SharedArrayBuffer", () => {
    expect(failure({ cache: new WeakMap() }).message).toMatch(/^cannot serialize a WeakMap at root\.cache \(weak references/);
    expect(failure({ s: new WeakSet() }).path).toBe("root.s");
    const promise = failure({ p: Promise.resolve(1) });
    expect(promise.message).toMatch(/^cannot serialize a Promise at root\.p \(model code is synchronous/);
    expect(failure({ r: /x/g }).message).toMatch(/^cannot serialize a RegExp at root\.r/);
    expect(failure({ e: new TypeError("boom") }).message).toMatch(/^cannot serialize a TypeError at root\.e/);
    expect(failure({ sab: new SharedArrayBuffer(8) }).message).toMatch(/^cannot serialize a SharedArrayBuffer at root\.sab/);
    expect(failure(new Uint8Array(new SharedArrayBuffer(8))).path).toBe("root.buffer");
  });

  it("a DOM node", () => {
    class HTMLDivElement {
      nodeType = 1;
      nodeName = "DIV";
    }
    const e = failure({ el: new HTMLDivElement() });
    expect(e.message).toBe(
      "cannot serialize a DOM node (HTMLDivElement) at root.el (DOM belongs to views: keep it out of models)",
    );
  });

  it("an object with a prototype that belongs to no class", () => {
    const e = failure({ o: Object.create({ inherited: 1 }) as object });
    expect(e.path).toBe("root.o");
    expect(e.message).toMatch(/prototype is not a registered class/);
  });

  it("paths through Set entries, Map keys, odd keys, class instances and custom-type data", () => {
    expect(failure({ tags: new Set(["a", () => 0]) }).path).toBe("root.tags<set>[1]");
    expect(failure({ m: new Map([[() => 0, 1]]) }).path).toBe("root.m<key>[0]");
    expect(failure({ m: new Map<unknown, unknown>([[{}, { f: () => 0 }]]) }).path).toBe("root.m.get(<key>[0]).f");
    expect(failure({ m: new Map([[-0, { f: () => 0 }]]) }).path).toBe("root.m.get(0).f"); // Maps store -0 as 0
    expect(failure({ m: new Map([[3n, () => 0]]) }).path).toBe("root.m.get(3n)");
    expect(failure({ "odd key": { "2": [() => 0] } }).path).toBe('root["odd key"]["2"][0]');
    expect(failure({ p: new Point(1, { deep: [0, () => 0] }) }).path).toBe("root.p.y.deep[1]");
    expect(failure({ t: new Tagged("x", { cb: () => 0 }) }).path).toBe("root.t<data>.payload.cb");
    expect(failure(() => 0).path).toBe("root");
  });

  it("paths into containers deeper than the deferral depth", () => {
    let deep: Record<string, unknown> = { bad: new Date(0) };
    for (let i = 0; i < 450; i++) deep = i === 300 ? { list: [deep] } : { n: deep };
    const e = failure(deep);
    const expected = `root${".n".repeat(149)}.list[0]${".n".repeat(300)}.bad`;
    expect(e.path).toBe(expected);
  });

  it("a cycle through a custom type is rejected with a clear message", () => {
    const t = new Tagged("loop", null);
    (t as { payload: unknown }).payload = { back: t };
    const e = failure({ t });
    expect(e.path).toBe("root.t<data>.payload.back");
    expect(e.message).toContain('a reference to custom type "Tagged" value from inside its own data');
    expect(e.message).toContain("break the cycle");
  });

  it("a custom type's failing write() is reported with the cause", () => {
    const boom = new Error("no write today");
    const opts = registry([{ id: "Vec3", prototype: Vec3.prototype, write: () => { throw boom; }, read: () => ({}) }]);
    const e = failure({ v: new Vec3(0, 0, 0) }, opts);
    expect(e.path).toBe("root.v");
    expect(e.message).toContain("no write today");
    expect(e.cause).toBe(boom);
  });

  it("custom-type data nested beyond the hard limit fails cleanly", () => {
    let data: unknown = 0;
    for (let i = 0; i < 1500; i++) data = [data];
    const e = failure(new Tagged("deep", data));
    expect(e.message).toMatch(/nested more than 1000 levels deep/);
    expect(e.path.startsWith("root<data>.payload[0][0]")).toBe(true);
  });

  it("errors thrown by classOf reach the caller unchanged", () => {
    const oops = new Error("registry broken");
    expect(() =>
      serialize(new Point(1, 2), {
        classOf: () => {
          throw oops;
        },
      }),
    ).toThrow(oops);
  });
});
