/* What a ProxyLink (proxy.ts) is given: the client's socket and the options of one forwarded connection. */
import type { Timers } from "@lockstep/protocol";
import type { LogFields, Logger } from "../logger";

/**
 * The client's side of a `ProxyLink`: its socket as the accepting node holds it (a
 * `PeerSocket` fits). The optional members make the link better behaved where the transport has them.
 */
export interface ProxyTarget {
  /** Queues one binary frame to the client; the link never changes a frame it sent. May throw if the socket is dying. */
  send(frame: Uint8Array): void;
  /** Starts the closing handshake. May throw (the link then terminates, if it can). */
  close(code: number, reason: string): void;
  /** Bytes sent that have not reached the client yet. */
  readonly bufferedAmount: number;
  readonly isOpen: boolean;
  /** Destroys the connection at once: used when the client does not finish a close within a second. */
  terminate?(): void;
  /**
   * Stop and start reading from the client: with both, a client that sends faster than the owner
   * takes its frames is held back (TCP backpressure) rather than closed.
   */
  pause?(): void;
  resume?(): void;
  /** Hold back and release writes, so frames forwarded in one turn of the event loop leave in one write. */
  cork?(): void;
  uncork?(): void;
}

/** Options of a `ProxyLink`. */
export interface ProxyOptions {
  /** `ws://` (or `wss://`) URL of the node that owns the session (its `--node-url`). */
  readonly ownerUrl: string;
  /** The client's Join frame, sent first on every upstream connection (copied: the caller's buffer may be reused). */
  readonly joinFrame: Uint8Array;
  /** The client's socket. */
  readonly client: ProxyTarget;
  /**
   * The client's address, sent upstream as `X-Forwarded-For` (the owner takes it from there when it
   * runs with `trustProxy`, as nodes of a proxying cluster do), so per-address caps see the client.
   */
  readonly clientAddress: string;
  /**
   * Unsent bytes allowed per direction. Toward the client (beyond a Sync still being sent) a reader
   * that falls further behind is closed with `SlowReader` (4011); toward the owner the client is
   * no longer read until the owner caught up (its frames are never buffered without bound).
   */
  readonly maxBufferedBytes: number;
  /**
   * How long connecting to the owner (TCP and the WebSocket upgrade) may take before the client is
   * closed with `SessionMoved` (4018), in ms. Default 5000. The owner's answer to the Join may take
   * longer (it may wait out a stale lease), so the timer stops once the socket opened.
   */
  readonly connectTimeoutMs?: number;
  /**
   * Redirects followed before the client's Sync (the session moved on while the link connected).
   * One more closes the client with `SessionMoved`. Default 3.
   */
  readonly maxHops?: number;
  /**
   * Largest frame accepted from the owner, in bytes; it must fit the largest Sync the owner may send
   * (snapshot plus log). Default: ws's own (100 MiB).
   */
  readonly maxPayload?: number;
  /** Extra headers of the upgrade request to the owner. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly logger?: Logger;
  /** Added to every line logged (e.g. `{ connectionId, sessionId }`). */
  readonly logFields?: LogFields;
  /** Connect and close timers. Default `realTimers`. */
  readonly timers?: Timers;
}
