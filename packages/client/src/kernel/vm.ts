import seedrandom from "seedrandom";
import { MessageType, type StreamEntry } from "@lockstep/protocol";
import { UsageError } from "../errors";
import { runAsModel } from "./execution";
import { FutureQueue, type FutureMessage } from "./futures";
import type { Model, ModelClass } from "./model";
import { bindModel, newModelInstance } from "./model-binding";
import type { ClassRegistry } from "./registry";
import { Senders, type SenderStamp, type SendersState } from "./senders";
import { VMPersistence, jsonHash, type PersistenceHost, type PersistenceState } from "./persistence";

/** Events in the session's scope that only the reflector's stream entries produce. */
export const SYSTEM_EVENTS: ReadonlySet<string> = new Set(["view-join", "view-exit"]);

/** A model method subscribed to a topic. Stored by name so it survives serialization. */
interface Subscriber {
  readonly model: Model;
  readonly method: string;
}

/** A message payload's plaintext split into its sender stamp and the bytes of its events (one, or a bundle's, in order). */
export interface OpenedPayload {
  readonly sender: SenderStamp;
  /** Each is what `PayloadCodec.decodeEvent` decodes. */
  readonly events: readonly Uint8Array[];
}

/** A decoded relayed message: what a view published. */
export interface ViewEvent {
  readonly scope: string;
  readonly event: string;
  readonly data: unknown;
}

/** What a VM needs from the session that runs it. */
export interface VMHost {
  readonly sessionId: string;
  readonly registry: ClassRegistry;
  /** Opens a relayed payload: its sender stamp, checked for replays before anything else, and the bytes of its events. */
  openPayload(payload: Uint8Array): OpenedPayload;
  /** Decodes the event bytes of an opened payload (runs as model code: custom type readers may run). */
  decodeEvent(event: Uint8Array): ViewEvent;
  /** Decodes view data of a view-join (empty → undefined). */
  decodeViewData(bytes: Uint8Array): unknown;
  /** A model published an event; views may want it. */
  modelEvent(topic: string, data: unknown): void;
  /** Model code threw, or a relayed message could not be decoded. Every replica reports the same. */
  reportError(context: string, error: unknown): void;
  /** Slots, keys and upload hooks of persisted data; default: a local stand-in (unit tests). */
  readonly persistence?: PersistenceHost;
  /** `debug=write` (view/write-guard.ts): models as guarding proxies. Absent: nothing is wrapped. */
  readonly modelGuard?: ModelGuard;
}

/** Stands between models and the code that is not theirs; the VM calls it where models and model data are born or leave. */
export interface ModelGuard {
  /** What the session will know a just-allocated model by, everywhere (called before its id is used and before `init`). */
  adopt(model: Model, vm: VirtualMachine): Model;
  /** A checked snapshot state in which every model is adopted (an equal graph otherwise). */
  restore(state: SavedState, vm: VirtualMachine): SavedState;
  /** What views get as the data of an event a model published. */
  forView(data: unknown, vm: VirtualMachine, topic: string): unknown;
}

/** The topic string of a scope and event. */
export function topicOf(scope: string, event: string): string {
  return `${scope}:${event}`;
}

/**
 * The deterministic core of a session replica: the model registry, the (time, seq) ordered
 * future queue, model pub/sub, the session PRNG and model time. Everything here is driven only by
 * the ordered stream, so every replica that processes the same stream holds the same state.
 */
export class VirtualMachine {
  readonly sessionId: string;
  /** Model time in ms. */
  time = 0;
  /** Sequence number of the last stream entry processed. */
  seq = 0;
  /**
   * Local, not replicated: counts the entries processed and futures run. While it stays the same,
   * no model code ran, so views may skip re-reading models (a restored VM starts again at 0).
   */
  revision = 0;
  #futureSeq = 0;
  #nextModelId = 0;
  readonly #models = new Map<string, Model>();
  readonly #wellKnown = new Map<string, Model>();
  readonly #subscriptions = new Map<string, Subscriber[]>();
  readonly #futures = new FutureQueue();
  readonly #views: string[] = [];
  /** Replay protection: each live view's connection and last message counter. */
  readonly #senders: Senders;
  readonly #rng: seedrandom.StatefulPRNG<seedrandom.State.Alea>;
  readonly #host: VMHost;
  readonly #guard: ModelGuard | undefined;
  /** Persisted data: what is due, saved, waiting for acknowledgement or loading. */
  readonly persistence: VMPersistence;

  /** Replaces `Math.random` while model code runs. */
  readonly randomFn: () => number;
  /** Replaces `Date.now` while model code runs. */
  readonly nowFn: () => number;

  /** A fresh VM, or (with `state`, from {@link VirtualMachine.state}) one restored from a snapshot. */
  constructor(host: VMHost, state?: unknown) {
    this.#host = host;
    this.sessionId = host.sessionId;
    this.#guard = host.modelGuard;
    const checked = state === undefined ? undefined : checkState(state, host.sessionId);
    const saved = checked && this.#guard ? this.#guard.restore(checked, this) : checked;
    this.#rng = seedrandom.alea(host.sessionId, { state: saved ? { ...saved.random } : true });
    const rng = this.#rng;
    this.randomFn = () => rng();
    this.nowFn = () => this.time;
    this.persistence = new VMPersistence(this, host.persistence ?? localPersistence(host), saved?.persist);
    this.#senders = new Senders(saved?.senders);
    if (saved) this.#restore(saved);
  }

  #restore(saved: SavedState): void {
    this.time = saved.time;
    this.seq = saved.seq;
    this.#futureSeq = saved.futureSeq;
    this.#nextModelId = saved.nextModelId;
    this.#views.push(...saved.views);
    for (const model of saved.models) {
      bindModel(model, this);
      this.#models.set(model.id, model);
    }
    for (const [name, model] of saved.wellKnown) this.#wellKnown.set(name, model);
    for (let i = 0; i < saved.subscriptions.length; i += 2) {
      const topic = saved.subscriptions[i] as string;
      const subs = saved.subscriptions[i + 1] as Array<[Model, string]>;
      this.#subscriptions.set(topic, subs.map(([model, method]) => ({ model, method })));
    }
    for (const [time, seq, receiver, selector, args] of saved.futures) this.#futures.push({ time, seq, receiver, selector, args });
  }

  get registry(): ClassRegistry {
    return this.#host.registry;
  }

  /** The view that joined first among those present (it uploads persisted data), if any. */
  get firstView(): string | undefined {
    return this.#views[0];
  }

  /** Number of views currently in the session. */
  get viewCount(): number {
    return this.#views.length;
  }

  /** The views currently in the session, in the order they joined (a copy). */
  get viewIds(): string[] {
    return this.#views.slice();
  }

  /**
   * The counter of the last message applied from `viewId`'s connection that joined at `joinSeq`
   * (0: none yet), or undefined if that connection is not known (never joined, or forgotten).
   */
  appliedCounter(viewId: string, joinSeq: number): number | undefined {
    return this.#senders.appliedCounter(viewId, joinSeq);
  }

  /** Creates the root model (time 0, before any entry) and names it "modelRoot". */
  createRoot(cls: ModelClass, options: unknown, persisted: unknown): Model {
    return runAsModel(this, () => {
      const root = this.createModel(cls, options, persisted, true);
      this.#drainFutures(this.time);
      this.persistence.afterStep();
      return root;
    });
  }

  /** Allocates, binds and initializes a model. Called from `Model.create` inside model code. */
  createModel(cls: ModelClass, options: unknown, persisted?: unknown, isRoot = false): Model {
    if (this.registry.idOf(cls) === undefined) {
      throw new UsageError(`${cls.name} is not registered: call ${cls.name}.register("${cls.name}") after the class definition`);
    }
    let model = newModelInstance(cls);
    const id = `M${++this.#nextModelId}`;
    (model as { id: string }).id = id;
    if (this.#guard) model = this.#guard.adopt(model, this);
    bindModel(model, this);
    this.#models.set(id, model);
    // Named before init, so init may already call root-only APIs such as persistSession.
    if (isRoot) this.#wellKnown.set("modelRoot", model);
    const given = this.persistence.modelCreated(model, isRoot, persisted);
    if (isRoot) model.init(options, given);
    else model.init(options);
    return model;
  }

  destroyModel(model: Model): void {
    this.persistence.modelDestroyed(model);
    this.unsubscribeAll(model);
    this.#futures.removeAll((f) => f.receiver === model);
    this.#models.delete(model.id);
    for (const [name, m] of this.#wellKnown) if (m === model) this.#wellKnown.delete(name);
  }

  getModel(id: string): Model | undefined {
    return this.#models.get(id);
  }

  wellKnownModel(name: string): Model | undefined {
    return this.#wellKnown.get(name);
  }

  setWellKnown(name: string, model: Model): void {
    this.#wellKnown.set(name, model);
  }

  random(): number {
    return this.#rng();
  }

  // ---- pub/sub ----

  subscribe(model: Model, scope: string, event: string, method: string): void {
    const topic = topicOf(scope, event);
    let subs = this.#subscriptions.get(topic);
    if (!subs) this.#subscriptions.set(topic, (subs = []));
    if (subs.some((s) => s.model === model && s.method === method)) return;
    subs.push({ model, method });
  }

  unsubscribe(model: Model, scope: string, event: string, method?: string): void {
    const topic = topicOf(scope, event);
    const subs = this.#subscriptions.get(topic);
    if (!subs) return;
    const kept = subs.filter((s) => s.model !== model || (method !== undefined && s.method !== method));
    if (kept.length === 0) this.#subscriptions.delete(topic);
    else this.#subscriptions.set(topic, kept);
  }

  unsubscribeAll(model: Model): void {
    for (const [topic, subs] of this.#subscriptions) {
      const kept = subs.filter((s) => s.model !== model);
      if (kept.length === 0) this.#subscriptions.delete(topic);
      else if (kept.length !== subs.length) this.#subscriptions.set(topic, kept);
    }
  }

  /** Whether any model subscribed to this topic. */
  hasModelSubscribers(topic: string): boolean {
    return this.#subscriptions.has(topic);
  }

  /** Delivers an event to model subscribers synchronously, then offers it to views. */
  publish(scope: string, event: string, data: unknown): void {
    const topic = topicOf(scope, event);
    this.#deliver(topic, data);
    this.#host.modelEvent(topic, this.#guard ? this.#guard.forView(data, this, topic) : data);
  }

  #deliver(topic: string, data: unknown): void {
    const subs = this.#subscriptions.get(topic);
    if (!subs) return;
    // A handler may (un)subscribe; iterate over the list as it was when the event was published.
    for (const { model, method } of subs.length === 1 ? subs : subs.slice()) {
      if (!this.#models.has(model.id)) continue;
      this.#invoke(model, method, [data], `handler ${model.constructor.name}.${method} for "${topic}"`);
    }
  }

  #invoke(model: Model, method: string, args: unknown[], context: string): void {
    const fn = (model as unknown as Record<string, unknown>)[method];
    if (typeof fn !== "function") {
      this.#host.reportError(context, new UsageError(`${model.constructor.name} has no method "${method}"`));
      return;
    }
    try {
      fn.apply(model, args);
    } catch (error) {
      this.#host.reportError(context, error);
    }
  }

  // ---- futures ----

  future(model: Model, ms: number, selector: string, args: unknown[]): FutureMessage {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new UsageError(`future(${ms}): the delay must be a finite number ≥ 0 (ms)`);
    const msg: FutureMessage = { time: this.time + ms, seq: ++this.#futureSeq, receiver: model, selector, args };
    this.#futures.push(msg);
    return msg;
  }

  cancelFuture(model: Model, selector: string): boolean {
    return this.#futures.removeFirst((f) => f.receiver === model && f.selector === selector) !== undefined;
  }

  /**
   * Runs every future due at or before `time`, in (time, seq) order, advancing model time as it
   * goes. Saves of persisted data are taken at their own due time, after the futures of that time:
   * a point fixed by the stream, not by when ticks happened to arrive.
   */
  #drainFutures(time: number): void {
    const persistence = this.persistence;
    for (;;) {
      const next = this.#futures.peek();
      const due = persistence.nextDue;
      if (due <= time && due < (next?.time ?? Infinity)) {
        if (due > this.time) this.time = due;
        persistence.takeDue();
        continue;
      }
      if (next === undefined || next.time > time) break;
      this.#futures.pop();
      this.revision++;
      if (next.time > this.time) this.time = next.time;
      const model = next.receiver as Model;
      if (!this.#models.has(model.id)) continue;
      this.#invoke(model, next.selector, next.args, `future ${model.constructor.name}.${next.selector}`);
      persistence.afterFuture();
    }
    if (time > this.time) this.time = time;
  }

  // ---- the ordered stream ----

  /** Advances model time to `time` (a tick), running futures due by then. */
  advanceTo(time: number): void {
    if (time <= this.time && (this.#futures.peek()?.time ?? Infinity) > time) return;
    runAsModel(this, () => this.#drainFutures(time));
  }

  /**
   * Processes one stream entry: futures due at or before its time run first, then the entry, then
   * futures it scheduled for the same time.
   */
  processEntry(entry: StreamEntry): void {
    runAsModel(this, () => {
      this.#drainFutures(entry.time);
      this.seq = entry.seq;
      this.revision++;
      switch (entry.type) {
        case MessageType.Relay: {
          let opened: OpenedPayload;
          try {
            opened = this.#host.openPayload(entry.payload);
            // Before decoding: a replayed message must not even run custom type readers.
            this.#senders.admit(opened.sender);
          } catch (error) {
            this.#host.reportError(`relayed message #${entry.seq}`, error);
            break;
          }
          // A bundle's events run in order at the entry's time, each as if it were its own entry (futures
          // due by then run between them); one that fails is dropped alone, alike on every replica.
          const events = opened.events;
          for (let i = 0; i < events.length; i++) {
            if (i > 0) this.#drainFutures(entry.time);
            this.#relayed(entry.seq, events[i]!);
          }
          break;
        }
        case MessageType.ViewJoin: {
          this.#views.push(entry.viewId);
          this.#senders.joined(entry.viewId, entry.seq);
          let viewData: unknown;
          try {
            viewData = this.#host.decodeViewData(entry.viewData);
          } catch (error) {
            this.#host.reportError(`view data of ${entry.viewId}`, error);
          }
          this.publish(this.sessionId, "view-join", viewData === undefined ? entry.viewId : { viewId: entry.viewId, viewData });
          this.persistence.changed();
          break;
        }
        case MessageType.ViewExit: {
          this.#senders.exited(entry.viewId);
          const i = this.#views.indexOf(entry.viewId);
          if (i < 0) break; // an exit without a join is not ours to announce
          this.#views.splice(i, 1);
          this.publish(this.sessionId, "view-exit", entry.viewId);
          this.persistence.changed();
          break;
        }
        case MessageType.SnapshotRequest:
          break; // a point in the stream; the session snapshots right after it
        case MessageType.Persisted:
          this.persistence.persisted(entry);
          break;
        case MessageType.PersistData:
          this.persistence.data(entry);
          this.persistence.changed();
          break;
      }
      this.#drainFutures(entry.time);
      this.persistence.afterStep();
      // Snapshots hold no functions: every save still pending is taken now, on every replica alike.
      if (entry.type === MessageType.SnapshotRequest) this.persistence.takeAll();
    });
  }

  /** One event of a relayed payload: decoded (as model code), checked, delivered to models. */
  #relayed(seq: number, bytes: Uint8Array): void {
    let decoded: ViewEvent;
    try {
      decoded = this.#host.decodeEvent(bytes);
    } catch (error) {
      this.#host.reportError(`relayed message #${seq}`, error);
      return;
    }
    // The session's system events come from the reflector only. A client (a bug, or one that
    // bypassed the library) must not fake a view-join or view-exit: every replica drops it the same way.
    if (decoded.scope === this.sessionId && SYSTEM_EVENTS.has(decoded.event)) {
      this.#host.reportError(`relayed message #${seq}`, new Error(`a client published the system event "${decoded.event}" of the session scope; dropped`));
      return;
    }
    // A view published this; its own views already had it locally. Only models get it here.
    this.#deliver(topicOf(decoded.scope, decoded.event), decoded.data);
    this.persistence.changed();
  }

  /**
   * The whole replicated state as one object graph, for serialization and hashing. Iteration
   * orders are insertion orders, identical on every replica.
   */
  state(): SavedState {
    const subscriptions: unknown[] = [];
    for (const [topic, subs] of this.#subscriptions) {
      subscriptions.push(topic, subs.map((s) => [s.model, s.method]));
    }
    return {
      v: 2,
      sessionId: this.sessionId,
      time: this.time,
      seq: this.seq,
      futureSeq: this.#futureSeq,
      nextModelId: this.#nextModelId,
      random: this.#rng.state(),
      views: this.#views.slice(),
      senders: this.#senders.state(),
      models: [...this.#models.values()],
      wellKnown: [...this.#wellKnown],
      subscriptions,
      futures: this.#futures.sorted().map((f) => [f.time, f.seq, f.receiver as Model, f.selector, f.args]),
      persist: this.persistence.state(),
    };
  }
}

/**
 * The state of the session's Alea generator (seedrandom's `State.Alea`, spelled out here so the
 * published declarations do not need seedrandom's types).
 */
export interface AleaState {
  readonly c: number;
  readonly s0: number;
  readonly s1: number;
  readonly s2: number;
}

/** The shape {@link VirtualMachine.state} produces and a restoring VM accepts. */
export interface SavedState {
  readonly v: 2;
  readonly sessionId: string;
  readonly time: number;
  readonly seq: number;
  readonly futureSeq: number;
  readonly nextModelId: number;
  readonly random: AleaState;
  readonly views: string[];
  /** Replay protection of the live views (`senders.ts`). */
  readonly senders: SendersState;
  readonly models: Model[];
  readonly wellKnown: Array<[string, Model]>;
  readonly subscriptions: unknown[];
  readonly futures: Array<[number, number, Model, string, unknown[]]>;
  readonly persist: PersistenceState;
}

/** Checks that a deserialized snapshot is a VM state of this session before anything trusts it. */
function checkState(state: unknown, sessionId: string): SavedState {
  const s = state as Partial<SavedState> | null;
  const ok =
    typeof s === "object" && s !== null && s.v === 2 && typeof s.time === "number" && typeof s.seq === "number" &&
    typeof s.futureSeq === "number" && typeof s.nextModelId === "number" && typeof s.random === "object" &&
    Array.isArray(s.views) && Array.isArray(s.senders) && Array.isArray(s.models) && Array.isArray(s.wellKnown) && Array.isArray(s.subscriptions) && Array.isArray(s.futures) && Array.isArray(s.persist);
  if (!ok) throw new Error("snapshot is not a Lockstep VM state of version 2 (made by this library version)");
  if (s.sessionId !== sessionId) throw new Error(`snapshot belongs to session ${String(s.sessionId)}, not ${sessionId}`);
  return s as SavedState;
}

/** Persistence for a VM with no client behind it (unit tests): slots are names, data is plain JSON. */
function localPersistence(host: VMHost): PersistenceHost {
  return {
    baseSlot: () => "local",
    keyedSlot: (key) => `key-${key}`,
    hashOf: (_slot, json) => new TextEncoder().encode(jsonHash(json)),
    openSlotData: (_slot, blob) => JSON.parse(new TextDecoder().decode(blob)) as unknown,
    saved: () => undefined,
    reportError: (context, error) => host.reportError(context, error),
  };
}
