import { runAsView } from "../kernel/execution";
import { NO_DEBUG, type DebugLog } from "../kernel/debug-log";

/** How a view subscription receives events. */
export type Handling = "queued" | "oncePerFrame" | "immediate";

interface ViewSubscription {
  readonly view: object;
  readonly handler: (data: any) => void;
  readonly handling: Handling;
}

interface ViewFuture {
  readonly time: number;
  readonly order: number;
  readonly view: object;
  readonly method: string;
  readonly args: unknown[];
}

/**
 * The local, non-replicated side of a session: view subscriptions, the event queues between model
 * and views, and view futures. Nothing here is part of the shared state.
 */
export class ViewDomain {
  readonly #subs = new Map<string, ViewSubscription[]>();
  #queue: unknown[] = []; // [topic, data, topic, data, …]
  readonly #latest = new Map<string, unknown>();
  #futures: ViewFuture[] = [];
  #futureOrder = 0;
  readonly #reportError: (context: string, error: unknown) => void;
  /** The session's debug flags: view subscriptions (`subscribe`), handlers called (`events`), publishes (`publish`, `sends`). */
  readonly debug: DebugLog;

  constructor(reportError: (context: string, error: unknown) => void, debug: DebugLog = NO_DEBUG) {
    this.#reportError = reportError;
    this.debug = debug;
  }

  subscribe(view: object, topic: string, handler: (data: any) => void, handling: Handling): void {
    if (this.debug.subscribe) this.debug.log(`${nameOf(view)} subscribed to "${topic}" (${handler.name || "a function"}, ${handling})`);
    let subs = this.#subs.get(topic);
    if (!subs) this.#subs.set(topic, (subs = []));
    if (subs.some((s) => s.view === view && s.handler === handler)) return;
    subs.push({ view, handler, handling });
  }

  unsubscribe(view: object, topic: string, handler?: (data: any) => void): void {
    if (this.debug.subscribe) this.debug.log(`${nameOf(view)} unsubscribed from "${topic}"`);
    const subs = this.#subs.get(topic);
    if (!subs) return;
    const kept = subs.filter((s) => s.view !== view || (handler !== undefined && s.handler !== handler));
    if (kept.length === 0) this.#subs.delete(topic);
    else this.#subs.set(topic, kept);
  }

  unsubscribeAll(view: object): void {
    if (this.debug.subscribe) this.debug.log(`${nameOf(view)} unsubscribed from everything`);
    for (const [topic, subs] of this.#subs) {
      const kept = subs.filter((s) => s.view !== view);
      if (kept.length === 0) this.#subs.delete(topic);
      else if (kept.length !== subs.length) this.#subs.set(topic, kept);
    }
    this.#futures = this.#futures.filter((f) => f.view !== view);
  }

  /**
   * An event for views (published by a model, or by a local view). Immediate subscribers run now;
   * queued ones get it in order at the next frame; oncePerFrame ones get only the frame's last one.
   */
  deliver(topic: string, data: unknown): void {
    const subs = this.#subs.get(topic);
    if (!subs) return;
    let queued = false;
    for (const sub of subs) {
      if (sub.handling === "immediate") {
        runAsView(() => this.#call(sub, data, topic));
      } else if (sub.handling === "oncePerFrame") {
        this.#latest.set(topic, data);
      } else {
        queued = true;
      }
    }
    if (queued) this.#queue.push(topic, data);
  }

  /**
   * Delivers an event to every subscriber of `topic` now, whatever its handling: for session
   * events (`synced`) that happen while no frames run.
   */
  notify(topic: string, data: unknown): void {
    const subs = this.#subs.get(topic);
    if (!subs) return;
    for (const sub of subs.slice()) runAsView(() => this.#call(sub, data, topic));
  }

  #call(sub: ViewSubscription, data: unknown, topic: string): void {
    if (this.debug.events) this.debug.log(`event "${topic}" → ${nameOf(sub.view)} (${sub.handling})`, data);
    try {
      sub.handler.call(sub.view, data);
    } catch (error) {
      this.#reportError(`view handler for "${topic}"`, error);
    }
  }

  /** Delivers queued and once-per-frame events to their subscribers, then due view futures. */
  frame(now: number): void {
    const queue = this.#queue;
    if (queue.length > 0) {
      this.#queue = [];
      for (let i = 0; i < queue.length; i += 2) {
        const topic = queue[i] as string;
        const subs = this.#subs.get(topic);
        if (!subs) continue;
        for (const sub of subs.length === 1 ? subs : subs.slice()) {
          if (sub.handling === "queued") this.#call(sub, queue[i + 1], topic);
        }
      }
    }
    if (this.#latest.size > 0) {
      const latest = [...this.#latest];
      this.#latest.clear();
      for (const [topic, data] of latest) {
        for (const sub of this.#subs.get(topic) ?? []) {
          if (sub.handling === "oncePerFrame") this.#call(sub, data, topic);
        }
      }
    }
    if (this.#futures.length > 0 && this.#futures[0]!.time <= now) {
      const due = this.#futures.filter((f) => f.time <= now);
      this.#futures = this.#futures.filter((f) => f.time > now);
      for (const f of due) {
        const fn = (f.view as unknown as Record<string, unknown>)[f.method];
        if (typeof fn !== "function") continue;
        try {
          fn.apply(f.view, f.args);
        } catch (error) {
          this.#reportError(`view future ${f.view.constructor.name}.${f.method}`, error);
        }
      }
    }
  }

  /** Schedules a view method call at local time `time`. */
  future(view: object, time: number, method: string, args: unknown[]): void {
    this.#futures.push({ time, order: ++this.#futureOrder, view, method, args });
    this.#futures.sort((a, b) => a.time - b.time || a.order - b.order);
  }

  /** Drops everything (the session ended). */
  /** Detaches a root view (before a rejoin builds a new one, or on leave) and drops every view subscription. */
  retire(view: { detach(): void } | undefined): void {
    try {
      view?.detach();
    } catch (error) {
      this.#reportError(`${view?.constructor.name}.detach`, error);
    }
    this.clear();
  }

  clear(): void {
    this.#subs.clear();
    this.#queue = [];
    this.#latest.clear();
    this.#futures = [];
  }
}

/** A view as the logs name it: its class, and its id when it has one. */
function nameOf(view: object): string {
  const id = (view as { id?: unknown }).id;
  return `${view.constructor.name}${typeof id === "string" && id !== "" ? `#${id}` : ""}`;
}
