import { CloseCode, MessageType, closeCodeName, encodeServerMessage, unrefTimer, type TimerHandle, type Timers } from "@lockstep/protocol";
import type { Clock } from "./clock";
import type { Instruments } from "./instruments";
import type { PeerSocket } from "./peer-socket";
import { TokenBucket } from "./rate-limiter";
import type { Session, SessionMember } from "./session";
import type { PersistAssembly } from "./uploads";
import type { ProxyTarget } from "./cluster/proxy-options";

/** What a proxied connection forwards to (a `ProxyLink`, cluster/proxy.ts). */
export interface ForwardLink {
  fromClient(frame: Uint8Array, isBinary: boolean): void;
  clientClosed(code: number): void;
}

/**
 * Where a socket is in its life: `"open"` until it sends Join, `"joining"` while its session loads,
 * `"joined"` while in a session,
 * `"closing"` once the reflector (or the client's Leave) ended it, `"closed"` after the socket closed.
 * Frames arriving in `"closing"` or `"closed"` are ignored, and nothing more is sent.
 */
export type ConnectionState = "open" | "joining" | "joined" | "proxied" | "closing" | "closed";

/** Options of a {@link Connection}. */
export interface ConnectionOptions {
  readonly id: number;
  /** The client's address (per-address caps), as the reflector determined it. */
  readonly address: string;
  /** Remote address and port, for logs. */
  readonly remote: string;
  readonly clock: Clock;
  /** Schedules the close grace timer. */
  readonly timers: Timers;
  readonly maxMessagesPerSecond: number;
  readonly messageBurst: number;
  readonly maxBytesPerSecond: number;
  readonly byteBurst: number;
  readonly maxPingsPerSecond: number;
  readonly pingBurst: number;
  /** Unsent bytes allowed beyond a Sync being sent; past them the reader is too slow. */
  readonly maxBufferedBytes: number;
  /** Called (once) when the client fell too far behind reading; the owner detaches and closes it. */
  readonly onSlowReader: (conn: Connection) => void;
  /** Where the bytes sent are counted. */
  readonly instruments: Instruments;
  /** A cluster node: whether its lease is fresh, checked before held-back writes are flushed. Default: always. */
  readonly mayServe?: () => boolean;
}

/** How long a connection told to close may take to finish the closing handshake before it is cut off, in ms. */
const CLOSE_GRACE_MS = 1000;

/** One client socket and what the reflector knows about it. */
export class Connection implements SessionMember {
  /** Reflector-local id, for logs. */
  readonly id: number;
  /** The client's address, for per-address caps. */
  readonly address: string;
  /** Remote address and port, for logs. */
  readonly remote: string;
  readonly #socket: PeerSocket;
  readonly #timers: Timers;
  readonly #frames: TokenBucket;
  readonly #bytes: TokenBucket;
  readonly #pings: TokenBucket;
  readonly #maxBuffered: number;
  readonly #onSlowReader: (conn: Connection) => void;
  readonly #instruments: Instruments;
  /** Whether the socket corks (frames sent in one turn of the event loop leave in one write). */
  readonly #corks: boolean;
  #corked = false;
  readonly #uncork = (): void => {
    this.#corked = false;
    // A cluster node paused between a send and this flush may have been replaced meanwhile: what
    // it held back goes nowhere then (the client resumes from the new owner, which has it all).
    // A close under way still goes out: it is what tells the client to move.
    if (this.#mayServe !== undefined && this.state !== "closing" && !this.#mayServe()) {
      this.terminate();
      return;
    }
    this.#socket.uncork?.();
  };
  readonly #mayServe: (() => boolean) | undefined;
  /** Extra unsent bytes allowed while a Sync (which may be large) drains. */
  #allowance = 0;
  #closeTimer: TimerHandle | undefined;
  state: ConnectionState = "open";
  /** The session joined, while `state` is `"joined"`. */
  session: Session | undefined;
  /** The view id it joined under (empty before the join). */
  viewId = "";
  /** Whether it showed signs of life (a pong or any frame) since the last heartbeat ping. */
  alive = true;
  /** Where its frames go while `state` is `"proxied"` (a cluster node in proxy mode forwards it to the session's owner). */
  proxy: ForwardLink | undefined;
  /** The persisted-data upload this connection is sending in chunks, if any. */
  persistUpload: PersistAssembly | undefined;
  /** Called once when the socket closed (the owner's per-connection timers and listeners go). */
  onClosed: (() => void) | undefined;

  constructor(socket: PeerSocket, options: ConnectionOptions) {
    this.#socket = socket;
    this.#timers = options.timers;
    this.#corks = socket.cork !== undefined && socket.uncork !== undefined;
    this.id = options.id;
    this.address = options.address;
    this.remote = options.remote;
    this.#frames = new TokenBucket(options.maxMessagesPerSecond, options.messageBurst, options.clock);
    this.#bytes = new TokenBucket(options.maxBytesPerSecond, options.byteBurst, options.clock);
    this.#pings = new TokenBucket(options.maxPingsPerSecond, options.pingBurst, options.clock);
    this.#maxBuffered = options.maxBufferedBytes;
    this.#onSlowReader = options.onSlowReader;
    this.#instruments = options.instruments;
    this.#mayServe = options.mayServe;
  }

  /**
   * Sends a frame if the connection is live; never throws (a dying socket's close event cleans
   * up). A client that does not read lets unsent bytes pile up here: past the cap it is closed.
   */
  send(frame: Uint8Array): void {
    const socket = this.#socket;
    if (this.state === "closing" || this.state === "closed" || !socket.isOpen) return;
    this.#cork(socket);
    try {
      socket.send(frame);
    } catch {
      // The close or error event that follows removes this connection.
      return;
    }
    this.#sent(socket, frame.length);
  }

  /** Sends `frames` in order (a batch of relays that became durable together), in one write where the socket can. */
  sendAll(frames: readonly Uint8Array[]): void {
    const socket = this.#socket;
    if (this.state === "closing" || this.state === "closed" || !socket.isOpen) return;
    this.#cork(socket);
    let bytes = 0;
    try {
      if (socket.sendAll !== undefined) socket.sendAll(frames);
      else for (const frame of frames) socket.send(frame);
    } catch {
      return;
    }
    for (const frame of frames) bytes += frame.length;
    this.#sent(socket, bytes);
  }

  /** Everything sent to this client in this turn (a burst of relays, pongs) leaves in one write. */
  #cork(socket: PeerSocket): void {
    if (!this.#corked && this.#corks) {
      this.#corked = true;
      socket.cork!();
      process.nextTick(this.#uncork);
    }
  }

  #sent(socket: PeerSocket, bytes: number): void {
    this.#instruments.bytesSent += bytes;
    const buffered = socket.bufferedAmount;
    if (buffered <= this.#maxBuffered) {
      this.#allowance = 0;
    } else if (buffered > this.#maxBuffered + this.#allowance) {
      this.#onSlowReader(this);
    }
  }

  /** Sends a Sync: its own size is allowed on top of the unsent-bytes cap until it drained. */
  sendSync(frame: Uint8Array): void {
    this.#allowance = frame.length;
    this.send(frame);
  }

  /**
   * Charges one frame of `bytes` bytes to the rate limits (`countBytes`: false for upload chunks,
   * which are bounded per upload instead); `false` when the client is over one of them.
   */
  takeFrame(bytes: number, countBytes: boolean): boolean {
    return this.#frames.take() && (!countBytes || this.#bytes.take(bytes));
  }

  /** Charges one Ping to its own, tighter limit: the reflector answers each one itself. */
  takePing(): boolean {
    return this.#pings.take();
  }

  /**
   * Sends an `Error` frame with `code`, then closes the socket with the same code. `stopReading`
   * (a flood): whatever else the client sends is not even parsed — it would cost everyone else
   * CPU — and its closing handshake is cut short by the grace timer.
   */
  fail(code: number, message: string, stopReading = false): void {
    if (this.state === "closing" || this.state === "closed") return;
    // The Error frame and the close go out after whatever is queued; send() refuses more from now on.
    if (this.#socket.isOpen) {
      try {
        this.#socket.send(encodeServerMessage({ type: MessageType.Error, code, message }));
      } catch {
        // closing anyway
      }
    }
    this.close(code, closeCodeName(code) ?? "error");
    if (stopReading) this.#socket.pause?.();
  }

  /** The socket as a proxy's client side: frames forwarded from the session's owner go straight to it. */
  proxyTarget(): ProxyTarget {
    const socket = this.#socket;
    return {
      send: (frame) => socket.send(frame),
      close: (code, reason) => this.close(code, reason),
      get bufferedAmount() {
        return socket.bufferedAmount;
      },
      get isOpen() {
        return socket.isOpen;
      },
      terminate: () => this.terminate(),
      ...(socket.pause !== undefined && socket.resume !== undefined ? { pause: () => socket.pause!(), resume: () => socket.resume!() } : {}),
      ...(socket.cork !== undefined && socket.uncork !== undefined ? { cork: () => socket.cork!(), uncork: () => socket.uncork!() } : {}),
    };
  }

  /**
   * Sends the client to another node of the cluster: a Redirect frame naming `url`, then close
   * code 4017 (`Redirect`). The client reconnects there at once.
   */
  redirect(url: string): void {
    if (this.state === "closing" || this.state === "closed") return;
    if (this.#socket.isOpen) {
      try {
        this.#socket.send(encodeServerMessage({ type: MessageType.Redirect, url }));
      } catch {
        // closing anyway
      }
    }
    this.close(CloseCode.Redirect, "Redirect");
  }

  /**
   * Starts the closing handshake (no Error frame). A client that does not finish it promptly (it
   * may not be reading at all) is cut off, so a closed connection never holds memory for long.
   */
  close(code: number, reason: string): void {
    if (this.state !== "closed") this.state = "closing";
    try {
      this.#socket.close(code, reason);
    } catch {
      this.terminate();
      return;
    }
    if (this.#closeTimer === undefined) {
      this.#closeTimer = this.#timers.setTimeout(() => this.terminate(), CLOSE_GRACE_MS);
      unrefTimer(this.#closeTimer);
    }
  }

  /** Destroys the socket at once, without a closing handshake. */
  terminate(): void {
    if (this.state !== "closed") this.state = "closing";
    this.#socket.terminate();
  }

  /** The socket closed: nothing more to wait for. */
  closed(): void {
    this.state = "closed";
    this.onClosed?.();
    this.onClosed = undefined;
    if (this.#closeTimer !== undefined) this.#timers.clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    this.persistUpload = undefined;
  }

  /** Sends a WebSocket ping and marks the connection as waiting for a sign of life. */
  ping(): void {
    this.alive = false;
    if (!this.#socket.isOpen) return;
    try {
      this.#socket.ping();
    } catch {
      // Same as send: the socket is going away and its close event cleans up.
    }
  }
}

/** The reason text of a slow reader's close, for logs and the Error frame. */
export function slowReaderMessage(maxBufferedBytes: number): string {
  return `more than ${maxBufferedBytes} bytes sent to this client are still unread; it reads too slowly. Reconnect (it rejoins from the reflector's state)`;
}
