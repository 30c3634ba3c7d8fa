/**
 * A scripted reflector for controller tests: a tiny {@link SocketLike} that records what the
 * client sends (decoded) and lets the test deliver server frames, malformed bytes and closes with
 * chosen codes, at exactly the moment it wants. Nothing happens unless the test says so (but
 * opening, which {@link FakeReflector} does in a later turn of the event loop unless told not to).
 */
import {
  MessageType,
  decodeClientMessage,
  decodeJoinAuth,
  encodeServerMessage,
  type ClientMessage,
  type JoinMessage,
  type ServerMessage,
  type StreamEntry,
  type SyncMessage,
} from "@lockstep/protocol";
import type { ManualClock } from "@lockstep/test-support";
import type { SocketFactory, SocketLike } from "../src/session/connection";

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

export class FakeSocket implements SocketLike {
  binaryType = "blob";
  readyState = CONNECTING;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  /** Every frame the client sent, decoded, in order. */
  readonly sent: ClientMessage[] = [];
  /** Every `close(code, reason)` the client called. */
  readonly closeCalls: { code: number | undefined; reason: string | undefined }[] = [];

  constructor(readonly url: string) {}

  send(data: Uint8Array): void {
    if (this.readyState === CONNECTING) throw new Error("InvalidStateError: the socket is still connecting");
    if (this.readyState !== OPEN) return;
    this.sent.push(decodeClientMessage(data));
  }

  close(code?: number, reason?: string): void {
    this.closeCalls.push({ code, reason });
    if (this.readyState === CONNECTING || this.readyState === OPEN) this.readyState = CLOSING;
  }

  /** The client's Join on this socket. */
  get join(): JoinMessage {
    const join = this.sent.find((m): m is JoinMessage => m.type === MessageType.Join);
    if (!join) throw new Error("no Join was sent on this socket");
    return join;
  }

  /** Sent frames of one type. */
  sentOf<T extends ClientMessage["type"]>(type: T): Extract<ClientMessage, { type: T }>[] {
    return this.sent.filter((m): m is Extract<ClientMessage, { type: T }> => m.type === type);
  }

  /** The connection opens. */
  open(): void {
    if (this.readyState !== CONNECTING) throw new Error(`open() on a socket in readyState ${this.readyState}`);
    this.readyState = OPEN;
    this.onopen?.({});
  }

  /** The server sends a frame. */
  deliver(msg: ServerMessage): void {
    this.deliverBytes(encodeServerMessage(msg));
  }

  /** The server sends raw bytes (a binary frame). */
  deliverBytes(bytes: Uint8Array): void {
    if (this.readyState !== OPEN && this.readyState !== CLOSING) throw new Error(`deliver on a socket in readyState ${this.readyState}`);
    this.onmessage?.({ data: bytes.slice().buffer });
  }

  /** The connection ends (the server closed it, it was cut off, or it never opened) with `code`. */
  closed(code: number, reason = ""): void {
    if (this.readyState === CLOSED) throw new Error("the socket is closed already");
    this.readyState = CLOSED;
    this.onclose?.({ code, reason });
  }

  /** The closing handshake the client started completes: its close event, with the client's code. */
  finishClose(): void {
    const last = this.closeCalls.at(-1);
    if (!last) throw new Error("the client did not close this socket");
    this.closed(last.code ?? 1005, last.reason ?? "");
  }
}

/** What a new socket does by itself: open in a later turn, fail to open (close 1006 first), or wait for the test. */
export type OpenMode = "open" | "refuse" | "manual";

/** A socket factory making {@link FakeSocket}s, and what a scripted reflector answers on them. */
export class FakeReflector {
  readonly sockets: FakeSocket[] = [];
  /** What the next sockets do; `throw` makes the factory itself fail (no socket at all). */
  mode: OpenMode | "throw" = "open";
  /** Factory calls (including ones that threw). */
  calls = 0;

  /** @param clock told of each socket's open or refusal, so its `settle()` waits for them. */
  constructor(readonly clock?: ManualClock) {}

  readonly factory: SocketFactory = (url) => {
    this.calls++;
    if (this.mode === "throw") throw new Error("ECONNREFUSED (fake)");
    const socket = new FakeSocket(url);
    this.sockets.push(socket);
    const mode = this.mode;
    if (mode !== "manual") {
      this.clock?.noteActivity();
      setImmediate(() => {
        this.clock?.noteActivity();
        if (socket.readyState !== CONNECTING) return;
        if (mode === "open") socket.open();
        else socket.closed(1006);
      });
    }
    return socket;
  };

  /** The latest socket. */
  get last(): FakeSocket {
    const s = this.sockets.at(-1);
    if (!s) throw new Error("no socket was made");
    return s;
  }
}

/**
 * The Sync that answers a Join as the real reflector would: this session and view, the check
 * envelope the first joiner registered (here: the one this Join carries), and `entries` up to `seq`.
 */
export function syncFor(join: JoinMessage, over: Partial<Omit<SyncMessage, "type">> = {}): SyncMessage {
  const entries = over.entries ?? [];
  return {
    type: MessageType.Sync,
    sessionId: join.sessionId,
    viewId: join.viewId,
    time: 1000,
    seq: entries.at(-1)?.seq ?? 0,
    snapshot: new Uint8Array(0),
    persisted: new Uint8Array(0),
    auth: decodeJoinAuth(join.auth).check,
    ...over,
    entries,
  };
}

/** A view-join entry. */
export function viewJoin(seq: number, viewId: string, time = 1000): StreamEntry {
  return { type: MessageType.ViewJoin, seq, time, viewId, viewData: new Uint8Array(0) };
}
