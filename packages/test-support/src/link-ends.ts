/**
 * The two ends of an in-memory link (see link.ts): a client end that behaves like a browser
 * WebSocket for the client library, a server end that is a PeerSocket for the reflector core, and
 * one ordered, asynchronous pipe per direction carrying frames and the WebSocket control messages.
 */
import type { SocketLike } from "@lockstep/client";
import type { PeerSocket, PeerSocketListener, ReflectorCore } from "@lockstep/reflector";
import type { ManualClock } from "./manual-clock";

/** Where an end of a link is: the WebSocket `readyState` values. */
export type LinkState = "connecting" | "open" | "closing" | "closed";

/** One in-memory connection: a client end (a SocketLike) and a server end (a PeerSocket) handed to the core. */
export interface MemoryLink {
  readonly id: number;
  /** The URL the client asked for. */
  readonly url: string;
  readonly address: string;
  /** The client end. */
  readonly client: SocketLike & { readonly bufferedAmount: number };
  readonly clientState: LinkState;
  /** The server end (`"closed"` also when the core refused the connection). */
  readonly serverState: LinkState;
  /** Whether frames are held (both directions) until {@link resume}. */
  readonly paused: boolean;
  /** Whether the link silently loses everything from now on. */
  readonly blackholed: boolean;
  /** Holds frames in both directions (nothing is lost, nothing closes). */
  pause(): void;
  /** Holds frames to the client only: what the client sends still arrives (its relays do not come back yet). */
  pauseToClient(): void;
  /** Delivers what was held, and lets frames flow again. */
  resume(): void;
  /** A silent dead connection: every frame, ping and close from now on is lost, and neither end is told. */
  blackhole(): void;
  /** A lost connection: both ends see a close with `code` (default 1006) at once; queued frames are lost. */
  drop(code?: number): void;
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
const ABNORMAL = 1006;
const NO_STATUS = 1005;
const STATES: readonly LinkState[] = ["connecting", "open", "closing", "closed"];

/** What travels through a pipe: frames, and the control messages of the WebSocket protocol and TCP. */
type Item =
  | { readonly kind: "frame"; readonly bytes: Uint8Array; readonly binary: boolean }
  | { readonly kind: "ping" | "pong" }
  | { readonly kind: "close"; readonly code: number; readonly reason: string }
  /** The connection ended (after a closing handshake, or cut off): the receiver's close event. */
  | { readonly kind: "end"; readonly code: number; readonly reason: string };

// Captured at load: jest's fake timers may replace the global later.
export const realSetImmediate = globalThis.setImmediate;

const PING: Item = Object.freeze({ kind: "ping" });
const PONG: Item = Object.freeze({ kind: "pong" });
const encoder = new TextEncoder();

/** One direction of a link: in order, delivered asynchronously (a microtask), bytes counted until delivered. */
class Pipe {
  #items: (Item | undefined)[] = [];
  #head = 0;
  #scheduled = false;
  /** Bytes of frames pushed and not delivered (lost ones included, once blackholed). */
  bytes = 0;
  /** Held by the link's pause(). */
  held = false;
  /** The receiver stopped reading (the server end's pause()). */
  stopped = false;
  /** The receiver is not open yet. */
  waiting = false;
  /** Blackholed: pushes are lost. */
  dead = false;
  readonly #deliver: (item: Item) => void;
  readonly #clock: ManualClock;
  readonly #flush = (): void => this.#run();

  constructor(clock: ManualClock, deliver: (item: Item) => void) {
    this.#clock = clock;
    this.#deliver = deliver;
  }

  push(item: Item): void {
    if (item.kind === "frame") this.bytes += item.bytes.length;
    if (this.dead) return;
    this.#items.push(item);
    this.kick();
  }

  /** Drops everything queued (a cut-off connection). */
  clear(): void {
    if (!this.dead) this.bytes = 0;
    this.#items = [];
    this.#head = 0;
  }

  kick(): void {
    if (this.#scheduled || this.held || this.stopped || this.waiting || this.#head >= this.#items.length) return;
    this.#scheduled = true;
    this.#clock.noteActivity();
    queueMicrotask(this.#flush);
  }

  #run(): void {
    this.#scheduled = false;
    try {
      while (!this.held && !this.stopped && !this.waiting && !this.dead && this.#head < this.#items.length) {
        const item = this.#items[this.#head]!;
        this.#items[this.#head++] = undefined;
        if (item.kind === "frame") this.bytes -= item.bytes.length;
        this.#clock.noteActivity();
        this.#deliver(item);
      }
    } finally {
      // A handler that threw leaves the rest queued; it goes on in the next microtask.
      if (this.#head >= this.#items.length) {
        this.#items = [];
        this.#head = 0;
      } else {
        this.kick();
      }
    }
  }
}

/** The two ends of one in-memory connection. */
export class Link implements MemoryLink {
  readonly id: number;
  readonly url: string;
  readonly address: string;
  readonly client: ClientEnd;
  readonly #server: ServerEnd;
  readonly #toClient: Pipe;
  readonly #toServer: Pipe;
  readonly #clock: ManualClock;
  readonly #core: ReflectorCore;
  readonly #forget: () => void;
  #paused = false;
  #blackholed = false;

  constructor(id: number, url: string, address: string, clock: ManualClock, core: ReflectorCore, forget: () => void) {
    this.id = id;
    this.url = url;
    this.address = address;
    this.#clock = clock;
    this.#core = core;
    this.#forget = forget;
    this.client = new ClientEnd(this);
    this.#server = new ServerEnd(this);
    this.#toClient = new Pipe(clock, (item) => this.client.receive(item));
    this.#toServer = new Pipe(clock, (item) => this.#server.receive(item));
    this.#toClient.waiting = true;
  }

  get clientState(): LinkState {
    return STATES[this.client.readyState]!;
  }

  get serverState(): LinkState {
    return STATES[this.#server.state]!;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get blackholed(): boolean {
    return this.#blackholed;
  }

  /** The upgrade: the core admits (or refuses) and accepts now; the client's open event follows in a later turn. */
  connect(): void {
    const admission = this.#core.admit(this.address);
    if (!admission.ok) {
      this.#server.state = CLOSED;
      this.#later(() => this.client.refused(`HTTP ${admission.status}: ${admission.reason}`));
      return;
    }
    this.#server.state = OPEN;
    this.#core.accept(this.#server, { address: this.address, remote: `memory:${this.id}` });
    this.#later(() => {
      if (this.client.readyState !== CONNECTING) return;
      this.client.opened();
      this.#toClient.waiting = false;
      this.#toClient.kick();
    });
  }

  /** Runs `fn` in a later turn of the event loop (where a socket's open event comes from). */
  #later(fn: () => void): void {
    this.#clock.noteActivity();
    realSetImmediate(() => {
      this.#clock.noteActivity();
      fn();
    });
  }

  toClient(item: Item): void {
    this.#toClient.push(item);
  }

  toServer(item: Item): void {
    this.#toServer.push(item);
  }

  get toClientBytes(): number {
    return this.#toClient.bytes;
  }

  get toServerBytes(): number {
    return this.#toServer.bytes;
  }

  /** The server end stops reading (a flooder). */
  stopReading(): void {
    this.#toServer.stopped = true;
  }

  /** The server end was destroyed: queued frames to the client are lost; the client sees 1006 (unless the link is dead). */
  serverTerminated(): void {
    this.#toClient.clear();
    this.#toClient.waiting = false;
    this.#toServer.clear();
    if (this.client.readyState === CONNECTING) this.client.readyState = CLOSING;
    this.#toClient.push({ kind: "end", code: ABNORMAL, reason: "" });
  }

  /** The client gave up while connecting, or a dropped link: the server end learns at once. */
  clientAborted(code: number): void {
    this.#toServer.clear();
    this.#server.ended(code);
  }

  pause(): void {
    this.#paused = true;
    this.#toClient.held = this.#toServer.held = true;
  }

  pauseToClient(): void {
    this.#toClient.held = true;
  }

  resume(): void {
    this.#paused = false;
    this.#toClient.held = this.#toServer.held = false;
    this.#toClient.kick();
    this.#toServer.kick();
  }

  blackhole(): void {
    this.#blackholed = true;
    for (const pipe of [this.#toClient, this.#toServer]) {
      pipe.dead = true;
      pipe.clear();
    }
  }

  drop(code = ABNORMAL): void {
    this.#toClient.clear();
    this.#toServer.clear();
    this.#toClient.dead = this.#toServer.dead = true;
    if (this.#server.state !== CLOSED) this.#server.ended(code);
    if (this.client.readyState !== CLOSED) {
      this.client.readyState = CLOSED;
      queueMicrotask(() => this.client.closed(code, ""));
      this.#clock.noteActivity();
    }
    this.ended();
  }

  /** Forgets the link once both ends are closed. */
  ended(): void {
    if (this.client.readyState === CLOSED && this.#server.state === CLOSED) this.#forget();
  }
}

/** The client end: what a browser WebSocket or `ws` client would do, for the client library. */
class ClientEnd implements SocketLike {
  readonly CONNECTING = CONNECTING;
  readonly OPEN = OPEN;
  readonly CLOSING = CLOSING;
  readonly CLOSED = CLOSED;
  binaryType = "arraybuffer";
  readyState = CONNECTING;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly #link: Link;

  constructor(link: Link) {
    this.#link = link;
  }

  get url(): string {
    return this.#link.url;
  }

  get bufferedAmount(): number {
    return this.#link.toServerBytes;
  }

  /** Sends a frame (copied). A string goes as a text frame. */
  send(data: Uint8Array | ArrayBuffer | string): void {
    if (this.readyState === CONNECTING) throw new Error("InvalidStateError: the socket is still connecting");
    if (this.readyState !== OPEN) return;
    const bytes = typeof data === "string" ? encoder.encode(data) : data instanceof ArrayBuffer ? new Uint8Array(data.slice(0)) : new Uint8Array(data);
    this.#link.toServer({ kind: "frame", bytes, binary: typeof data !== "string" });
  }

  close(code?: number, reason = ""): void {
    if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
      throw new Error(`InvalidAccessError: close code ${code} is neither 1000 nor in 3000..4999`);
    }
    if (this.readyState === CLOSING || this.readyState === CLOSED) return;
    if (this.readyState === CONNECTING) {
      // Gave up before the open: the server end is cut off, the client sees 1006.
      this.readyState = CLOSED;
      this.#link.clientAborted(ABNORMAL);
      queueMicrotask(() => this.closed(ABNORMAL, ""));
      return;
    }
    this.readyState = CLOSING;
    this.#link.toServer({ kind: "close", code: code ?? NO_STATUS, reason });
  }

  opened(): void {
    this.readyState = OPEN;
    this.onopen?.({ type: "open" });
  }

  refused(message: string): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.onerror?.({ type: "error", message });
    this.onclose?.({ code: ABNORMAL, reason: message, wasClean: false } as { code: number; reason: string });
    this.#link.ended();
  }

  closed(code: number, reason: string): void {
    this.readyState = CLOSED;
    this.onclose?.({ code, reason, wasClean: code !== ABNORMAL } as { code: number; reason: string });
    this.#link.ended();
  }

  receive(item: Item): void {
    if (this.readyState === CLOSED) return;
    switch (item.kind) {
      case "frame":
        this.onmessage?.({ data: item.binary ? this.#wrap(item.bytes) : new TextDecoder().decode(item.bytes) });
        break;
      case "ping":
        this.#link.toServer(PONG);
        break;
      case "close":
        // The server's close frame: answer it; the close event comes once the server ends the connection.
        if (this.readyState === OPEN) {
          this.readyState = CLOSING;
          this.#link.toServer({ kind: "close", code: item.code, reason: item.reason });
        }
        break;
      case "end":
        this.closed(item.code, item.reason);
        break;
      default:
        break;
    }
  }

  #wrap(bytes: Uint8Array): unknown {
    if (this.binaryType === "arraybuffer") return bytes.buffer;
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}

/** The server end, as the core sees it. */
class ServerEnd implements PeerSocket {
  state = CONNECTING;
  readonly #link: Link;
  #listener: PeerSocketListener | undefined;
  #watcher: ((bytes: number) => void) | undefined;
  /** The code and reason of the close frame this end sent. */
  #sent: { code: number; reason: string } | undefined;

  constructor(link: Link) {
    this.#link = link;
  }

  get isOpen(): boolean {
    return this.state === OPEN;
  }

  get bufferedAmount(): number {
    return this.#link.toClientBytes;
  }

  send(frame: Uint8Array): void {
    if (this.state !== OPEN) return;
    this.#link.toClient({ kind: "frame", bytes: frame.slice(), binary: true });
  }

  close(code: number, reason: string): void {
    if (this.state !== OPEN) return;
    this.state = CLOSING;
    this.#sent = { code, reason };
    this.#link.toClient({ kind: "close", code, reason });
  }

  terminate(): void {
    if (this.state === CLOSED) return;
    this.#link.serverTerminated();
    this.ended(ABNORMAL);
  }

  ping(): void {
    if (this.state === OPEN) this.#link.toClient(PING);
  }

  listen(listener: PeerSocketListener): void {
    this.#listener = listener;
  }

  pause(): void {
    this.#link.stopReading();
  }

  watchIncoming(onBytes: (bytes: number) => void): () => void {
    this.#watcher = onBytes;
    return () => {
      if (this.#watcher === onBytes) this.#watcher = undefined;
    };
  }

  /** The connection ended: the core's close event, in a microtask (never inside the core's own call). */
  ended(code: number): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    queueMicrotask(() => {
      this.#listener?.close(code);
      this.#link.ended();
    });
  }

  receive(item: Item): void {
    if (this.state === CLOSED) return;
    switch (item.kind) {
      case "frame": {
        // WebSocket framing: 2 header bytes, a 4-byte mask, and the extended length.
        const length = item.bytes.length;
        this.#watcher?.(length + (length < 126 ? 6 : length < 65536 ? 8 : 14));
        if (this.state === CLOSED) return;
        this.#listener?.message(item.bytes, item.binary);
        break;
      }
      case "pong":
        this.#listener?.pong();
        break;
      case "close": {
        // The client's close frame: either it started the handshake (answered with the same
        // code) or it answers ours. Either way the connection ends here.
        const reply = this.#sent ?? { code: item.code, reason: item.reason };
        if (this.#sent === undefined) this.#link.toClient({ kind: "close", code: item.code, reason: item.reason });
        this.#link.toClient({ kind: "end", code: reply.code, reason: reply.reason });
        this.ended(item.code);
        break;
      }
      default:
        break;
    }
  }
}
