import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { CloseCode, maxJoinFrameBytes } from "@lockstep/protocol";
import { createAppAuth } from "./app-auth";
import { Connection, slowReaderMessage } from "./connection";
import { Dispatcher } from "./dispatcher";
import { Penalties } from "./penalties";
import { ReflectorError } from "./errors";
import { handleHttpRequest } from "./http";
import { resolveOptions, type ReflectorOptions, type ResolvedOptions } from "./options";
import { SessionRegistry } from "./session-registry";
import { PersistStore, SessionStore, checkWritable, createFsStore, createMemoryStore, type BlobStore } from "./storage/index";
import { PersistService } from "./persistence";

/** Counters of a running reflector. */
export interface ReflectorStats {
  /** Sessions in memory, including empty ones not yet dropped. */
  readonly sessions: number;
  /** Open WebSocket connections, joined or not. */
  readonly connections: number;
  /** Client messages relayed since start. */
  readonly relayed: number;
  /** Upgrades refused because of the connection caps, since start. */
  readonly refused: number;
}

/** A running reflector, as returned by {@link startReflector}. */
export interface Reflector {
  /** WebSocket URL clients connect to, e.g. `"ws://127.0.0.1:8787/"`. */
  readonly url: string;
  /** The port actually listened on (useful with `port: 0`). */
  readonly port: number;
  /**
   * Stops accepting, tells every client `ServerShutdown` (Error frame and close code 4007), stops all
   * timers and closes the HTTP server. Resolves once everything is closed; calling it again returns
   * the same promise.
   */
  close(): Promise<void>;
  /** Current counters. */
  stats(): ReflectorStats;
}

// How long close() waits for clients to finish the closing handshake before cutting them off.
const SHUTDOWN_GRACE_MS = 2000;
/** WebSocket framing a client may add to its Join before it is admitted (header, mask, a pong). */
const PRE_JOIN_SLACK_BYTES = 1024;
const NORMAL_CLOSURE = 1000;
const GC_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Starts a reflector: one HTTP server that answers `GET /health` and accepts WebSocket upgrades on
 * any path. Each session's messages are ordered, time-stamped and relayed to all of its clients.
 *
 * @example
 * ```ts
 * import { startReflector, silentLogger } from "@lockstep/reflector";
 *
 * const reflector = await startReflector({ port: 0, logger: silentLogger });
 * console.log(`connect clients to ${reflector.url}`);
 * // …
 * await reflector.close();
 * ```
 * @throws {ReflectorError} (as a rejection) for invalid options, storage that cannot be written, or when
 *   the port cannot be listened on.
 */
export async function startReflector(options?: ReflectorOptions): Promise<Reflector> {
  const resolved = resolveOptions(options);
  const blobs = resolved.storage ?? (resolved.dataDir !== undefined ? await createFsStore(resolved.dataDir) : createMemoryStore());
  try {
    // A read-only or full store would otherwise be noticed only by the first session that writes.
    await checkWritable(blobs);
  } catch (cause) {
    await blobs.close().catch(() => undefined);
    throw new ReflectorError(`cannot start: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const server = new ReflectorServer(resolved, blobs);
  try {
    await server.listen();
  } catch (error) {
    await blobs.close();
    throw error;
  }
  const reflector: Reflector = {
    url: server.url,
    port: server.port,
    close: () => server.close(),
    stats: () => server.stats(),
  };
  return Object.freeze(reflector);
}

class ReflectorServer {
  readonly #options: ResolvedOptions;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #registry: SessionRegistry;
  readonly #dispatcher: Dispatcher;
  readonly #connections = new Set<Connection>();
  /** Open connections per client address (the per-address cap). */
  readonly #perAddress = new Map<string, number>();
  /** Addresses just closed for flooding, refused new connections for a while. */
  readonly #penalties: Penalties;
  #refused = 0;
  #nextConnectionId = 1;
  #port = 0;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  readonly #blobs: BlobStore;
  readonly #store: SessionStore;
  #gcTimer: ReturnType<typeof setInterval> | undefined;

  constructor(options: ResolvedOptions, blobs: BlobStore) {
    this.#options = options;
    this.#blobs = blobs;
    this.#penalties = new Penalties(options.clock);
    this.#store = new SessionStore(blobs, { retentionMs: options.retentionMs });
    const persist = new PersistService(new PersistStore(blobs, { keep: options.persistVersions }), options.logger);
    this.#registry = new SessionRegistry({
      ...options,
      caps: options.caps,
      store: this.#store,
      startingPoint: (sessionId, slot, token) => persist.startingPoint(sessionId, slot, token),
    });
    this.#dispatcher = new Dispatcher({
      registry: this.#registry,
      limits: options.limits,
      logger: options.logger,
      tps: options.tps,
      persist,
      appAuth: options.appAuth && createAppAuth(options.appAuth),
      onRateLimited: (conn) => this.#penalties.strike(conn.address),
    });
    this.#http = createServer((req, res) => {
      try {
        handleHttpRequest(req, res, () => ({ sessions: this.#registry.size, connections: this.#connections.size }));
      } catch (error) {
        options.logger.error("http.error", { error });
        res.destroy();
      }
    });
    // Frames up to maxFrameBytes are decoded; from there up to 2× they are still received whole so
    // that the client gets our documented Error frame and TooLarge (4004) close. Beyond 2× ws itself
    // closes the socket with 1009 (Message Too Big) without buffering the frame: no Error frame then.
    // No frame may be larger (uploads travel in chunks), so this bounds what one socket buffers.
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: 2 * options.limits.maxFrameBytes,
      perMessageDeflate: false,
    });
    this.#wss.on("error", (error) => options.logger.error("ws.error", { error }));
    this.#http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.#http.on("clientError", (error, socket) => {
      options.logger.warn("http.client_error", { error });
      socket.destroy();
    });
  }

  get url(): string {
    const host = this.#options.host.includes(":") ? `[${this.#options.host}]` : this.#options.host;
    return `ws://${host}:${this.#port}/`;
  }

  get port(): number {
    return this.#port;
  }

  listen(): Promise<void> {
    const { host, port, logger } = this.#options;
    return new Promise((resolve, reject) => {
      const onError = (cause: Error): void => {
        reject(new ReflectorError(`could not listen on ${host}:${port} (${cause.message}); pick another port or host`, { cause }));
      };
      this.#http.once("error", onError);
      this.#http.listen(port, host, () => {
        this.#http.off("error", onError);
        this.#http.on("error", (error) => logger.error("http.error", { error }));
        this.#port = (this.#http.address() as AddressInfo).port;
        if (this.#options.heartbeatMs > 0) {
          this.#heartbeat = setInterval(() => this.#beat(), this.#options.heartbeatMs);
        }
        logger.info("listening", { url: this.url, host, port: this.#port, storage: this.#options.dataDir ?? (this.#options.storage ? "custom" : "memory") });
        // Retention: collect long-inactive sessions now and then (never the ones in memory).
        this.#collectGarbage();
        this.#gcTimer = setInterval(() => this.#collectGarbage(), Math.min(this.#options.retentionMs, GC_INTERVAL_MS));
        this.#gcTimer.unref();
        resolve();
      });
    });
  }

  #collectGarbage(): void {
    this.#store.collectGarbage(this.#registry.liveIds()).then(
      (n) => n > 0 && this.#options.logger.info("storage.collected", { sessions: n }),
      (error: unknown) => this.#options.logger.error("storage.gc.failed", { error }),
    );
  }

  stats(): ReflectorStats {
    return { sessions: this.#registry.size, connections: this.#connections.size, relayed: this.#dispatcher.relayed, refused: this.#refused };
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const { logger } = this.#options;
    logger.info("shutdown", { sessions: this.#registry.size, connections: this.#connections.size });
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    if (this.#gcTimer !== undefined) clearInterval(this.#gcTimer);
    // Everything stamped is written (and relayed) before the sessions go.
    await this.#registry.drain();
    // Sessions go first so that closing sockets do not stamp and broadcast a view-exit each.
    this.#registry.disposeAll();
    for (const conn of this.#connections) {
      conn.session = undefined;
      conn.fail(CloseCode.ServerShutdown, "the reflector is shutting down; reconnect (with backoff) later");
    }
    const httpClosed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#http.closeIdleConnections();
    await this.#drain();
    // Keep-alive HTTP clients (e.g. a health checker) would otherwise hold the server open.
    this.#http.closeAllConnections();
    await httpClosed;
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    await this.#blobs.close();
    logger.info("closed", { relayed: this.#dispatcher.relayed });
  }

  /** Resolves once every socket closed, terminating stragglers after a grace period. */
  #drain(): Promise<void> {
    if (this.#connections.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const grace = setTimeout(() => {
        for (const conn of this.#connections) conn.terminate();
      }, SHUTDOWN_GRACE_MS);
      this.#drained = () => {
        clearTimeout(grace);
        this.#drained = undefined;
        resolve();
      };
    });
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    try {
      if (this.#closing !== undefined) {
        refuse(socket, 503, "the reflector is shutting down");
        return;
      }
      const { maxConnections, maxConnectionsPerAddress } = this.#options.caps;
      const address = clientAddress(req, this.#options.trustProxy);
      // Refused before the upgrade: an over-cap client costs one HTTP response, no WebSocket.
      if (this.#connections.size >= maxConnections) {
        this.#refuseUpgrade(socket, 503, `the reflector is at its cap of ${maxConnections} connections; retry later`, address);
        return;
      }
      const penalty = this.#penalties.remaining(address);
      if (penalty > 0) {
        this.#refuseUpgrade(socket, 429, `your address was closed for exceeding a rate limit; wait ${Math.ceil(penalty / 1000)} s before reconnecting`, address);
        return;
      }
      if ((this.#perAddress.get(address) ?? 0) >= maxConnectionsPerAddress) {
        this.#refuseUpgrade(socket, 429, `more than ${maxConnectionsPerAddress} connections from your address; close some first`, address);
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req, address));
    } catch (error) {
      this.#options.logger.error("upgrade.failed", { error });
      socket.destroy();
    }
  }

  #refuseUpgrade(socket: Duplex, status: number, message: string, address: string): void {
    this.#refused++;
    // One line per refusal would let a flood flood the log too: every 100th is enough to see it.
    if (this.#refused % 100 === 1) this.#options.logger.warn("connection.refused", { status, address, refused: this.#refused });
    refuse(socket, status, message);
  }

  #accept(ws: WebSocket, req: IncomingMessage, address: string): void {
    const { clock, limits, caps } = this.#options;
    const conn = new Connection(ws, {
      id: this.#nextConnectionId++,
      address,
      remote: `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`,
      clock,
      maxMessagesPerSecond: limits.maxMessagesPerSecond,
      messageBurst: limits.messageBurst,
      maxBytesPerSecond: limits.maxBytesPerSecond,
      byteBurst: limits.byteBurst,
      maxPingsPerSecond: limits.maxPingsPerSecond,
      pingBurst: limits.pingBurst,
      maxBufferedBytes: caps.maxBufferedBytes,
      socket: req.socket,
      onSlowReader: (slow) => {
        this.#options.logger.warn("connection.slow_reader", { connectionId: slow.id, sessionId: slow.session?.id, viewId: slow.viewId || undefined, remote: slow.remote });
        this.#dispatcher.fail(slow, CloseCode.SlowReader, slowReaderMessage(caps.maxBufferedBytes));
      },
    });
    this.#connections.add(conn);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    this.#guardPreJoin(conn, req.socket);
    ws.on("message", (data: RawData, isBinary: boolean) => this.#dispatcher.onFrame(conn, data, isBinary));
    ws.on("pong", () => {
      conn.alive = true;
    });
    ws.on("error", (error: Error) => this.#onSocketError(conn, error));
    ws.on("close", (code: number) => this.#onClose(conn, code));
    if (this.#closing !== undefined) conn.fail(CloseCode.ServerShutdown, "the reflector is shutting down");
  }

  #onSocketError(conn: Connection, error: Error): void {
    try {
      // ws reports bad frames (e.g. over maxPayload: code WS_ERR_UNSUPPORTED_MESSAGE_LENGTH, close 1009)
      // and socket faults here, then closes the socket itself.
      this.#options.logger.warn("connection.error", { error, connectionId: conn.id, sessionId: conn.session?.id, remote: conn.remote });
      this.#dispatcher.detach(conn, "error");
    } catch (nested) {
      this.#options.logger.error("internal.error", { error: nested, connectionId: conn.id });
    }
  }

  /**
   * Until it is admitted, a socket may send no more than one Join (it is cut off beyond that, before
   * ws buffers more) and must send it within the join timeout.
   */
  #guardPreJoin(conn: Connection, socket: Duplex): void {
    const budget = maxJoinFrameBytes(this.#options.limits) + PRE_JOIN_SLACK_BYTES;
    let received = 0;
    const onData = (chunk: Buffer): void => {
      if (conn.state === "joined" || conn.state === "closed") {
        socket.off("data", onData);
        return;
      }
      received += chunk.length;
      if (received > budget) {
        socket.off("data", onData);
        this.#options.logger.warn("connection.prejoin_too_large", { connectionId: conn.id, remote: conn.remote, bytes: received, budget });
        conn.terminate();
      }
    };
    socket.on("data", onData);
    const timer = setTimeout(() => {
      socket.off("data", onData);
      if (conn.state === "open") {
        this.#options.logger.warn("connection.join_timeout", { connectionId: conn.id, remote: conn.remote });
        conn.fail(CloseCode.Timeout, `no Join within ${this.#options.caps.joinTimeoutMs} ms of connecting; send Join right after the socket opens`);
      }
    }, this.#options.caps.joinTimeoutMs);
    timer.unref();
    conn.onClosed = () => {
      clearTimeout(timer);
      socket.off("data", onData);
    };
  }

  #onClose(conn: Connection, code: number): void {
    try {
      conn.closed();
      const left = (this.#perAddress.get(conn.address) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(conn.address, left);
      else this.#perAddress.delete(conn.address);
      this.#dispatcher.detach(conn, code === NORMAL_CLOSURE ? "closed" : `closed ${code}`);
      this.#connections.delete(conn);
      if (this.#connections.size === 0) this.#drained?.();
    } catch (error) {
      this.#options.logger.error("internal.error", { error, connectionId: conn.id });
    }
  }

  #beat(): void {
    for (const conn of this.#connections) {
      try {
        if (conn.alive) {
          conn.ping();
          continue;
        }
        if (conn.state === "closing") {
          // Already told to go (by us or by a previous beat) and still silent: cut it off.
          conn.terminate();
          continue;
        }
        this.#options.logger.warn("heartbeat.timeout", { connectionId: conn.id, sessionId: conn.session?.id, remote: conn.remote });
        // Its view exits now; the socket gets a Timeout close, or is terminated on the next beat.
        this.#dispatcher.fail(conn, CloseCode.Timeout, `no pong or frame for over ${this.#options.heartbeatMs} ms; reconnect`);
      } catch (error) {
        this.#options.logger.error("internal.error", { error, connectionId: conn.id });
      }
    }
  }
}

/** Answers an upgrade request with a plain HTTP error and closes the socket. */
function refuse(socket: Duplex, status: number, message: string): void {
  const reason = status === 429 ? "Too Many Requests" : "Service Unavailable";
  const body = JSON.stringify({ error: message });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nRetry-After: 10\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/**
 * The client's address: the socket's peer, or (behind a trusted reverse proxy) the last
 * `X-Forwarded-For` entry, the one the proxy itself appended.
 */
function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = req.headers["x-forwarded-for"];
    const value = Array.isArray(header) ? header[header.length - 1] : header;
    const last = value?.split(",").pop()?.trim();
    if (last) return last;
  }
  return req.socket.remoteAddress ?? "?";
}
