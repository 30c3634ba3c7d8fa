/**
 * Proxies that stand for another object when serialized. `debug=write` (view/write-guard.ts) hands
 * out guarding proxies of models and of model state; a snapshot must still hold exactly the bytes
 * it would hold without them (the same objects, shared the same way), so the writer serializes the
 * original of each proxy. Nothing is registered, and nothing is looked up, unless a guard runs.
 */
const originals = new WeakMap<object, object>();
let registered = false;

/** From now on the writer serializes `original` wherever it meets `proxy`. */
export function registerStandIn(proxy: object, original: object): void {
  originals.set(proxy, original);
  registered = true;
}

/** The object `obj` stands for, or `obj` itself. */
export function originalOf(obj: object): object {
  return registered ? (originals.get(obj) ?? obj) : obj;
}
