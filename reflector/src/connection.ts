import { WebSocket } from "ws";
import { MessageType, closeCodeName, encodeServerMessage } from "@lockstep/protocol";
import type { Clock } from "./clock";
import { TokenBucket } from "./rate-limiter";
import type { Session, SessionMember } from "./session";

/**
 * Where a socket is in its life: `"open"` until it sends Join, `"joining"` while its session loads,
 * `"joined"` while in a session,
 * `"closing"` once the reflector (or the client's Leave) ended it, `"closed"` after the socket closed.
 * Frames arriving in `"closing"` or `"closed"` are ignored.
 */
export type ConnectionState = "open" | "joining" | "joined" | "closing" | "closed";

/** Options of a {@link Connection}. */
export interface ConnectionOptions {
  readonly id: number;
  readonly remote: string;
  readonly clock: Clock;
  readonly maxMessagesPerSecond: number;
  readonly messageBurst: number;
}

/** One client socket and what the reflector knows about it. */
export class Connection implements SessionMember {
  /** Reflector-local id, for logs. */
  readonly id: number;
  /** Remote address, for logs. */
  readonly remote: string;
  readonly #ws: WebSocket;
  readonly #sendBucket: TokenBucket;
  state: ConnectionState = "open";
  /** The session joined, while `state` is `"joined"`. */
  session: Session | undefined;
  /** The view id it joined under (empty before the join). */
  viewId = "";
  /** Whether it showed signs of life (a pong or any frame) since the last heartbeat ping. */
  alive = true;

  constructor(ws: WebSocket, options: ConnectionOptions) {
    this.#ws = ws;
    this.id = options.id;
    this.remote = options.remote;
    this.#sendBucket = new TokenBucket(options.maxMessagesPerSecond, options.messageBurst, options.clock);
  }

  /** Sends a frame if the socket is open; never throws (a dying socket's close event cleans up). */
  send(frame: Uint8Array): void {
    if (this.#ws.readyState !== WebSocket.OPEN) return;
    try {
      this.#ws.send(frame);
    } catch {
      // The close or error event that follows removes this connection.
    }
  }

  /** Charges one `Send` to the rate limit; `false` when the client is over it. */
  takeSendToken(): boolean {
    return this.#sendBucket.take();
  }

  /** Sends an `Error` frame with `code`, then closes the socket with the same code. */
  fail(code: number, message: string): void {
    if (this.state === "closing" || this.state === "closed") return;
    this.state = "closing";
    this.send(encodeServerMessage({ type: MessageType.Error, code, message }));
    this.close(code, closeCodeName(code) ?? "error");
  }

  /** Starts the closing handshake (no Error frame). */
  close(code: number, reason: string): void {
    if (this.state !== "closed") this.state = "closing";
    try {
      this.#ws.close(code, reason);
    } catch {
      this.terminate();
    }
  }

  /** Destroys the socket at once, without a closing handshake. */
  terminate(): void {
    if (this.state !== "closed") this.state = "closing";
    this.#ws.terminate();
  }

  /** Sends a WebSocket ping and marks the connection as waiting for a sign of life. */
  ping(): void {
    this.alive = false;
    if (this.#ws.readyState !== WebSocket.OPEN) return;
    try {
      this.#ws.ping();
    } catch {
      // Same as send: the socket is going away and its close event cleans up.
    }
  }
}
