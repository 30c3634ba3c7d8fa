/**
 * Shared support for the serializer tests (the seeded PRNG and hex helpers are
 * `@lockstep/test-support`'s): small registered classes and custom types, and a structural graph comparison that understands −0, NaN, holes, prototypes,
 * sharing and cycles (jest's toEqual does not).
 */
import { sameBytes } from "@lockstep/test-support";
import type { ClassCodec, DeserializeOptions, SerializeOptions } from "../src/serializer/index";

/** A registered class: restored by prototype + own properties. */
export class Point {
  constructor(
    public x: unknown,
    public y: unknown,
  ) {}
  /** A prototype method, to check restored instances are real Points. */
  norm1(): number {
    return Math.abs(Number(this.x)) + Math.abs(Number(this.y));
  }
}

/** A subclass of Point that is deliberately not registered. */
export class Point3 extends Point {
  z = 0;
}

/** A custom type with primitive data. */
export class Vec3 {
  constructor(
    readonly x: number,
    readonly y: number,
    readonly z: number,
  ) {}
}

/** A custom type whose data holds arbitrary values (which may be shared with the graph). */
export class Tagged {
  constructor(
    readonly label: string,
    readonly payload: unknown,
  ) {}
}

export const POINT: ClassCodec = { id: "Point", prototype: Point.prototype };
export const VEC3: ClassCodec = {
  id: "Vec3",
  prototype: Vec3.prototype,
  write: (v: Vec3) => [v.x, v.y, v.z],
  read: (data: [number, number, number]) => new Vec3(data[0], data[1], data[2]),
};
export const TAGGED: ClassCodec = {
  id: "Tagged",
  prototype: Tagged.prototype,
  write: (t: Tagged) => ({ label: t.label, payload: t.payload }),
  read: (data: { label: string; payload: unknown }) => new Tagged(data.label, data.payload),
};

/** Serialize/deserialize options knowing `codecs` (by prototype and by id). */
export function registry(codecs: readonly ClassCodec[] = [POINT, VEC3, TAGGED]): SerializeOptions & DeserializeOptions {
  const byProto = new Map<object, ClassCodec>();
  const byId = new Map<string, ClassCodec>();
  for (const codec of codecs) {
    byId.set(codec.id, codec);
    byProto.set(codec.prototype, codec);
  }
  return {
    // Like the real registry, walk up the chain so unregistered subclasses reach the serializer.
    classOf(obj: object) {
      for (let p: unknown = Object.getPrototypeOf(obj); p !== null; p = Object.getPrototypeOf(p)) {
        const codec = byProto.get(p as object);
        if (codec !== undefined) return codec;
      }
      return undefined;
    },
    classById: (id: string) => byId.get(id),
  };
}

/**
 * Compares two graphs: same primitives (Object.is), same prototypes, same keys in the same order,
 * same holes, same Map/Set entry orders, same bytes in buffers, and the same sharing — a one-to-one
 * correspondence between the objects of both graphs. Returns undefined when they match, else a
 * description of the first difference with its path. Iterative, so deep graphs are fine.
 */
export function graphDifference(a: unknown, b: unknown): string | undefined {
  const aToB = new Map<object, object>();
  const bToA = new Map<object, object>();
  const work: Array<[unknown, unknown, string]> = [[a, b, "root"]];
  for (let item = work.pop(); item !== undefined; item = work.pop()) {
    const [x, y, path] = item;
    const xIsObject = (typeof x === "object" && x !== null) || typeof x === "function";
    const yIsObject = (typeof y === "object" && y !== null) || typeof y === "function";
    if (!xIsObject || !yIsObject) {
      if (xIsObject !== yIsObject || !Object.is(x, y)) return `${path}: ${describe(x)} vs ${describe(y)}`;
      continue;
    }
    const known = aToB.get(x);
    if (known !== undefined || bToA.has(y)) {
      if (known !== y || bToA.get(y) !== x) return `${path}: sharing differs`;
      continue;
    }
    aToB.set(x, y);
    bToA.set(y, x);
    if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y) && !(isArrayBuffer(x) && isArrayBuffer(y))) {
      return `${path}: prototypes differ`;
    }
    const pending: Array<[unknown, unknown, string]> = [];
    const problem = compareContents(x, y, path, pending);
    if (problem !== undefined) return problem;
    for (let i = pending.length - 1; i >= 0; i--) work.push(pending[i]!);
  }
  return undefined;
}

/**
 * ArrayBuffers of any realm: under jest, `new Int8Array(n).buffer` comes from the sandbox realm
 * while the global ArrayBuffer is Node's, and the serializer restores both kinds as the latter.
 */
function isArrayBuffer(v: object): boolean {
  return Object.prototype.toString.call(v) === "[object ArrayBuffer]";
}

function compareContents(x: object, y: object, path: string, out: Array<[unknown, unknown, string]>): string | undefined {
  if (isArrayBuffer(x)) {
    const bx = new Uint8Array(x as ArrayBuffer);
    const by = new Uint8Array(y as ArrayBuffer);
    return sameBytes(bx, by) ? undefined : `${path}: buffer bytes differ`;
  }
  if (ArrayBuffer.isView(x)) {
    const vy = y as ArrayBufferView;
    if (x.byteOffset !== vy.byteOffset || x.byteLength !== vy.byteLength) return `${path}: view window differs`;
    out.push([x.buffer, vy.buffer, `${path}.buffer`]);
    return undefined;
  }
  if (x instanceof Map) {
    const my = y as Map<unknown, unknown>;
    if (x.size !== my.size) return `${path}: Map sizes ${x.size} vs ${my.size}`;
    const ex = [...x];
    const ey = [...my];
    ex.forEach(([k, v], i) => {
      out.push([k, ey[i]![0], `${path}<key>[${i}]`], [v, ey[i]![1], `${path}<value>[${i}]`]);
    });
    return undefined;
  }
  if (x instanceof Set) {
    const sy = y as Set<unknown>;
    if (x.size !== sy.size) return `${path}: Set sizes ${x.size} vs ${sy.size}`;
    const ey = [...sy];
    [...x].forEach((v, i) => out.push([v, ey[i], `${path}<set>[${i}]`]));
    return undefined;
  }
  if (Array.isArray(x)) {
    const ay = y as unknown[];
    if (x.length !== ay.length) return `${path}: lengths ${x.length} vs ${ay.length}`;
    for (let i = 0; i < x.length; i++) {
      if (i in x !== i in ay) return `${path}[${i}]: hole vs element`;
      out.push([x[i], ay[i], `${path}[${i}]`]);
    }
    return undefined;
  }
  const kx = Object.keys(x);
  const ky = Object.keys(y);
  if (kx.join("\u0000") !== ky.join("\u0000")) return `${path}: keys [${kx.join(", ")}] vs [${ky.join(", ")}]`;
  for (const k of kx) out.push([(x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], `${path}.${k}`]);
  return undefined;
}

function describe(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "string") return JSON.stringify(v);
  if (Object.is(v, -0)) return "-0";
  return typeof v === "object" && v !== null ? "an object" : String(v);
}
