import stableStringify from "fast-json-stable-stringify";
import { hash, normalizeSource } from "./identity";

/**
 * App-wide constants shared by model code. Assign them before the first join; they are then
 * deep-frozen and hashed into the versionId, so clients with different constants never share a
 * session. Functions and classes may be put here too (helper code models call that is not a
 * registered Model): their source text is hashed, as Croquet does, so two clients whose helper
 * code differs get different sessions instead of diverging in one.
 *
 * @example
 * ```ts
 * Constants.MAX_PLAYERS = 8;
 * Constants.clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
 * ```
 */
export const Constants: Record<string, any> = {};

let frozenHash: Promise<string> | undefined;

function deepFreeze(value: unknown): void {
  if (typeof value === "function") {
    // A function's own static values are frozen as in Croquet; its prototype is left alone, so
    // a helper class still works as a class.
    if (Object.isFrozen(value)) return;
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
    return;
  }
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key]);
}

/**
 * The text a function or class in Constants is hashed by: its normalized source, plus, when that
 * is not a `class` (a minifier may turn classes into functions), the source of its prototype's
 * methods, which then live outside the function's own text.
 */
export function functionSource(fn: (...args: never[]) => unknown): string {
  let source = normalizeSource(Function.prototype.toString.call(fn));
  const proto = (fn as { prototype?: object }).prototype;
  if (!source.startsWith("class") && proto) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      const member = Object.getOwnPropertyDescriptor(proto, key)?.value as unknown;
      if (key !== "constructor" && typeof member === "function") source += ` ${key}:${normalizeSource(Function.prototype.toString.call(member))}`;
    }
  }
  return source;
}

/** Constants as stable JSON, with every function or class replaced by its source text. */
export function constantsText(constants: Record<string, unknown>): string {
  const json = JSON.stringify(constants, (_key, value: unknown) => (typeof value === "function" ? `function:${functionSource(value as () => unknown)}` : value));
  return stableStringify(JSON.parse(json) as unknown);
}

/** Freezes `Constants` (once) and returns its hash. */
export function freezeConstants(): Promise<string> {
  if (!frozenHash) {
    deepFreeze(Constants);
    frozenHash = hash(constantsText(Constants));
  }
  return frozenHash;
}
