/*
 * One WebSocket from a proxying node to the node that owns a session (proxy.ts decides what to do
 * with it). It reports how it ended in one event, whether it never opened (refused, unreachable,
 * timed out) or closed after opening.
 */
import { unrefTimer, type TimerHandle, type Timers } from "@lockstep/protocol";
import { WebSocket, type RawData } from "ws";

/** How an {@link Upstream} ended. */
export type UpstreamEnd =
  /** It opened, then closed with `code` (1006 when the connection was cut). */
  | { readonly kind: "closed"; readonly code: number; readonly reason: string }
  /** It never opened: `status` is the HTTP status of a refused upgrade, if one came back. */
  | { readonly kind: "failed"; readonly detail: string; readonly status: number | undefined };

/** What an {@link Upstream} reports; each call names the upstream, so a listener can ignore earlier hops. */
export interface UpstreamListener {
  opened(upstream: Upstream): void;
  /** One whole message; `data` is not reused by ws (it may be forwarded as is). */
  frame(upstream: Upstream, data: Uint8Array, isBinary: boolean): void;
  /** Reported once, after which the upstream holds no socket or timer. */
  ended(upstream: Upstream, end: UpstreamEnd): void;
}

/** Options of an {@link Upstream}. */
export interface UpstreamOptions {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Largest frame accepted from the owner (ws's `maxPayload`); undefined keeps ws's default. */
  readonly maxPayload: number | undefined;
  /** How long the TCP connect and the upgrade may take, in ms. */
  readonly connectTimeoutMs: number;
  /** How long a closing handshake may take before the socket is cut, in ms. */
  readonly closeGraceMs: number;
  readonly timers: Timers;
}

/** A client WebSocket to the owner node. */
export class Upstream {
  readonly url: string;
  readonly #listener: UpstreamListener;
  readonly #timers: Timers;
  readonly #closeGraceMs: number;
  #ws: WebSocket | undefined;
  #timer: TimerHandle | undefined;
  #opened = false;
  #ended = false;
  #failure: string | undefined;
  #status: number | undefined;

  constructor(options: UpstreamOptions, listener: UpstreamListener) {
    this.url = options.url;
    this.#listener = listener;
    this.#timers = options.timers;
    this.#closeGraceMs = options.closeGraceMs;
    let ws: WebSocket;
    try {
      ws = new WebSocket(options.url, {
        perMessageDeflate: false,
        headers: options.headers,
        followRedirects: false,
        ...(options.maxPayload === undefined ? {} : { maxPayload: options.maxPayload }),
      });
    } catch (error) {
      // A malformed URL throws at once; the listener hears of it asynchronously, as of any failure.
      this.#failure = `cannot connect to ${options.url}: ${error instanceof Error ? error.message : String(error)}`;
      queueMicrotask(() => this.#end(1006, ""));
      return;
    }
    this.#ws = ws;
    ws.binaryType = "nodebuffer";
    ws.on("open", () => {
      this.#clearTimer();
      this.#opened = true;
      listener.opened(this);
    });
    ws.on("message", (data: RawData, isBinary: boolean) => listener.frame(this, data as Buffer, isBinary));
    ws.on("unexpected-response", (_req, res) => {
      this.#status = res.statusCode;
      this.#failure = `${options.url} refused the upgrade with HTTP ${res.statusCode}`;
      ws.terminate();
    });
    ws.on("error", (error: Error) => {
      this.#failure ??= `cannot connect to ${options.url}: ${error.message}`;
    });
    ws.on("close", (code: number, reason: Buffer) => this.#end(code, reason.toString()));
    this.#timer = options.timers.setTimeout(() => {
      this.#timer = undefined;
      if (this.#opened) return;
      this.#failure = `${options.url} did not accept the connection within ${options.connectTimeoutMs} ms`;
      ws.terminate();
    }, options.connectTimeoutMs);
    unrefTimer(this.#timer);
  }

  /** Whether frames can be sent (open, and not closing). */
  get isOpen(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  /** Bytes given to {@link send} not yet handed to the operating system. */
  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /**
   * Sends one binary frame. ws masks it into a frame buffer of its own at once (client frames are
   * masked), so `frame` may be reused as soon as this returns. `written` runs once the frame left
   * for the operating system.
   */
  send(frame: Uint8Array, written?: (error?: Error) => void): void {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return;
    ws.send(frame, written);
  }

  /**
   * Closes with `code` (one a peer may send: 1000, 1001 or 3000–4999); a socket still connecting
   * is abandoned, and one that does not finish the closing handshake promptly is cut off.
   */
  close(code: number, reason: string): void {
    const ws = this.#ws;
    if (ws === undefined || this.#ended) return;
    if (!this.#opened) {
      this.#failure ??= "abandoned before it opened";
      ws.terminate();
      return;
    }
    if (ws.readyState === WebSocket.OPEN) {
      try {
        ws.close(code, reason);
      } catch {
        ws.terminate();
        return;
      }
    }
    if (this.#timer === undefined) {
      this.#timer = this.#timers.setTimeout(() => {
        this.#timer = undefined;
        ws.terminate();
      }, this.#closeGraceMs);
      unrefTimer(this.#timer);
    }
  }

  #end(code: number, reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#clearTimer();
    this.#ws = undefined;
    const end: UpstreamEnd = this.#opened ? { kind: "closed", code, reason } : { kind: "failed", detail: this.#failure ?? `cannot connect to ${this.url} (close ${code})`, status: this.#status };
    this.#listener.ended(this, end);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
