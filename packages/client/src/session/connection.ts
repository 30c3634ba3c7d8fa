import { DEFAULT_LIMITS, MAX_SEND_BATCH, decodeServerMessage, encodeSend, encodeSendBatch, varUintSize, type ServerMessage, type Timers } from "@lockstep/protocol";

/** The part of the WebSocket API the client uses; browsers' WebSocket and the `ws` package both fit. */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** Makes a socket for a URL. Injected through `Session.join({ socket })`; tests pass fakes or proxies. */
export type SocketFactory = (url: string) => SocketLike | Promise<SocketLike>;

/** Largest frame a Node client accepts from the reflector. */
const MAX_INCOMING_BYTES = 1024 * 1024 * 1024;

/** The browser's WebSocket where there is one, otherwise the `ws` package (Node). */
export const defaultSocketFactory: SocketFactory = async (url) => {
  const Native = (globalThis as { WebSocket?: new (url: string) => SocketLike }).WebSocket;
  if (Native) return new Native(url);
  const { WebSocket: NodeWebSocket } = await import("ws");
  // A Sync can carry a snapshot (up to 64 MiB) plus the log since it: more than ws's 100 MiB default.
  const socket = new NodeWebSocket(url, { maxPayload: MAX_INCOMING_BYTES });
  // ws hands its received Buffer over as is ("nodebuffer"; "arraybuffer" costs it a copy of every frame).
  socket.binaryType = "nodebuffer";
  return socket as unknown as SocketLike;
};

/** What a connection reports to its owner. Called from socket events; must not throw. */
export interface ConnectionEvents {
  message(msg: ServerMessage): void;
  /** The frame could not be decoded. */
  malformed(error: unknown): void;
  close(code: number, reason: string): void;
}

const OPEN = 1;
/** Version, type and the largest count's varuint of a SendBatch frame. */
const BATCH_HEADER_BYTES = 2 + 2;

/** One WebSocket to the reflector, speaking decoded protocol frames. */
export class Connection {
  #socket: SocketLike | undefined;
  readonly #events: ConnectionEvents;
  /** Who waits for the current socket to be gone ({@link closeAndWait}). */
  #gone: Array<() => void> = [];
  /** Payloads queued by {@link sendPayload} in this turn, and their bytes on the wire. */
  #bundle: Uint8Array[] = [];
  #bundleBytes = 0;
  #flushScheduled = false;
  /**
   * Asked first whenever the connection sends or flushes: whoever holds payloads of this turn not
   * queued yet ({@link sendPayload}s them now), so that order is kept.
   */
  gather: (() => void) | undefined;
  readonly #flushSoon = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  constructor(events: ConnectionEvents) {
    this.#events = events;
  }

  /**
   * Opens the socket (dropping any previous one silently); rejects if it closes or errors before
   * opening, or has not opened within `timeoutMs` on `timers` (then it is abandoned: a paused
   * reflector accepts the TCP connection but never answers the upgrade).
   */
  async open(url: string, factory: SocketFactory, timers: Timers, timeoutMs: number): Promise<void> {
    this.#drop();
    let giveUp: (() => void) | undefined;
    let expired = false;
    const due = timers.now() + timeoutMs;
    let stalled = false;
    const expire = (): void => {
      // A timer that fires far too late means this thread was stalled (a busy page, a loaded
      // machine): the open event may be queued right behind it. Look again once before giving up.
      if (!stalled && timers.now() - due > STALL_GRACE_MS) {
        stalled = true;
        timer = timers.setTimeout(expire, STALL_GRACE_MS);
        return;
      }
      expired = true;
      giveUp?.();
    };
    let timer = timers.setTimeout(expire, timeoutMs);
    const tooSlow = (): Error => new Error(`the reflector at ${url} did not answer within ${Math.round(timeoutMs / 100) / 10} s`);
    let socket: SocketLike;
    try {
      socket = await new Promise<SocketLike>((resolve, reject) => {
        giveUp = () => reject(tooSlow());
        // A factory that is slow itself (a proxy, a token fetch) is bounded too; what it makes too late is closed.
        let made: SocketLike | Promise<SocketLike>;
        try {
          made = factory(url);
        } catch (error) {
          reject(error);
          return;
        }
        Promise.resolve(made).then((late) => (expired ? closeQuietly(late) : resolve(late)), reject);
      });
      // Binary frames as ArrayBuffers, unless the socket is Node's ws set to hand over its Buffers
      // (defaultSocketFactory). Browsers warn about "nodebuffer", so it is never tried on them.
      if (socket.binaryType !== "nodebuffer") socket.binaryType = "arraybuffer";
      this.#socket = socket;
      const opening = socket;
      await new Promise<void>((resolve, reject) => {
        giveUp = () => {
          if (this.#socket === opening) this.#drop();
          else closeQuietly(opening);
          reject(tooSlow());
        };
        opening.onopen = () => resolve();
        opening.onerror = () => {}; // a close always follows; report there
        opening.onclose = (ev) => reject(new Error(`could not connect to reflector at ${url} (close code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`));
      });
    } finally {
      timers.clearTimeout(timer);
    }
    socket.onmessage = (ev) => {
      let msg: ServerMessage;
      try {
        const data = ev.data;
        const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : undefined;
        if (!bytes) throw new Error("reflector sent a text frame");
        msg = decodeServerMessage(bytes);
      } catch (error) {
        this.#events.malformed(error);
        return;
      }
      this.#events.message(msg);
    };
    socket.onclose = (ev) => {
      this.#socket = undefined;
      this.#events.close(ev.code, ev.reason);
      this.#resolveGone();
    };
  }

  get isOpen(): boolean {
    return this.#socket?.readyState === OPEN;
  }

  /** Sends a frame (after the payloads queued so far: order is kept); returns false if the socket is not open. */
  send(frame: Uint8Array): boolean {
    this.#flush();
    const socket = this.#socket;
    if (!socket || socket.readyState !== OPEN) return false;
    socket.send(frame);
    return true;
  }

  /**
   * Queues a message payload: the payloads queued within one turn of the event loop go out together
   * at its end, in order, in one `SendBatch` frame (a `Send` for one), so a burst of publishes costs
   * the reflector's frame rate one frame, not one per publish. Dropped if the socket is not open (or
   * closes first): the publisher still holds it as unconfirmed and sends it again.
   */
  sendPayload(payload: Uint8Array): void {
    if (!this.isOpen) return;
    const bytes = varUintSize(payload.length) + payload.length;
    if (this.#bundle.length === MAX_SEND_BATCH || BATCH_HEADER_BYTES + this.#bundleBytes + bytes > DEFAULT_LIMITS.maxFrameBytes) this.#send();
    this.#bundle.push(payload);
    this.#bundleBytes += bytes;
    this.wake();
  }

  /** Flushes at the end of this turn: {@link gather} is asked for payloads then. */
  wake(): void {
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flushSoon);
    }
  }

  #flush(): void {
    this.gather?.();
    this.#send();
  }

  /** Sends the payloads queued so far, in one frame. */
  #send(): void {
    const bundle = this.#bundle;
    if (bundle.length === 0) return;
    this.#bundle = [];
    this.#bundleBytes = 0;
    const socket = this.#socket;
    if (!socket || socket.readyState !== OPEN) return;
    socket.send(bundle.length === 1 ? encodeSend(bundle[0]!) : encodeSendBatch(bundle));
  }

  /**
   * Gives up on the socket now: it no longer reports anything, and `close` is reported at once
   * with `code` (a dead connection may take minutes to deliver its own close event).
   */
  abandon(code: number, reason: string): void {
    if (!this.#drop()) return;
    this.#events.close(code, reason);
    this.#resolveGone();
  }

  /**
   * Closes the socket and resolves once it is closed, or once `graceMs` passed on `timers`: a dead
   * connection may never finish its closing handshake, and is then abandoned.
   */
  closeAndWait(code: number, reason: string, timers: Timers, graceMs: number): Promise<void> {
    // Not open (none, or still opening: whoever opens it sees why it is no longer wanted).
    if (!this.isOpen) return Promise.resolve();
    const gone = new Promise<void>((resolve) => this.#gone.push(resolve));
    const giveUp = timers.setTimeout(() => this.abandon(code, reason), graceMs);
    this.close(code, reason);
    return gone.finally(() => timers.clearTimeout(giveUp));
  }

  #resolveGone(): void {
    const gone = this.#gone;
    this.#gone = [];
    for (const resolve of gone) resolve();
  }

  /** Detaches and closes the current socket without reporting it; false if there was none. */
  #drop(): boolean {
    const socket = this.#socket;
    this.#bundle = [];
    this.#bundleBytes = 0;
    if (!socket) return false;
    this.#socket = undefined;
    closeQuietly(socket);
    return true;
  }

  close(code = 1000, reason = ""): void {
    this.#flush();
    const socket = this.#socket;
    if (!socket) return;
    try {
      socket.close(code, reason);
    } catch {
      // already closing
    }
  }
}

/** How late a timer must fire to count as a stalled thread rather than a slow peer, in ms (also the second look's delay). */
const STALL_GRACE_MS = 1000;

/**
 * Detaches `socket` and closes it. It keeps a no-op error handler: closing a `ws` socket that is
 * still connecting emits an error event, which would throw with no listener.
 */
function closeQuietly(socket: SocketLike): void {
  socket.onopen = socket.onmessage = null;
  socket.onclose = null;
  socket.onerror = () => {};
  try {
    socket.close(1000, "abandoned");
  } catch {
    // already closing
  }
}
