/**
 * Recognises built-ins from another realm (an iframe, a Node `vm` context, jest's sandbox, where
 * `new Int8Array(n).buffer` is not an instance of the global `ArrayBuffer`). Their prototypes are
 * not the ones the writer looks up, so they reach this slower path, which uses brand checks (they
 * work across realms) and accepts only objects whose prototype is the built-in's own prototype of
 * that realm, never a subclass. Only consulted after `classOf` declined the object.
 */
import { className } from "./describe";
import { Builtin, VIEW_KINDS } from "./format";

/** %TypedArray%.prototype[Symbol.toStringTag]: the kind name of any realm's typed array, else undefined. */
const typedArrayName = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Int8Array.prototype) as object, Symbol.toStringTag)!
  .get as (this: unknown) => string | undefined;
const arrayBufferByteLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength")!.get as (this: unknown) => number;
const mapSize = Object.getOwnPropertyDescriptor(Map.prototype, "size")!.get as (this: unknown) => number;
const setSize = Object.getOwnPropertyDescriptor(Set.prototype, "size")!.get as (this: unknown) => number;

const VIEW_KIND_BY_NAME = new Map<string, number>(VIEW_KINDS.map((ctor, kind) => [ctor.name, kind]));

/** Passes a brand check: `getter` accepts `obj` as its receiver. */
function branded(getter: (this: unknown) => unknown, obj: object): boolean {
  try {
    getter.call(obj);
    return true;
  } catch {
    return false;
  }
}

/**
 * The writer's kind for a foreign-realm built-in (a VIEW kind, {@link Builtin} code), or undefined
 * if `obj` is not one.
 */
export function foreignBuiltin(obj: object, proto: object): number | undefined {
  const name = className(proto);
  if (name === undefined) return undefined;
  if (name === "Object") return Object.getPrototypeOf(proto) === null ? Builtin.OBJECT : undefined;
  if (name === "Array") return Array.isArray(obj) ? Builtin.ARRAY : undefined;
  if (ArrayBuffer.isView(obj)) {
    const viewName = typedArrayName.call(obj) ?? "DataView";
    return viewName === name ? VIEW_KIND_BY_NAME.get(name) : undefined;
  }
  if (name === "ArrayBuffer") return branded(arrayBufferByteLength, obj) ? Builtin.ARRAY_BUFFER : undefined;
  if (name === "Map") return branded(mapSize, obj) ? Builtin.MAP : undefined;
  if (name === "Set") return branded(setSize, obj) ? Builtin.SET : undefined;
  return undefined;
}

