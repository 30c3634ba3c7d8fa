/** Actionable explanations of why an object cannot be serialized (error path only). */
import { Unserializable } from "./errors";

type Explanation = readonly [what: string, tail: string];

const WEAK = " (weak references behave differently on every client: use a Map, Set or plain reference)";

/** Built-ins that are deliberately unsupported, by constructor name. */
const BUILTIN_EXPLANATIONS: Readonly<Record<string, Explanation>> = {
  Date: ["a Date", " (Date is not serializable: store a number)"],
  RegExp: ["a RegExp", " (store its source and flags as strings)"],
  WeakMap: ["a WeakMap", WEAK],
  WeakSet: ["a WeakSet", WEAK],
  WeakRef: ["a WeakRef", WEAK],
  FinalizationRegistry: ["a FinalizationRegistry", WEAK],
  Promise: ["a Promise", " (model code is synchronous: schedule work with future() instead)"],
  SharedArrayBuffer: ["a SharedArrayBuffer", " (use an ArrayBuffer)"],
  Number: ["a boxed Number", " (store the primitive value)"],
  String: ["a boxed String", " (store the primitive value)"],
  Boolean: ["a boxed Boolean", " (store the primitive value)"],
  BigInt: ["a boxed BigInt", " (store the primitive value)"],
  Symbol: ["a boxed Symbol", " (symbols are unique to each client: use a string)"],
  Error: ["an Error", " (store its message as a string)"],
  TypeError: ["a TypeError", " (store its message as a string)"],
  RangeError: ["a RangeError", " (store its message as a string)"],
  SyntaxError: ["a SyntaxError", " (store its message as a string)"],
  ReferenceError: ["a ReferenceError", " (store its message as a string)"],
};

/** Prototype → explanation, for the built-ins of this realm that exist. */
let byPrototype: Map<object, Explanation> | undefined;

function builtinExplanation(proto: object): Explanation | undefined {
  if (byPrototype === undefined) {
    byPrototype = new Map();
    const global = globalThis as unknown as Record<string, { prototype?: unknown } | undefined>;
    for (const [name, explanation] of Object.entries(BUILTIN_EXPLANATIONS)) {
      const p = global[name]?.prototype;
      if (typeof p === "object" && p !== null) byPrototype.set(p, explanation);
    }
  }
  return byPrototype.get(proto);
}

/** The name of the class whose prototype is `proto`, if `proto` belongs to a named class. */
export function className(proto: object | null): string | undefined {
  if (proto === null || !Object.prototype.hasOwnProperty.call(proto, "constructor")) return undefined;
  const ctor = (proto as { constructor?: unknown }).constructor;
  if (typeof ctor !== "function" || ctor.prototype !== proto) return undefined;
  return ctor.name || undefined;
}

/** The error for `obj` (prototype `proto`) that no codec claims. */
export function unregistered(obj: object, proto: object | null): Unserializable {
  const builtin = proto === null ? undefined : builtinExplanation(proto);
  const name = className(proto);
  const node = obj as { nodeType?: unknown; nodeName?: unknown };
  if (typeof node.nodeType === "number" && typeof node.nodeName === "string") {
    return new Unserializable(`a DOM node (${name ?? node.nodeName})`, " (DOM belongs to views: keep it out of models)");
  }
  if (builtin !== undefined) return new Unserializable(builtin[0], builtin[1]);
  if (name === undefined) {
    return new Unserializable(
      "an object whose prototype is not a registered class",
      " (create it from a registered class, or use a plain object)",
    );
  }
  return new Unserializable(`an instance of unregistered class ${name}`, `: call ${name}.register("${name}")`);
}

/** The error for an instance of a subclass of a registered class that is not registered itself. */
export function unregisteredSubclass(proto: object | null, registeredId: string): Unserializable {
  const name = className(proto) ?? "(anonymous class)";
  return new Unserializable(
    `an instance of unregistered class ${name} (a subclass of registered "${registeredId}")`,
    `: call ${name}.register("${name}")`,
  );
}

/** Short text of an unknown thrown value, for messages that wrap it. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
