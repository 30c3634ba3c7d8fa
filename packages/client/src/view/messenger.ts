import { UsageError } from "../errors";

/** What a {@link Messenger} handler receives besides the data: the window the message came from. */
export type MessengerSource = unknown;

/** A handler: a function, or the name of a method of the receiver. */
export type MessengerHandler = ((data: any, source: MessengerSource) => void) | string;

interface MessageWindow {
  readonly top?: MessageWindow | null;
  postMessage(message: unknown, targetOrigin: string): void;
  addEventListener?(type: "message", listener: (event: { data: unknown; source: unknown }) => void): void;
  removeEventListener?(type: "message", listener: (event: { data: unknown; source: unknown }) => void): void;
  readonly document?: { addEventListener(type: string, listener: (event: any) => void, capture?: boolean): void; removeEventListener(type: string, listener: (event: any) => void, capture?: boolean): void };
}

/**
 * Croquet's `Messenger`: messages between an app in an iframe and the page that embeds it (its
 * container), through `postMessage`. Set a receiver (a view-side object) first; `on(event,
 * handler)` calls `handler` with `this` = the receiver and `(data, sourceWindow)` for every
 * `{ event, data }` message that arrives. `send(event, data)` from an app in an iframe goes to the
 * top window; from the container it goes to one window (`recipient`) or to every iframe the
 * enumerator set with `setIframeEnumerator` lists. Outside a browser nothing is sent or received,
 * and every call is still safe. It is not part of the replicated state: never use it from models.
 *
 * @example
 * ```ts
 * Messenger.setReceiver(this);            // in a view
 * Messenger.on("userInfo", "showUser");   // calls this.showUser(data, source)
 * Messenger.send("requestUserInfo");
 * ```
 */
export class LockstepMessenger {
  #receiver: object | undefined;
  #handlers = new Map<string, ((data: any, source: MessengerSource) => void)[]>();
  #enumerator: (() => Iterable<{ readonly contentWindow: { postMessage(message: unknown, targetOrigin: string): void } | null }>) | undefined;
  #listener: ((event: { data: unknown; source: unknown }) => void) | undefined;
  #pointerMove: ((event: { clientX: number; clientY: number; type: string }) => void) | undefined;
  readonly #window: () => MessageWindow | undefined;

  /** `window`: the page's window (default `globalThis.window`, none in Node). */
  constructor(window: () => MessageWindow | undefined = () => (globalThis as { window?: MessageWindow }).window) {
    this.#window = window;
  }

  /** Whether a receiver is set. */
  get ready(): boolean {
    return this.#receiver !== undefined;
  }

  /** Whether this page runs inside another page's iframe. */
  get isInIframe(): boolean {
    const w = this.#window();
    return w !== undefined && w.top !== undefined && w.top !== null && w.top !== w;
  }

  /** The object handlers run on (`this` in them; a method name in {@link on} is looked up on it). */
  setReceiver(receiver: object): void {
    if (typeof receiver !== "object" || receiver === null) throw new UsageError("Messenger.setReceiver(receiver): receiver must be an object (usually a view)");
    this.#receiver = receiver;
  }

  /** In the container: how to find the iframes `send` without a recipient posts to. */
  setIframeEnumerator(enumerator: () => Iterable<{ readonly contentWindow: { postMessage(message: unknown, targetOrigin: string): void } | null }>): void {
    this.#enumerator = enumerator;
  }

  /**
   * Calls `handler(data, sourceWindow)` on the receiver for every message `event` that arrives.
   * @throws {UsageError} without a receiver, for a name the receiver has no method for, or for a handler already subscribed.
   */
  on(event: string, handler: MessengerHandler): void {
    const fn = this.#resolve(handler, "on");
    const list = this.#handlers.get(event) ?? [];
    if (list.includes(fn)) throw new UsageError(`Messenger.on("${event}"): that handler is subscribed already`);
    list.push(fn);
    this.#handlers.set(event, list);
    const w = this.#window();
    if (this.#listener === undefined && w?.addEventListener) {
      this.#listener = (msg) => this.#receive(msg);
      w.addEventListener("message", this.#listener);
    }
  }

  /** Stops calling `handler` (or, given a name, the receiver's method of that name) for `event`. */
  removeSubscription(event: string, handler: MessengerHandler): void {
    const fn = this.#resolve(handler, "removeSubscription");
    const list = this.#handlers.get(event)?.filter((h) => h !== fn);
    if (list === undefined || list.length === 0) this.#handlers.delete(event);
    else this.#handlers.set(event, list);
  }

  /** Stops every handler (the receiver stays). */
  removeAllSubscriptions(): void {
    this.#handlers.clear();
  }

  /**
   * Posts `{ event, data }`: from an iframe, to the top window; from the container, to `recipient`
   * if given, else to every iframe of the enumerator. `data` must survive `postMessage`'s
   * structured clone (plain data does).
   */
  send(event: string, data?: unknown, recipient?: { postMessage(message: unknown, targetOrigin: string): void }): void {
    const w = this.#window();
    if (w === undefined) return;
    const message = { event, data };
    if (this.isInIframe) w.top!.postMessage(message, "*");
    else if (recipient) recipient.postMessage(message, "*");
    else for (const frame of this.#enumerator?.() ?? []) frame.contentWindow?.postMessage(message, "*");
  }

  /** From an iframe: sends `pointerPosition` ({ x, y, type }) to the container on every pointer move. */
  startPublishingPointerMove(): void {
    const doc = this.#window()?.document;
    if (this.#pointerMove !== undefined || !doc) return;
    this.#pointerMove = (e) => this.send("pointerPosition", { x: e.clientX, y: e.clientY, type: e.type });
    doc.addEventListener("pointermove", this.#pointerMove, true);
  }

  stopPublishingPointerMove(): void {
    if (this.#pointerMove === undefined) return;
    this.#window()?.document?.removeEventListener("pointermove", this.#pointerMove, true);
    this.#pointerMove = undefined;
  }

  /** Stops listening and forgets the receiver, every handler and the enumerator. */
  detach(): void {
    if (this.#listener !== undefined) this.#window()?.removeEventListener?.("message", this.#listener);
    this.#listener = undefined;
    this.stopPublishingPointerMove();
    this.#receiver = undefined;
    this.#handlers.clear();
    this.#enumerator = undefined;
  }

  #resolve(handler: MessengerHandler, api: string): (data: any, source: MessengerSource) => void {
    const receiver = this.#receiver;
    if (receiver === undefined) throw new UsageError(`Messenger.${api}: call Messenger.setReceiver(view) first`);
    const fn = typeof handler === "string" ? (receiver as Record<string, unknown>)[handler] : handler;
    if (typeof fn !== "function") throw new UsageError(`Messenger.${api}: the handler must be a function or the name of a method of the receiver, got ${JSON.stringify(handler)}`);
    return fn as (data: any, source: MessengerSource) => void;
  }

  #receive(msg: { data: unknown; source: unknown }): void {
    const payload = msg.data;
    if (typeof payload !== "object" || payload === null || typeof (payload as { event?: unknown }).event !== "string") return; // not one of ours
    const { event, data } = payload as { event: string; data: unknown };
    for (const handler of [...(this.#handlers.get(event) ?? [])]) {
      try {
        handler.call(this.#receiver, data, msg.source);
      } catch (error) {
        console.error(`[Lockstep] Messenger handler for "${event}" failed:`, error);
      }
    }
  }
}

/** The page's Messenger (Croquet's `Messenger` singleton). */
export const Messenger = new LockstepMessenger();
