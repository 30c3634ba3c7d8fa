import { UsageError } from "../errors";
import { currentVM } from "./execution";
import { checkConstructing, vmOfModel } from "./model-binding";
import { registry, type TypeSpec } from "./registry";
import type { ModelRuntime } from "./runtime";
import { BASE_WRITER, persistDelayOf } from "./persistence";
import { arrowCall } from "./handler-source";

/** A Model subclass (what `Session.join({ model })` and `Model.create` take). */
export type ModelClass<T extends Model = Model> = (new () => T) & typeof Model;

/** Handler of a model subscription: a method of the model, its name, or a simple arrow calling one (`x => this.method(x)`). */
export type ModelHandler = ((data: any) => void) | string;

/** The proxy `future(ms)` returns: call any method of the model on it to schedule that call. */
export type FutureProxy<T> = {
  readonly [K in keyof T]: T[K] extends (...args: infer A) => unknown ? (...args: A) => void : never;
};

function modelCode(model: Model, api: string): ModelRuntime {
  const vm = currentVM();
  if (vm === undefined) {
    throw new UsageError(
      `${model.constructor.name}.${api}() was called from view or app code. Models change only inside model code ` +
        `(init, event handlers, futures); from a view, publish an event the model subscribes to.`,
    );
  }
  if (vm !== vmOfModel(model)) throw new UsageError(`${model.constructor.name}.${api}() called from another session's model code`);
  return vm;
}

/** Finds the name under which `fn` is a method of `model` (so a subscription can be serialized). */
function methodName(model: Model, handler: ModelHandler, api: string): string {
  const record = model as unknown as Record<string, unknown>;
  if (typeof handler === "string") {
    const name = handler.startsWith("this.") ? handler.slice(5) : handler;
    if (typeof record[name] !== "function") throw new UsageError(`${api}: ${model.constructor.name} has no method "${name}"`);
    return name;
  }
  if (typeof handler === "function") {
    for (let proto = Object.getPrototypeOf(model) as object | null; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
      for (const key of Object.getOwnPropertyNames(proto)) {
        if (key === "constructor") continue;
        const desc = Object.getOwnPropertyDescriptor(proto, key);
        if (desc && desc.value === handler) return key;
      }
    }
    // Croquet's shorthand: an arrow that only calls a method of `this` stands for that method.
    const call = arrowCall(handler);
    if (call !== undefined) {
      const method = record[call.method];
      if (typeof method !== "function") throw new UsageError(`${api}: the handler calls this.${call.method}(), but ${model.constructor.name} has no method "${call.method}"`);
      if (!call.passesArgument && method.length > 0) {
        throw new UsageError(
          `${api}: the handler calls this.${call.method}() without the event's data, but ${call.method} takes an argument and would receive it; ` +
            `pass this.${call.method} itself, or a method that takes none`,
        );
      }
      return call.method;
    }
  }
  throw new UsageError(
    `${api}: the handler must be a method of ${model.constructor.name} (pass this.someMethod, "someMethod" or x => this.someMethod(x)); ` +
      `other arrow functions, bound functions and closures cannot be stored in a snapshot`,
  );
}

/**
 * Base class of all shared, replicated state. Subclass it, register the subclass, and put state
 * in `init`. Every client runs the same model code on the same ordered events, so every replica
 * stays identical; model code must therefore be deterministic (no I/O, timers, async, or view
 * access).
 *
 * @example
 * ```ts
 * class Counter extends Model {
 *   count = 0;
 *   init() {
 *     this.subscribe("counter", "reset", this.reset);
 *     this.future(1000).tick();
 *   }
 *   tick() {
 *     this.count++;
 *     this.publish("counter", "changed", this.count);
 *     this.future(1000).tick();
 *   }
 *   reset() { this.count = 0; }
 * }
 * Counter.register("Counter");
 * ```
 */
export class Model {
  /** Session-unique, deterministic id of this model (the same on every replica). */
  readonly id!: string;

  /** Do not call: create models with `MyModel.create(options)`. */
  constructor() {
    checkConstructing(new.target);
  }

  /**
   * Creates, registers and initializes a model of this class. Call it from model code only (the
   * root model is created by the session).
   */
  static create<T extends Model>(this: new () => T, options?: unknown): T {
    const vm = currentVM();
    if (vm === undefined) {
      throw new UsageError(`${this.name}.create() must be called from model code (init, an event handler or a future)`);
    }
    return vm.createModel(this as unknown as ModelClass, options) as T;
  }

  /**
   * Whether model code is running now (init, an event handler or a future, of any session), as in
   * Croquet: code shared by models and views can ask which side it is on. False in view code,
   * including a view's "immediate" handler that runs while a model publishes.
   */
  static isExecuting(): boolean {
    return currentVM() !== undefined;
  }

  /**
   * Registers this class under a stable id, so snapshots can name it and code versions can be
   * hashed. Call once per Model subclass, right after its definition.
   */
  static register(classId: string): void {
    registry.register(this, classId);
  }

  /**
   * Non-model classes used in this class's state, by name: a bare class (restored without its
   * constructor) or `{ cls, write, read }` for custom encoding.
   */
  static types(): Record<string, TypeSpec> {
    return {};
  }

  /**
   * Sets up the model. `options` come from `create(options)` (for the root model: the session's
   * `options`); `persisted` is what an earlier code version saved with `persistSession` (root only).
   */
  init(_options?: any, _persisted?: any): void {}

  /** Removes this model from the session: its subscriptions and futures go with it. */
  destroy(): void {
    modelCode(this, "destroy").destroyModel(this);
  }

  /** Publishes an event: model subscribers run synchronously, view subscribers in their next frame. */
  publish(scope: string, event: string, data?: unknown): void {
    checkTopic(scope, event, "publish");
    modelCode(this, "publish").publish(scope, event, data);
  }

  /** Subscribes one of this model's methods to an event. */
  subscribe(scope: string, event: string, handler: ModelHandler): void {
    checkTopic(scope, event, "subscribe");
    const vm = modelCode(this, "subscribe");
    vm.subscribe(this, scope, event, methodName(this, handler, "subscribe"));
  }

  /** Removes this model's subscription to an event (only `handler`'s, if given). */
  unsubscribe(scope: string, event: string, handler?: ModelHandler): void {
    const vm = modelCode(this, "unsubscribe");
    vm.unsubscribe(this, scope, event, handler === undefined ? undefined : methodName(this, handler, "unsubscribe"));
  }

  /** Removes every subscription of this model. */
  unsubscribeAll(): void {
    modelCode(this, "unsubscribeAll").unsubscribeAll(this);
  }

  /**
   * Schedules a method call `ms` of model time from now: `this.future(1000).tick()`, or
   * `this.future(1000, "tick")`. Futures run in (time, order of scheduling) order, before
   * external events of the same time.
   */
  future(ms?: number): FutureProxy<this>;
  future(ms: number, method: string, ...args: unknown[]): void;
  future(ms = 0, method?: string, ...args: unknown[]): FutureProxy<this> | void {
    const vm = modelCode(this, "future");
    if (method !== undefined) {
      vm.future(this, ms, methodName(this, method, "future"), args);
      return;
    }
    return new Proxy(this, {
      get: (target, key) => {
        if (typeof key !== "string") return undefined;
        const name = methodName(target, key, "future");
        return (...callArgs: unknown[]) => {
          vm.future(target, ms, name, callArgs);
        };
      },
    }) as unknown as FutureProxy<this>;
  }

  /** Cancels the earliest pending future call of `method` on this model. Returns whether one was pending. */
  cancelFuture(method: ModelHandler): boolean {
    const vm = modelCode(this, "cancelFuture");
    return vm.cancelFuture(this, methodName(this, method, "cancelFuture"));
  }

  /** Model time in ms: advanced only by the reflector's ordered stream. */
  now(): number {
    return vmOfModel(this).time;
  }

  /** A random number from the session PRNG, identical on every replica. Model code only. */
  random(): number {
    return modelCode(this, "random").random();
  }

  /** Makes this model findable by `wellKnownModel(name)` from models and views. */
  beWellKnownAs(name: string): void {
    modelCode(this, "beWellKnownAs").setWellKnown(name, this);
  }

  /** A model registered with `beWellKnownAs(name)`; the root model is `"modelRoot"`. */
  wellKnownModel<T extends Model = Model>(name: string): T | undefined {
    return vmOfModel(this).wellKnownModel(name) as T | undefined;
  }

  /** The model with this id, if it exists. */
  getModel<T extends Model = Model>(id: string): T | undefined {
    return vmOfModel(this).getModel(id) as T | undefined;
  }

  /** Throws (with `message`) unless called from model code; returns true otherwise. */
  modelOnly(message?: string): boolean {
    if (currentVM() === undefined) throw new UsageError(message ?? `${this.constructor.name}: this may only be called from model code`);
    return true;
  }

  /**
   * Saves data that outlives code changes (root model only). `fn` returns JSON-compatible data;
   * Lockstep calls it when the save is due (model time + the root class's static `persistDelay`,
   * default 1000 ms; latest call wins), stable-stringifies it, skips it if unchanged, and one
   * client uploads it encrypted. A later code version's root `init(options, persisted)` receives it.
   * As in Croquet, the data itself (an object or array) may be passed instead of a function: it is
   * copied as JSON at the call, so later changes to it are saved only by another call.
   *
   * @example
   * ```ts
   * save() {
   *   this.persistSession(() => ({ version: 2, documents: [...this.documents] }));
   * }
   * ```
   */
  persistSession(fn: (() => unknown) | object): void {
    const vm = modelCode(this, "persistSession");
    if (vm.wellKnownModel("modelRoot") !== this) {
      throw new UsageError(`persistSession() belongs to the root model; ${this.constructor.name} is not it. Call it on this.wellKnownModel("modelRoot").`);
    }
    if (typeof fn === "function") {
      vm.persistence.request(BASE_WRITER, () => (fn as () => unknown).call(this), persistDelayOf(this));
      return;
    }
    if (typeof fn !== "object" || fn === null) {
      throw new UsageError(`persistSession(data): data must be an object or array (or a function returning one), got ${fn === null ? "null" : typeof fn}`);
    }
    let copy: string;
    try {
      copy = JSON.stringify(fn);
    } catch (cause) {
      throw new UsageError(`persistSession(data): data must be JSON-compatible (${(cause as Error).message})`, { cause });
    }
    vm.persistence.request(BASE_WRITER, () => JSON.parse(copy) as unknown, persistDelayOf(this));
  }

  /** The session this model belongs to (code-dependent id). */
  get sessionId(): string {
    return vmOfModel(this).sessionId;
  }

  /** Number of views currently joined to the session. */
  get viewCount(): number {
    return vmOfModel(this).viewCount;
  }
}

function checkTopic(scope: unknown, event: unknown, api: string): void {
  if (typeof scope !== "string" || typeof event !== "string") {
    throw new UsageError(`${api}(scope, event, …): scope and event must be strings, got ${typeof scope} and ${typeof event}`);
  }
}
