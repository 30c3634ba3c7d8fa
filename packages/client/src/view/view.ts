import { UsageError } from "../errors";
import { currentVM } from "../kernel/execution";
import type { Model } from "../kernel/model";
import { vmOfModel } from "../kernel/model-binding";
import type { Handling, ViewDomain } from "./domain";
import type { ModelRuntime } from "../kernel/runtime";
import { SYSTEM_EVENTS, topicOf } from "../kernel/vm";
import type { CroquetViewRealm } from "./realm-compat";

/** What a view needs from the session it belongs to. Implemented by the session controller. */
export interface ViewRealm {
  readonly viewId: string;
  readonly sessionId: string;
  readonly domain: ViewDomain;
  /** The object `Session.join` resolved with. */
  readonly session: unknown;
  modelTime(): number;
  externalNow(): number;
  extrapolatedNow(): number;
  publish(scope: string, event: string, data: unknown, options?: PublishOptions): void;
  wellKnownModel(name: string): Model | undefined;
  /** What Croquet apps read as `view.realm` (absent only in unit tests' bare realms). */
  readonly croquet?: CroquetViewRealm;
}

const realms = new WeakMap<ModelRuntime, ViewRealm>();
let activeRealm: ViewRealm | undefined;

/** Links a VM to the realm of its views (so `new SomeView(model)` finds its session). */
export function setRealm(vm: ModelRuntime, realm: ViewRealm): void {
  realms.set(vm, realm);
}

/** Runs `fn` with `realm` as the realm of views constructed inside it. */
export function withRealm<T>(realm: ViewRealm, fn: () => T): T {
  const outer = activeRealm;
  activeRealm = realm;
  try {
    return fn();
  } finally {
    activeRealm = outer;
  }
}

/** An event name, or an event name with its handling mode. */
/** Options of one publish (`view.publish(scope, event, data, options)`). */
export interface PublishOptions {
  /**
   * What to do with the event while the session is not connected: `"queue"` (default) sends it
   * once it is, in order; `"drop"` drops it (input that is stale by then: cursor moves).
   */
  readonly offline?: "queue" | "drop";
}

export type EventSpec = string | { readonly event: string; readonly handling?: Handling };

/** The proxy `future(ms)` returns on a view. */
export type ViewFutureProxy<T> = {
  readonly [K in keyof T]: T[K] extends (...args: infer A) => unknown ? (...args: A) => void : never;
};

/**
 * Base class of the local, per-client side of an app: it reads models (never writes them),
 * renders, and publishes user input as events for the models.
 *
 * @example
 * ```ts
 * class CounterView extends View {
 *   constructor(model: Counter) {
 *     super(model);
 *     this.subscribe("counter", "changed", this.show);
 *     document.body.onclick = () => this.publish("counter", "reset");
 *   }
 *   show(count: number) { document.body.textContent = String(count); }
 * }
 * ```
 */
export class View {
  readonly #realm: ViewRealm;

  /** `model` is what this view shows; it also tells a view built outside view code which session it belongs to. */
  constructor(model?: Model) {
    if (currentVM() !== undefined) {
      throw new UsageError(`${new.target.name} was constructed from model code; models must never create or touch views`);
    }
    const realm = activeRealm ?? (model ? realms.get(vmOfModel(model)) : undefined);
    if (!realm) {
      throw new UsageError(`${new.target.name} could not find its session: pass the model it shows to the constructor (super(model))`);
    }
    this.#realm = realm;
  }

  /** This client's view id (the same one models see in view-join / view-exit). */
  get viewId(): string {
    return this.#realm.viewId;
  }

  /**
   * The session's id: the scope of the session's own events — `view-join` and `view-exit` (from
   * models) and `synced` (`true` once caught up, `false` when the connection is lost).
   * @example
   * ```ts
   * this.subscribe(this.sessionId, "synced", (synced: boolean) => banner.hidden = synced);
   * ```
   */
  get sessionId(): string {
    return this.#realm.sessionId;
  }

  /** The session object `Session.join` resolved with. */
  get session(): any {
    return this.#realm.session;
  }

  /**
   * The session this view belongs to, as Croquet apps read it: `realm.vm.time` (model time),
   * `realm.vm.controller.backlog` (ms heard but not yet simulated), `.starvation` (ms since the
   * reflector was last heard), `.users` (views in the session) and a few more. Read-only figures
   * that never throw, whatever state the session is in.
   * @example
   * ```ts
   * const { backlog, starvation } = this.realm.vm.controller;
   * if (backlog > 500 || starvation > 3000) showSpinner();
   * ```
   */
  get realm(): CroquetViewRealm {
    return this.#realm.croquet as CroquetViewRealm;
  }

  /**
   * Subscribes to an event from models or other views. `handler` runs with `this` as the view;
   * handling is "queued" (default: in order, next frame), "oncePerFrame" (only the last one each
   * frame) or "immediate" (synchronously, while the model is still running: read only).
   */
  subscribe(scope: string, eventSpec: EventSpec, handler: (data: any) => void): void {
    const { event, handling } = typeof eventSpec === "string" ? { event: eventSpec, handling: "queued" as const } : { event: eventSpec.event, handling: eventSpec.handling ?? "queued" };
    if (typeof scope !== "string" || typeof event !== "string") throw new UsageError("subscribe(scope, event, handler): scope and event must be strings");
    if (handling !== "queued" && handling !== "oncePerFrame" && handling !== "immediate") {
      throw new UsageError(`subscribe: handling must be "queued", "oncePerFrame" or "immediate", not ${JSON.stringify(handling)}`);
    }
    if (typeof handler !== "function") throw new UsageError("subscribe: handler must be a function (usually this.someMethod)");
    this.#realm.domain.subscribe(this, topicOf(scope, event), handler, handling);
  }

  /** Removes this view's subscription (only `handler`'s, if given). */
  unsubscribe(scope: string, event: string, handler?: (data: any) => void): void {
    this.#realm.domain.unsubscribe(this, topicOf(scope, event), handler);
  }

  /** Removes all of this view's subscriptions and futures. */
  unsubscribeAll(): void {
    this.#realm.domain.unsubscribeAll(this);
  }

  /**
   * Publishes an event: it goes through the reflector to every replica's models, and to local view
   * subscribers. While the session is not connected it is queued and sent once it is, unless
   * `options.offline` is `"drop"` (input that would be stale by then, like cursor moves).
   */
  publish(scope: string, event: string, data?: unknown, options?: PublishOptions): void {
    if (typeof scope !== "string" || typeof event !== "string") throw new UsageError("publish(scope, event, data): scope and event must be strings");
    if (SYSTEM_EVENTS.has(event) && scope === this.#realm.wellKnownModel("modelRoot")?.sessionId) {
      throw new UsageError(`"${event}" in the session scope comes from the reflector only; views cannot publish it (models would drop it)`);
    }
    if (options !== undefined && options.offline !== undefined && options.offline !== "queue" && options.offline !== "drop") {
      throw new UsageError(`publish: options.offline must be "queue" or "drop", not ${JSON.stringify(options.offline)}`);
    }
    this.#realm.publish(scope, event, data, options);
  }

  /** Detaches the view from the session: unsubscribes everything. Override to clean up the UI too (call super). */
  detach(): void {
    this.unsubscribeAll();
  }

  /** Called once per frame with the frame's time; override to render. */
  update(_time: number): void {}

  /** Model time of the latest processed event. */
  now(): number {
    return this.#realm.modelTime();
  }

  /** Session time of the latest message or tick received from the reflector. */
  externalNow(): number {
    return this.#realm.externalNow();
  }

  /** `externalNow()` plus local time elapsed since it arrived: a smooth estimate of session time. */
  extrapolatedNow(): number {
    return this.#realm.extrapolatedNow();
  }

  /** Schedules a call of one of this view's methods after `ms` of session time: `this.future(100).blink()`. */
  future(ms = 0): ViewFutureProxy<this> {
    const realm = this.#realm;
    return new Proxy(this, {
      get: (target, key) => {
        if (typeof key !== "string" || typeof (target as unknown as Record<string, unknown>)[key] !== "function") {
          throw new UsageError(`future: ${target.constructor.name} has no method ${String(key)}`);
        }
        return (...args: unknown[]) => realm.domain.future(target, realm.extrapolatedNow() + ms, key, args);
      },
    }) as unknown as ViewFutureProxy<this>;
  }

  /** A non-replicated random number (views may differ per client). */
  random(): number {
    return Math.random();
  }

  /** A model registered with `beWellKnownAs(name)`; the root model is `"modelRoot"`. */
  wellKnownModel<T extends Model = Model>(name: string): T | undefined {
    return this.#realm.wellKnownModel(name) as T | undefined;
  }
}
