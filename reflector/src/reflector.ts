import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { CloseCode } from "@lockstep/protocol";
import { Connection } from "./connection";
import { Dispatcher } from "./dispatcher";
import { ReflectorError } from "./errors";
import { handleHttpRequest } from "./http";
import { resolveOptions, type ReflectorOptions, type ResolvedOptions } from "./options";
import { SessionRegistry } from "./session-registry";
import { PersistStore, SessionStore, createFsStore, createMemoryStore, type BlobStore } from "./storage/index";
import { PersistService } from "./persistence";

/** Counters of a running reflector. */
export interface ReflectorStats {
  /** Sessions in memory, including empty ones not yet dropped. */
  readonly sessions: number;
  /** Open WebSocket connections, joined or not. */
  readonly connections: number;
  /** Client messages relayed since start. */
  readonly relayed: number;
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
 * @throws {ReflectorError} (as a rejection) for invalid options or when the port cannot be listened on.
 */
export async function startReflector(options?: ReflectorOptions): Promise<Reflector> {
  const resolved = resolveOptions(options);
  const blobs = resolved.storage ?? (resolved.dataDir !== undefined ? await createFsStore(resolved.dataDir) : createMemoryStore());
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
    this.#store = new SessionStore(blobs, { retentionMs: options.retentionMs });
    const persist = new PersistService(new PersistStore(blobs, { keep: options.persistVersions }), options.logger);
    this.#registry = new SessionRegistry({
      ...options,
      store: this.#store,
      startingPoint: (sessionId, slot, token) => persist.startingPoint(sessionId, slot, token),
    });
    this.#dispatcher = new Dispatcher({ registry: this.#registry, limits: options.limits, logger: options.logger, tps: options.tps, persist });
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
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: Math.max(2 * options.limits.maxFrameBytes, options.limits.maxSnapshotBytes + 4096, options.limits.maxPersistBytes + 4096),
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
    return { sessions: this.#registry.size, connections: this.#connections.size, relayed: this.#dispatcher.relayed };
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
        socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req));
    } catch (error) {
      this.#options.logger.error("upgrade.failed", { error });
      socket.destroy();
    }
  }

  #accept(ws: WebSocket, req: IncomingMessage): void {
    const { clock, limits } = this.#options;
    const conn = new Connection(ws, {
      id: this.#nextConnectionId++,
      remote: `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`,
      clock,
      maxMessagesPerSecond: limits.maxMessagesPerSecond,
      messageBurst: limits.messageBurst,
    });
    this.#connections.add(conn);
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

  #onClose(conn: Connection, code: number): void {
    try {
      conn.state = "closed";
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
