import { MessageType, decodeClientMessage, decodeServerMessage, type ClientMessage, type ServerMessage } from "@lockstep/protocol";
import type { DebugLog } from "../kernel/debug-log";
import { formatBytes } from "./chunks";
import type { SocketFactory, SocketLike } from "./connection";

const typeNames = new Map<number, string>(Object.entries(MessageType).map(([name, code]) => [code, name]));

function typeName(type: number): string {
  return typeNames.get(type) ?? `0x${type.toString(16)}`;
}

function bytesOf(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

/** debug=messages and ticks: one line for what a frame from the reflector is (its payloads stay encrypted here; the replica logs them opened). */
function logIncoming(debug: DebugLog, msg: ServerMessage, size: number): void {
  switch (msg.type) {
    case MessageType.Tick:
      if (debug.ticks) debug.log(`tick t=${msg.time}`);
      return;
    case MessageType.Relay:
      return; // logged decrypted when the replica applies it
    case MessageType.Sync:
      if (debug.messages) {
        const from = msg.snapshot.length > 0 ? `a ${formatBytes(msg.snapshot.length)} snapshot and ` : "";
        debug.log(`received Sync (${formatBytes(size)}): session at #${msg.seq}, t=${msg.time}, ${from}${msg.entries.length} entries${msg.resumed ? ", resuming this view" : ""}`);
      }
      return;
    case MessageType.ViewJoin:
    case MessageType.ViewExit:
      if (debug.messages) debug.log(`received #${msg.seq} (t=${msg.time}): ${typeName(msg.type)} of view ${msg.viewId}`);
      return;
    default:
      if (debug.messages) debug.log(`received ${"seq" in msg ? `#${msg.seq} ` : ""}${typeName(msg.type)} (${formatBytes(size)})`);
  }
}

/** debug=sends: the frames this client sends (encrypted payloads: the realm logged what they carry before sealing). */
function logOutgoing(debug: DebugLog, msg: ClientMessage, size: number): void {
  if (msg.type === MessageType.SendBatch) debug.log(`sent ${msg.payloads.length} payloads in one frame (${formatBytes(size)})`);
  else if (msg.type === MessageType.Join) debug.log(`sent Join as view ${msg.viewId}${msg.resumeSeq ? `, resuming after #${msg.resumeSeq}` : ""}`);
  else debug.log(`sent ${typeName(msg.type)} (${formatBytes(size)})`);
}

/** A socket that logs the frames through it, for the debug flags that want the wire's view. */
class TracedSocket implements SocketLike {
  readonly #inner: SocketLike;
  readonly #debug: DebugLog;
  readonly #url: string;

  constructor(inner: SocketLike, debug: DebugLog, url: string) {
    this.#inner = inner;
    this.#debug = debug;
    this.#url = url;
  }

  get binaryType(): string {
    return this.#inner.binaryType;
  }
  set binaryType(value: string) {
    this.#inner.binaryType = value;
  }
  get readyState(): number {
    return this.#inner.readyState;
  }

  send(data: Uint8Array): void {
    if (this.#debug.sends) {
      try {
        logOutgoing(this.#debug, decodeClientMessage(data), data.length);
      } catch {
        // Not ours to judge: the reflector answers a malformed frame.
      }
    }
    this.#inner.send(data);
  }

  close(code?: number, reason?: string): void {
    this.#inner.close(code, reason);
  }

  get onopen(): ((ev: unknown) => void) | null {
    return this.#inner.onopen;
  }
  set onopen(fn: ((ev: unknown) => void) | null) {
    const debug = this.#debug;
    this.#inner.onopen = fn && ((ev) => {
      if (debug.session) debug.log(`connected to ${this.#url}`);
      fn(ev);
    });
  }

  get onmessage(): ((ev: { data: unknown }) => void) | null {
    return this.#inner.onmessage;
  }
  set onmessage(fn: ((ev: { data: unknown }) => void) | null) {
    const debug = this.#debug;
    this.#inner.onmessage = fn && ((ev) => {
      const bytes = bytesOf(ev.data);
      if (bytes) {
        try {
          logIncoming(debug, decodeServerMessage(bytes), bytes.length);
        } catch {
          // The connection reports a malformed frame itself.
        }
      }
      fn(ev);
    });
  }

  get onclose(): ((ev: { code: number; reason: string }) => void) | null {
    return this.#inner.onclose;
  }
  set onclose(fn: ((ev: { code: number; reason: string }) => void) | null) {
    const debug = this.#debug;
    this.#inner.onclose = fn && ((ev) => {
      if (debug.session) debug.log(`disconnected from ${this.#url} (close code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`);
      fn(ev);
    });
  }

  get onerror(): ((ev: unknown) => void) | null {
    return this.#inner.onerror;
  }
  set onerror(fn: ((ev: unknown) => void) | null) {
    this.#inner.onerror = fn;
  }
}

/**
 * The socket factory a session uses for its debug flags: with `session` (connections), `messages`
 * (frames received), `sends` (frames sent) or `ticks` on, one whose sockets log their traffic;
 * otherwise `factory` itself, untouched.
 */
export function tracedSockets(factory: SocketFactory, debug: DebugLog): SocketFactory {
  if (!debug.session && !debug.messages && !debug.sends && !debug.ticks) return factory;
  return async (url) => {
    if (debug.session) debug.log(`connecting to ${url}`);
    return new TracedSocket(await factory(url), debug, url);
  };
}
