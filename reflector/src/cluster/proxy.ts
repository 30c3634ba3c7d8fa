/*
 * `--proxy` mode: a node that does not own a session forwards the client's connection to the node
 * that does, for deployments where clients reach the cluster only through one public address (a
 * load balancer that may send them to any node) and so cannot follow a Redirect themselves.
 */
import {
  CloseCode,
  MessageType,
  PROTOCOL_VERSION,
  closeCodeName,
  decodeServerMessage,
  encodeServerMessage,
  realTimers,
  unrefTimer,
  type TimerHandle,
  type Timers,
} from "@lockstep/protocol";
import { slowReaderMessage } from "../connection";
import { ReflectorError } from "../errors";
import { silentLogger, type LogFields, type Logger } from "../logger";
import type { ProxyOptions, ProxyTarget } from "./proxy-options";
import { Upstream, type UpstreamEnd, type UpstreamListener } from "./proxy-upstream";

export type { ProxyOptions, ProxyTarget } from "./proxy-options";

/** How long a side told to close may take to finish the closing handshake before it is cut off, in ms. */
const CLOSE_GRACE_MS = 1000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_HOPS = 3;
const NORMAL_CLOSURE = 1000;
const GOING_AWAY = 1001;

/** Where the client's side of a link is. `"closing"`: the link closed it and waits for the socket to close. */
type ClientState = "open" | "closing" | "closed";

/**
 * Forwards one client connection to the node that owns its session and back, frame by frame and
 * unchanged, until either side closes; the other side is then closed with a code that tells the
 * client what to do (the owner's own close codes pass through).
 *
 * A Redirect from the owner before the client's Sync (the session moved while the link connected)
 * is followed here, up to `maxHops` times; after the Sync it is forwarded, and the client follows
 * it itself. An owner that cannot be reached, times out or goes away closes the client with
 * `SessionMoved` (4018): it reconnects through any node at once.
 *
 * @example
 * ```ts
 * // A Join arrived on `socket` for a session that node `owner` holds:
 * const link = new ProxyLink({ ownerUrl: owner.url, joinFrame, client: socket, clientAddress, maxBufferedBytes: caps.maxBufferedBytes });
 * // from now on, the socket's events go to the link:
 * onMessage = (data, isBinary) => link.fromClient(data, isBinary);
 * onClose = (code) => link.clientClosed(code);
 * await link.done; // both sockets are closed
 * ```
 */
export class ProxyLink {
  /** Settles (never rejects) once the client's socket and every upstream socket are closed. */
  readonly done: Promise<void>;
  readonly #client: ProxyTarget;
  readonly #join: Uint8Array;
  readonly #maxBuffered: number;
  readonly #maxHops: number;
  readonly #logger: Logger;
  readonly #logFields: LogFields | undefined;
  readonly #timers: Timers;
  readonly #upstreamOptions: { headers: Record<string, string>; maxPayload: number | undefined; connectTimeoutMs: number };
  readonly #listener: UpstreamListener = {
    opened: (upstream) => this.#opened(upstream),
    frame: (upstream, data, isBinary) => this.#fromOwner(upstream, data, isBinary),
    ended: (upstream, end) => this.#ended(upstream, end),
  };
  readonly #canPause: boolean;
  readonly #corks: boolean;
  /** The upstream of the latest hop; earlier ones are closing and ignored. */
  #upstream: Upstream | undefined;
  /** Upstream sockets not closed yet (this hop's and earlier ones'). */
  #live = 0;
  #hops = 0;
  /** Whether the client got its Sync through this link (from then on, Redirects are the client's to follow). */
  #synced = false;
  #clientState: ClientState = "open";
  /** Client frames that arrived before the current upstream opened (copies), and their bytes. */
  #queue: Uint8Array[] = [];
  #queued = 0;
  #paused = false;
  /** Extra unsent bytes allowed toward the client while a Sync (which may be large) drains. */
  #allowance = 0;
  #corked = false;
  #closeTimer: TimerHandle | undefined;
  #settle: () => void = () => {};
  readonly #uncork = (): void => {
    this.#corked = false;
    this.#client.uncork?.();
  };
  /** Called when a frame to the owner left for the OS while the client is held back: reads it again once the owner caught up. */
  readonly #written = (): void => {
    if (!this.#paused || this.#clientState !== "open" || this.#upstream === undefined) return;
    if (this.#upstream.bufferedAmount > this.#maxBuffered / 2) return;
    this.#paused = false;
    this.#client.resume?.();
  };

  /** Starts connecting to the owner at once. @throws {ReflectorError} for invalid options (never for network trouble). */
  constructor(options: ProxyOptions) {
    const { maxBufferedBytes, connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS, maxHops = DEFAULT_MAX_HOPS } = options;
    if (!Number.isSafeInteger(maxBufferedBytes) || maxBufferedBytes < 1) throw new ReflectorError(`ProxyLink: maxBufferedBytes must be a positive integer, got ${String(maxBufferedBytes)}`);
    if (!(connectTimeoutMs > 0)) throw new ReflectorError(`ProxyLink: connectTimeoutMs must be a positive number of ms, got ${String(connectTimeoutMs)}`);
    if (!Number.isSafeInteger(maxHops) || maxHops < 0) throw new ReflectorError(`ProxyLink: maxHops must be a non-negative integer, got ${String(maxHops)}`);
    this.#client = options.client;
    this.#join = options.joinFrame.slice();
    this.#maxBuffered = maxBufferedBytes;
    this.#maxHops = maxHops;
    this.#logger = options.logger ?? silentLogger;
    this.#logFields = options.logFields;
    this.#timers = options.timers ?? realTimers;
    this.#canPause = typeof options.client.pause === "function" && typeof options.client.resume === "function";
    this.#corks = typeof options.client.cork === "function" && typeof options.client.uncork === "function";
    const headers: Record<string, string> = { ...options.headers };
    if (options.clientAddress !== "" && options.clientAddress !== "?") headers["x-forwarded-for"] = options.clientAddress;
    this.#upstreamOptions = { headers, maxPayload: options.maxPayload, connectTimeoutMs };
    this.done = new Promise<void>((resolve) => (this.#settle = resolve));
    this.#connect(options.ownerUrl);
  }

  /**
   * One frame from the client (`data` may view a receive buffer: it is copied only if it must wait
   * for the owner's socket to open). A text frame closes the client with `ProtocolError`.
   */
  fromClient(data: Uint8Array, isBinary = true): void {
    if (this.#clientState !== "open") return;
    if (!isBinary) {
      this.#fail(CloseCode.ProtocolError, "text frames are not part of the Lockstep protocol; send binary frames");
      return;
    }
    const upstream = this.#upstream;
    if (upstream !== undefined && upstream.isOpen) {
      this.#sendUp(upstream, data);
      this.#checkBacklog(upstream.bufferedAmount);
    } else {
      this.#queue.push(data.slice());
      this.#queued += data.length;
      this.#checkBacklog(this.#queued);
    }
  }

  /** The client's socket closed (with `code`): the owner's socket is closed too. Call it once the socket reported its close. */
  clientClosed(code: number): void {
    if (this.#clientState === "closed") return;
    const wasOpen = this.#clientState === "open";
    this.#clientState = "closed";
    this.#clearCloseTimer();
    this.#dropQueue();
    if (wasOpen) this.#upstream?.close(sendableCode(code), "the client closed its connection");
    this.#checkDone();
  }

  #connect(url: string): void {
    this.#live++;
    this.#upstream = new Upstream({ url, ...this.#upstreamOptions, closeGraceMs: CLOSE_GRACE_MS, timers: this.#timers }, this.#listener);
  }

  #opened(upstream: Upstream): void {
    if (upstream !== this.#upstream || this.#clientState !== "open") {
      upstream.close(NORMAL_CLOSURE, "no longer needed");
      return;
    }
    upstream.send(this.#join);
    const queue = this.#queue;
    this.#dropQueue();
    for (const frame of queue) this.#sendUp(upstream, frame);
    this.#checkBacklog(upstream.bufferedAmount);
    this.#written();
  }

  /**
   * Sends a client frame to the owner. Frames sent while the backlog is above half the cap report
   * when they left for the OS (the last of them finds the backlog gone): that is what reads a
   * held-back client again. Below it, no callback is needed, as the client is not held back.
   */
  #sendUp(upstream: Upstream, frame: Uint8Array): void {
    const high = this.#paused || upstream.bufferedAmount + frame.length > this.#maxBuffered / 2;
    upstream.send(frame, high ? this.#written : undefined);
  }

  #fromOwner(upstream: Upstream, data: Uint8Array, isBinary: boolean): void {
    if (upstream !== this.#upstream || this.#clientState !== "open") return;
    if (!isBinary) {
      this.#log("warn", "proxy.protocol_error", { url: upstream.url, message: "the owner node sent a text frame" });
      upstream.close(CloseCode.ProtocolError, "text frames are not part of the Lockstep protocol");
      this.#fail(CloseCode.SessionMoved, "the node owning the session sent a malformed frame; reconnect");
      return;
    }
    if (data.length >= 2 && data[0] === PROTOCOL_VERSION) {
      const type = data[1];
      if (type === MessageType.Sync) {
        this.#synced = true;
        this.#allowance = data.length;
      } else if (!this.#synced && type === MessageType.Redirect) {
        this.#follow(upstream, data);
        return;
      } else if (!this.#synced && type === MessageType.Error && errorCode(data) === CloseCode.Redirect) {
        return; // explains a redirect this link follows itself
      }
    }
    this.#toClient(data);
  }

  /** The owner answered the Join with a Redirect (the session moved meanwhile): join at the node it names instead. */
  #follow(upstream: Upstream, data: Uint8Array): void {
    upstream.close(NORMAL_CLOSURE, "following the redirect");
    const url = redirectUrl(data);
    if (url === undefined) {
      this.#log("warn", "proxy.redirect_invalid", { url: upstream.url });
      this.#fail(CloseCode.SessionMoved, "the node owning the session redirected to an invalid URL; reconnect");
      return;
    }
    if (this.#hops >= this.#maxHops) {
      this.#log("warn", "proxy.redirect_limit", { url: upstream.url, to: url, hops: this.#hops });
      this.#fail(CloseCode.SessionMoved, `the session was redirected more than ${this.#maxHops} times while connecting; reconnect`);
      return;
    }
    this.#hops++;
    this.#log("info", "proxy.redirected", { url: upstream.url, to: url, hop: this.#hops });
    this.#connect(url);
  }

  #ended(upstream: Upstream, end: UpstreamEnd): void {
    this.#live--;
    if (upstream === this.#upstream) {
      this.#upstream = undefined;
      if (this.#clientState === "open") this.#ownerGone(upstream, end);
    }
    this.#checkDone();
  }

  /** The current upstream ended while the client is still there: the client is told why, with a code it acts on. */
  #ownerGone(upstream: Upstream, end: UpstreamEnd): void {
    if (end.kind === "failed") {
      this.#log("warn", "proxy.unreachable", { url: upstream.url, detail: end.detail, status: end.status });
      if (end.status === 503 || end.status === 429) {
        this.#fail(CloseCode.Overloaded, `the node owning the session is at capacity (HTTP ${end.status}); reconnect with backoff`);
      } else {
        this.#fail(CloseCode.SessionMoved, "the node owning the session cannot be reached; reconnect");
      }
      return;
    }
    const { code, reason } = end;
    if (code === NORMAL_CLOSURE || (code >= 4000 && code <= 4999)) {
      // The owner's own close (its Error frame, if any, was forwarded before it).
      this.#clientState = "closing";
      this.#closeClient(code, reason);
      return;
    }
    this.#log("warn", "proxy.owner_lost", { url: upstream.url, code, reason });
    this.#fail(CloseCode.SessionMoved, "the owner node went away; reconnect");
  }

  /** Forwards an owner frame; a client that lets too much of it pile up unread is closed (SlowReader). */
  #toClient(data: Uint8Array): void {
    const client = this.#client;
    if (!client.isOpen) return;
    // What the owner sent in one turn (one TCP read of relays) leaves in one write.
    if (this.#corks && !this.#corked) {
      this.#corked = true;
      client.cork!();
      process.nextTick(this.#uncork);
    }
    try {
      client.send(data);
    } catch {
      return; // the close that follows ends the link
    }
    const buffered = client.bufferedAmount;
    if (buffered <= this.#maxBuffered) {
      this.#allowance = 0;
    } else if (buffered > this.#maxBuffered + this.#allowance) {
      this.#log("warn", "proxy.slow_reader", { buffered, maxBufferedBytes: this.#maxBuffered });
      this.#fail(CloseCode.SlowReader, slowReaderMessage(this.#maxBuffered));
    }
  }

  /**
   * Bounds what waits for the owner: past the cap the client is no longer read (if its socket can
   * pause) until the owner caught up; past twice the cap (what was parsed before the pause took
   * hold), or past the cap without pausing, it is closed as a flooder.
   */
  #checkBacklog(pending: number): void {
    const cap = this.#maxBuffered;
    if (pending <= cap) return;
    if (this.#canPause && pending <= 2 * cap) {
      if (!this.#paused) {
        this.#paused = true;
        this.#client.pause!();
      }
      return;
    }
    this.#log("warn", "proxy.flood", { pending, maxBufferedBytes: cap });
    this.#fail(CloseCode.RateLimited, `more than ${cap} bytes from this client are waiting for the node owning the session; slow down, then reconnect`);
  }

  /** Sends the client an Error frame with `code` and closes it with the same code; the owner's socket is closed too. */
  #fail(code: number, message: string): void {
    if (this.#clientState !== "open") return;
    this.#clientState = "closing";
    this.#dropQueue();
    const client = this.#client;
    if (client.isOpen) {
      try {
        client.send(encodeServerMessage({ type: MessageType.Error, code, message }));
      } catch {
        // closing anyway
      }
    }
    const reason = closeCodeName(code) ?? "error";
    this.#closeClient(code, reason);
    // A flooder's further frames are not even parsed.
    if (code === CloseCode.RateLimited) client.pause?.();
    // The owner keeps the view for its grace period, as for any dropped connection.
    this.#upstream?.close(code, reason);
  }

  #closeClient(code: number, reason: string): void {
    const client = this.#client;
    try {
      client.close(code, reason);
    } catch {
      client.terminate?.();
      return;
    }
    if (client.terminate !== undefined && this.#closeTimer === undefined) {
      this.#closeTimer = this.#timers.setTimeout(() => {
        this.#closeTimer = undefined;
        client.terminate?.();
      }, CLOSE_GRACE_MS);
      unrefTimer(this.#closeTimer);
    }
  }

  #checkDone(): void {
    if (this.#clientState !== "closed" || this.#live > 0) return;
    this.#clearCloseTimer();
    this.#settle();
  }

  #dropQueue(): void {
    this.#queue = [];
    this.#queued = 0;
  }

  #clearCloseTimer(): void {
    if (this.#closeTimer !== undefined) this.#timers.clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
  }

  #log(level: "info" | "warn", event: string, fields: LogFields): void {
    this.#logger[level](event, this.#logFields === undefined ? fields : { ...this.#logFields, ...fields });
  }
}

/** A client's close code as one a peer may send upstream (1005/1006 and the like become 1001, "going away"). */
function sendableCode(code: number): number {
  return code === NORMAL_CLOSURE || code === GOING_AWAY || (code >= 3000 && code <= 4999) ? code : GOING_AWAY;
}

/** The `ws:`/`wss:` URL of a Redirect frame, or undefined if the frame or the URL is malformed. */
function redirectUrl(data: Uint8Array): string | undefined {
  try {
    const msg = decodeServerMessage(data);
    if (msg.type !== MessageType.Redirect) return undefined;
    const url = new URL(msg.url);
    return url.protocol === "ws:" || url.protocol === "wss:" ? msg.url : undefined;
  } catch {
    return undefined;
  }
}

/** The code of an Error frame, or undefined if it does not decode. */
function errorCode(data: Uint8Array): number | undefined {
  try {
    const msg = decodeServerMessage(data);
    return msg.type === MessageType.Error ? msg.code : undefined;
  } catch {
    return undefined;
  }
}
