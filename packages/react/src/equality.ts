/**
 * Equality one level deep, for selectors that build a fresh array or object each time: arrays
 * with the same items (`Object.is`), plain objects with the same keys and values, Maps and Sets
 * with the same entries. Anything else is compared with `Object.is`.
 *
 * @example
 * ```ts
 * const titles = useModelSelector((m: TodoList) => m.items.map((t) => t.title), shallowEqual);
 * ```
 */
export function shallowEqual<T>(a: T, b: T): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => Object.is(item, b[i]));
  if (a instanceof Map) return b instanceof Map && a.size === b.size && [...a].every(([k, v]) => b.has(k) && Object.is(v, b.get(k)));
  if (a instanceof Set) return b instanceof Set && a.size === b.size && [...a].every((v) => b.has(v));
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  const objB = b as Record<string, unknown>;
  return keysA.length === keysB.length && keysA.every((k) => Object.prototype.hasOwnProperty.call(b, k) && Object.is((a as Record<string, unknown>)[k], objB[k]));
}
