import {
  DEFAULT_TPS,
  MessageType,
  PersistOutcome,
  decodeClientMessage,
  decodeJoinAuth,
  encodeServerMessage,
  every,
  type ClientMessage,
  type JoinMessage,
  type ServerMessage,
  type StreamEntry,
  type SyncMessage,
  type Timers,
} from "@lockstep/protocol";
import type { SocketFactory, SocketLike } from "./connection";

/** The `reflector` a session joined with `debug: "offline"` reports: it reaches no server. */
export const OFFLINE_REFLECTOR_URL = "offline:";

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** Hands `fn` to a later task, as a socket hands over its events (never within the call that caused them). */
function later(fn: () => void): void {
  const g = globalThis as { setImmediate?: (fn: () => void) => unknown };
  if (g.setImmediate) g.setImmediate(fn);
  else globalThis.setTimeout(fn, 0);
}

/** An upload reassembled from chunks, until its last chunk arrives. */
interface PartialUpload {
  readonly slot: string;
  readonly seq: number;
  readonly total: number;
  readonly parts: Uint8Array[];
  received: number;
}

/**
 * `debug: "offline"`: the reflector of a single-member session, in this page. It orders and
 * time-stamps what the client sends, ticks while idle, answers pings, and keeps persisted data
 * and the stream in memory (so a rejoin, after the page slept, resumes or replays it). It asks for
 * no snapshots: with one replica there is nobody to vote with or to join late. Everything it holds
 * goes with the page; nothing is encrypted differently, the client seals as always.
 */
class OfflineSession {
  readonly #timers: Timers;
  /** When the first Join came (the session's time 0), as the reflector starts a session's clock when it creates it. */
  #start: number | undefined;
  #lastTime = 0;
  #seq = 0;
  readonly #log: StreamEntry[] = [];
  /** The password check envelope the first Join registered (returned in every Sync). */
  #check: Uint8Array | undefined;
  /** Views joined and not exited, with the socket each is on (undefined: disconnected, may resume). */
  readonly #views = new Map<string, OfflineSocket | undefined>();
  readonly #slots = new Map<string, Uint8Array>();
  readonly #partial = new Map<string, PartialUpload>();
  #stopTicks: (() => void) | undefined;

  constructor(timers: Timers) {
    this.#timers = timers;
  }

  /** Session time in whole ms; it never decreases. */
  #time(): number {
    this.#start ??= this.#timers.now();
    this.#lastTime = Math.max(this.#lastTime, Math.floor(this.#timers.now() - this.#start));
    return this.#lastTime;
  }

  handle(socket: OfflineSocket, msg: ClientMessage): void {
    switch (msg.type) {
      case MessageType.Join:
        this.#join(socket, msg);
        return;
      case MessageType.Send:
        this.#relay(msg.payload);
        return;
      case MessageType.SendBatch:
        for (const payload of msg.payloads) this.#relay(payload);
        return;
      case MessageType.Leave:
        if (socket.viewId !== undefined) this.#exit(socket.viewId);
        return;
      case MessageType.Ping:
        socket.deliver({ type: MessageType.Pong, id: msg.id, time: this.#time() });
        return;
      case MessageType.PersistUpload:
        this.#stored(socket, msg.slot, msg.seq, msg.size, msg.hash, msg.blob);
        return;
      case MessageType.PersistChunk:
        this.#chunk(socket, msg);
        return;
      case MessageType.PersistLoad:
        this.#append({ type: MessageType.PersistData, seq: 0, time: 0, slot: msg.slot, requestSeq: msg.requestSeq, blob: this.#slots.get(msg.slot) ?? new Uint8Array(0) });
        return;
      // No snapshot is ever requested: votes and uploads cannot come.
      case MessageType.SnapshotVote:
      case MessageType.SnapshotUpload:
      case MessageType.SnapshotChunk:
        return;
    }
  }

  #join(socket: OfflineSocket, join: JoinMessage): void {
    this.#check ??= decodeJoinAuth(join.auth).check;
    const { viewId } = join;
    socket.viewId = viewId;
    const resumeSeq = join.resumeSeq ?? 0;
    const known = this.#views.has(viewId);
    if (known && resumeSeq > 0 && resumeSeq <= this.#seq) {
      // The view's replica applied everything up to resumeSeq: it continues from there.
      this.#views.set(viewId, socket);
      const entries = this.#log.filter((e) => e.seq > resumeSeq);
      socket.deliver({ ...this.#sync(join), entries, resumed: true });
    } else {
      // A view that comes back without resuming left first (as a reflector's grace period ends).
      if (known) this.#exit(viewId);
      socket.deliver({ ...this.#sync(join), entries: this.#log.slice() });
      this.#views.set(viewId, socket);
      this.#append({ type: MessageType.ViewJoin, seq: 0, time: 0, viewId, viewData: join.viewData });
    }
    this.#stopTicks ??= every(this.#timers, Math.max(1, Math.round(1000 / (join.tps > 0 ? join.tps : DEFAULT_TPS))), () => this.#tick(), { unref: true });
  }

  /** A Sync answering `join` (its session and view), but for the entries. */
  #sync(join: JoinMessage): Omit<SyncMessage, "entries"> {
    const empty = new Uint8Array(0);
    const { sessionId, viewId } = join;
    return { type: MessageType.Sync, sessionId, viewId, time: this.#time(), seq: this.#seq, snapshot: empty, persisted: empty, auth: this.#check ?? empty };
  }

  #relay(payload: Uint8Array): void {
    this.#append({ type: MessageType.Relay, seq: 0, time: 0, payload: new Uint8Array(payload) });
  }

  #exit(viewId: string): void {
    if (!this.#views.delete(viewId)) return;
    this.#append({ type: MessageType.ViewExit, seq: 0, time: 0, viewId });
    if (this.#views.size === 0) {
      this.#stopTicks?.();
      this.#stopTicks = undefined;
    }
  }

  /** Stamps an entry with the next seq and the time now, keeps it, and sends it to every connected view. */
  #append(unstamped: StreamEntry): void {
    const entry = { ...unstamped, seq: ++this.#seq, time: this.#time() } as StreamEntry;
    this.#log.push(entry);
    for (const socket of this.#views.values()) socket?.deliver(entry);
  }

  #tick(): void {
    const time = this.#time();
    for (const socket of this.#views.values()) socket?.deliver({ type: MessageType.Tick, time });
  }

  #chunk(socket: OfflineSocket, msg: Extract<ClientMessage, { type: typeof MessageType.PersistChunk }>): void {
    const key = `${msg.slot}/${msg.seq}`;
    let upload = this.#partial.get(key);
    if (msg.offset === 0 || !upload) {
      upload = { slot: msg.slot, seq: msg.seq, total: msg.total, parts: [], received: 0 };
      this.#partial.set(key, upload);
    }
    upload.parts.push(new Uint8Array(msg.data));
    upload.received += msg.data.length;
    if (upload.received < upload.total) return;
    this.#partial.delete(key);
    const blob = new Uint8Array(upload.total);
    let at = 0;
    for (const part of upload.parts) {
      blob.set(part, at);
      at += part.length;
    }
    this.#stored(socket, msg.slot, msg.seq, msg.size, msg.hash, blob);
  }

  /** Persisted data is "durable" here for as long as the page lives: acknowledged at once, and in the stream. */
  #stored(socket: OfflineSocket, slot: string, seq: number, size: number, hash: Uint8Array, blob: Uint8Array): void {
    this.#slots.set(slot, new Uint8Array(blob));
    socket.deliver({ type: MessageType.PersistAck, slot, seq, outcome: PersistOutcome.Stored, version: 1, message: "" });
    this.#append({ type: MessageType.Persisted, seq: 0, time: 0, slot, upTo: seq, size, hash: new Uint8Array(hash) });
  }

  /** The socket closed without a Leave: the view may resume (until it comes back fresh, or the session has none left). */
  disconnected(socket: OfflineSocket): void {
    const viewId = socket.viewId;
    if (viewId !== undefined && this.#views.get(viewId) === socket) this.#views.set(viewId, undefined);
  }
}

/** The client's end of a connection to an {@link OfflineSession}: a WebSocket's interface, frames in memory. */
class OfflineSocket implements SocketLike {
  binaryType = "arraybuffer";
  readyState = CONNECTING;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  /** The view this socket joined as, once it sent its Join. */
  viewId: string | undefined;
  readonly #session: OfflineSession;

  constructor(session: OfflineSession) {
    this.#session = session;
    later(() => {
      if (this.readyState !== CONNECTING) return;
      this.readyState = OPEN;
      this.onopen?.({});
    });
  }

  send(data: Uint8Array): void {
    if (this.readyState !== OPEN) return;
    let msg: ClientMessage;
    try {
      msg = decodeClientMessage(data);
    } catch (error) {
      // A reflector closes a client that sends garbage; so does this one (1002: protocol error).
      console.error("[Lockstep] offline: the client sent a malformed frame", error);
      this.close(1002, "malformed frame");
      return;
    }
    this.#session.handle(this, msg);
  }

  /** Sends a server frame to the client, encoded and decoded as over a socket, in a later task. */
  deliver(msg: ServerMessage): void {
    if (this.readyState !== OPEN) return;
    const frame = encodeServerMessage(msg);
    later(() => {
      if (this.readyState === OPEN) this.onmessage?.({ data: frame });
    });
  }

  close(code = 1000, reason = ""): void {
    if (this.readyState === CLOSING || this.readyState === CLOSED) return;
    this.readyState = CLOSING;
    this.#session.disconnected(this);
    later(() => {
      this.readyState = CLOSED;
      this.onclose?.({ code, reason });
    });
  }
}

/**
 * The socket factory of `debug: "offline"`: every socket it makes talks to one in-page reflector
 * stand-in (a session of its own, made with the factory), so a session runs without a server —
 * for demos, and for tests of an app's models and views in one process. Model time follows
 * `timers` (a test's manual clock, or the real one).
 *
 * @example
 * ```ts
 * await Session.join({ appId, name, password, model, view, debug: "offline" });
 * ```
 */
export function offlineSocketFactory(timers: Timers): SocketFactory {
  const session = new OfflineSession(timers);
  return () => new OfflineSocket(session);
}
