/**
 * `debug=write`: a write to model state from view code throws at the write, naming what was
 * written (`debug=write: view code wrote Counter.count (…)`), the way Multisynq's flag does.
 *
 * How: with the guard in a VM's host, every model is a Proxy from the moment it is allocated
 * (`Model.create`, the root model, and every model of a restored snapshot), so the proxy is the
 * only object the session, the models and the views ever know the model by: model properties,
 * `getModel`, `wellKnownModel`, subscriptions, futures and the root view's constructor argument all
 * hold the same object, and `instanceof` sees the class's prototype. Its traps let model code of
 * its own session write (set, define, delete) and refuse everyone else. Reads from outside model
 * code return read-only proxies of the plain objects, arrays, Maps, Sets and registered non-model
 * class instances they reach, one proxy per object (so identity holds in view code too), and
 * events that models publish reach views as the same read-only proxies. Model code always sees the
 * real objects.
 *
 * The state is not changed: the serializer writes each proxy's original (`registerStandIn`), so a
 * guarded replica's snapshots are byte-identical to an unguarded one's, and replicas with and
 * without the flag vote the same hashes.
 *
 * Not caught: writes to typed arrays, ArrayBuffers and DataViews, and to custom-type values (from
 * `static types()` with write/read), which view code gets as they are; writes through a closure
 * that captured a model's `this` inside its constructor; writes to frozen objects' children.
 * Costs and differences while the flag is on: every model property access runs a trap; booting
 * from a snapshot serializes and reads the state once more (so that no reference to an original
 * model is left); event data that models publish is read-only for views too; a Map or
 * Set from model state passed by view code to `Map.prototype.get.call` or `structuredClone` fails
 * (their slots are the original's); model classes that use `#private` fields fail (their methods
 * run with the proxy as `this`, and snapshots could not hold such fields anyway).
 */
import { currentVM } from "../kernel/execution";
import { Model } from "../kernel/model";
import type { ModelGuard, SavedState, VirtualMachine } from "../kernel/vm";
import { deserialize, registerStandIn, serialize } from "../serializer/index";

const ADVICE = "model state may only change in model code: publish an event instead";

/**
 * The guard a session's VMs get in their host for these debug flags: one for `"write"`, else none
 * (then nothing is wrapped and nothing costs anything).
 *
 * @example
 * ```ts
 * const host: VMHost = { ...rest, modelGuard: writeGuardFor(params.debug) };
 * const vm = new VirtualMachine(host, restoredState); // or a fresh VM and vm.createRoot(…)
 * vm.wellKnownModel("modelRoot")!.count = 1; // TypeError: debug=write: view code wrote Counter.count (…)
 * ```
 */
export function writeGuardFor(debug: ReadonlySet<string>): ModelGuard | undefined {
  return debug.has("write") ? createWriteGuard() : undefined;
}

/** A new `debug=write` guard, to be passed as `VMHost.modelGuard` before the VM is built. */
export function createWriteGuard(): ModelGuard {
  return new WriteGuard();
}

type Kind = "object" | "map" | "set";

class WriteGuard implements ModelGuard {
  /** Original model → its proxy. */
  readonly #models = new WeakMap<object, object>();
  /** Original object of model state → the read-only proxy view code gets for it, and that proxy's traps. */
  readonly #views = new WeakMap<object, { readonly proxy: object; readonly traps: Traps }>();
  /** Read-only proxy → its original (keys and arguments view code passes back to a Map or Set). */
  readonly #viewOriginals = new WeakMap<object, object>();
  /** Every proxy this guard made. */
  readonly #proxies = new WeakSet<object>();

  adopt(model: Model, vm: VirtualMachine): Model {
    const proxy = this.#proxy(model, new Traps(this, vm, model.constructor.name, false));
    this.#models.set(model, proxy);
    return proxy as Model;
  }

  /** Rebuilds the restored graph with every model adopted as it is allocated, so no reference to an original remains. */
  restore(state: SavedState, vm: VirtualMachine): SavedState {
    const registry = vm.registry;
    const bytes = serialize(state, { classOf: (obj) => registry.codecOf(obj) });
    return deserialize(bytes, {
      classById: (id) => registry.codecById(id),
      adopt: (obj) => (obj instanceof Model ? this.adopt(obj, vm) : obj),
    }) as SavedState;
  }

  forView(data: unknown, vm: VirtualMachine, topic: string): unknown {
    return typeof data === "object" && data !== null ? this.viewOf(data, vm, () => `the data of "${topic}"`, true) : data;
  }

  /**
   * What view code gets for `value`: a model's proxy, a read-only proxy, or `value` itself if there
   * is nothing to guard. `where` names it in messages; a name from event data is `provisional`, and
   * gives way to the model property path the object is reached by later.
   */
  viewOf(value: object, vm: VirtualMachine, where: () => string, provisional: boolean): object {
    if (this.#proxies.has(value)) return value;
    const model = this.#models.get(value);
    if (model !== undefined) return model;
    const known = this.#views.get(value);
    if (known !== undefined) {
      if (known.traps.provisional && !provisional) known.traps.rename(where());
      return known.proxy;
    }
    const kind = kindOf(value, vm);
    if (kind === undefined) return value;
    const traps = kind === "object" ? new Traps(this, vm, where(), provisional) : new CollectionTraps(this, vm, where(), provisional, kind);
    const proxy = this.#proxy(value, traps);
    this.#views.set(value, { proxy, traps });
    this.#viewOriginals.set(proxy, value);
    return proxy;
  }

  /** The original behind a read-only proxy, else `value` (models stay proxies: model state holds those). */
  original(value: unknown): unknown {
    return typeof value === "object" && value !== null ? (this.#viewOriginals.get(value) ?? value) : value;
  }

  #proxy(target: object, traps: Traps): object {
    const proxy = new Proxy(target, traps);
    traps.proxy = proxy;
    this.#proxies.add(proxy);
    registerStandIn(proxy, target);
    return proxy;
  }
}

/** What kind of read-only proxy view code gets for a value of model state, if any. */
function kindOf(value: object, vm: VirtualMachine): Kind | undefined {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Map.prototype) return "map";
  if (proto === Set.prototype) return "set";
  // Nothing to write; and a proxy would have to report a frozen object's properties unwrapped.
  if (Object.isFrozen(value)) return undefined;
  if (proto === Object.prototype || proto === null || Array.isArray(value)) return "object";
  if (value instanceof Model) return undefined; // a model of an unguarded session
  const codec = vm.registry.codecOf(value);
  return codec !== undefined && codec.write === undefined ? "object" : undefined;
}

/** Traps of a guarded model or object: reads pass, writes need model code of the session. */
class Traps implements ProxyHandler<object> {
  proxy: object | undefined;

  constructor(
    protected readonly guard: WriteGuard,
    protected readonly vm: VirtualMachine,
    /** How messages name this object: `Counter`, `Counter.items`, `Counter.scores.get("ann")`. */
    protected where: string,
    /** Named after event data, not yet after a model property. */
    public provisional: boolean,
  ) {}

  rename(where: string): void {
    this.where = where;
    this.provisional = false;
  }

  /** Throws unless model code of this object's session is running. */
  protected check(action: string, what: string): void {
    const running = currentVM();
    if (running === this.vm) return;
    const who = running === undefined ? "view code" : "model code of another session";
    throw new TypeError(`debug=write: ${who} ${action} ${what} (${ADVICE})`);
  }

  /** `value`, as the code now running may see it: itself in model code, else guarded. */
  protected shielded(value: unknown, where: () => string): unknown {
    if (typeof value !== "object" || value === null || currentVM() !== undefined) return value;
    return this.guard.viewOf(value, this.vm, where, this.provisional);
  }

  #property(target: object, key: string | symbol, value: unknown): unknown {
    const shown = this.shielded(value, () => pathOf(this.where, key));
    if (shown === value) return value;
    // A proxy must report a non-writable, non-configurable data property exactly as it is.
    const own = Reflect.getOwnPropertyDescriptor(target, key);
    return own !== undefined && "value" in own && !own.configurable && !own.writable ? value : shown;
  }

  get(target: object, key: string | symbol, receiver: unknown): unknown {
    return this.#property(target, key, Reflect.get(target, key, receiver));
  }

  getOwnPropertyDescriptor(target: object, key: string | symbol): PropertyDescriptor | undefined {
    const own = Reflect.getOwnPropertyDescriptor(target, key);
    if (own !== undefined && "value" in own) own.value = this.#property(target, key, own.value);
    return own;
  }

  set(target: object, key: string | symbol, value: unknown, receiver: unknown): boolean {
    // Assigning to an object that merely inherits from this one writes that object, not this one.
    if (receiver === this.proxy) this.check("wrote", pathOf(this.where, key));
    return Reflect.set(target, key, value, receiver);
  }

  defineProperty(target: object, key: string | symbol, descriptor: PropertyDescriptor): boolean {
    this.check("wrote", pathOf(this.where, key));
    return Reflect.defineProperty(target, key, descriptor);
  }

  deleteProperty(target: object, key: string | symbol): boolean {
    this.check("deleted", pathOf(this.where, key));
    return Reflect.deleteProperty(target, key);
  }

  setPrototypeOf(target: object, proto: object | null): boolean {
    this.check("changed the prototype of", this.where);
    return Reflect.setPrototypeOf(target, proto);
  }

  preventExtensions(target: object): boolean {
    this.check("froze or sealed", this.where);
    return Reflect.preventExtensions(target);
  }
}

const COLLECTION_METHODS: ReadonlySet<string | symbol> = new Set<string | symbol>(["get", "has", "set", "add", "delete", "clear", "forEach", "keys", "values", "entries", Symbol.iterator]);

/**
 * A Map's or Set's contents live in internal slots that a proxy cannot trap, and its methods refuse
 * a proxy as `this`: so its methods are replaced, per proxy, by ones that run on the original,
 * refuse mutation outside model code and hand out guarded keys and values.
 */
class CollectionTraps extends Traps {
  readonly #kind: "map" | "set";
  readonly #methods = new Map<string | symbol, unknown>();

  constructor(guard: WriteGuard, vm: VirtualMachine, where: string, provisional: boolean, kind: "map" | "set") {
    super(guard, vm, where, provisional);
    this.#kind = kind;
  }

  override get(target: object, key: string | symbol, receiver: unknown): unknown {
    if (key === "size") return Reflect.get(target, key, target);
    const value: unknown = Reflect.get(target, key, receiver);
    if (typeof value !== "function" || !COLLECTION_METHODS.has(key)) return super.get(target, key, receiver);
    let method = this.#methods.get(key);
    if (method === undefined) this.#methods.set(key, (method = this.#method(target, key, value as (...args: unknown[]) => unknown)));
    return method;
  }

  #method(target: object, key: string | symbol, fn: (...args: unknown[]) => unknown): (...args: unknown[]) => unknown {
    const guard = this.guard;
    const valueAt = (v: unknown, k: unknown): unknown => this.shielded(v, () => (this.#kind === "map" ? `${this.where}.get(${keyText(k)})` : `${this.where} item`));
    const keyOf = (k: unknown): unknown => this.shielded(k, () => `${this.where} key`);
    switch (key) {
      case "set":
      case "add":
      case "delete":
      case "clear":
        return (...args) => {
          this.check(`called ${key}() on`, this.where);
          const result = Reflect.apply(fn, target, args.map((a) => guard.original(a)));
          return result === target ? this.proxy : result;
        };
      case "get":
        return (k) => valueAt(fn.call(target, guard.original(k)), k);
      case "has":
        return (k) => fn.call(target, guard.original(k));
      case "forEach":
        return (callback, thisArg) => {
          fn.call(target, (v: unknown, k: unknown) => (callback as (...args: unknown[]) => void).call(thisArg, valueAt(v, k), keyOf(k), this.proxy));
        };
      default: {
        // keys, values, entries, [Symbol.iterator]: Map entries and Set entries come as pairs.
        const pairs = key === "entries" || (this.#kind === "map" && key === Symbol.iterator);
        const keys = this.#kind === "map" && key === "keys";
        return function* (): Generator<unknown> {
          for (const item of fn.call(target) as Iterable<unknown>) {
            if (pairs) {
              const [k, v] = item as [unknown, unknown];
              yield [keyOf(k), valueAt(v, k)];
            } else {
              yield keys ? keyOf(item) : valueAt(item, UNKNOWN_KEY);
            }
          }
        };
      }
    }
  }
}

/** `Counter.count`, `Counter.items[3]`, `Counter["odd key"]`. */
function pathOf(where: string, key: string | symbol): string {
  if (typeof key === "symbol") return `${where}[${String(key)}]`;
  if (/^(?:0|[1-9]\d*)$/.test(key)) return `${where}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${where}.${key}` : `${where}[${JSON.stringify(key)}]`;
}

/** The key of a Map value that `values()` handed out. */
const UNKNOWN_KEY: unique symbol = Symbol("unknown key");

function keyText(key: unknown): string {
  if (key === UNKNOWN_KEY) return "…";
  if (typeof key === "string") return JSON.stringify(key);
  if (key instanceof Model) return `${key.constructor.name} ${key.id}`;
  return typeof key === "object" && key !== null ? "…" : String(key);
}
