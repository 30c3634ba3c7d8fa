import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { openReflectorCore, type ReflectorCore, type ReflectorStats } from "./core";
import { ReflectorError } from "./errors";
import { handleHttpRequest } from "./http";
import { resolveOptions, type ReflectorOptions, type ResolvedOptions } from "./options";
import { WsPeerSocket } from "./ws-socket";

export type { ReflectorStats } from "./core";

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
  const core = await openReflectorCore(resolved);
  const server = new ReflectorServer(resolved, core);
  try {
    await server.listen();
  } catch (error) {
    await core.discard();
    throw error;
  }
  core.start();
  const reflector: Reflector = {
    url: server.url,
    port: server.port,
    close: () => server.close(),
    stats: () => core.stats(),
  };
  return Object.freeze(reflector);
}

/** The HTTP and WebSocket side of a reflector: health checks, upgrades refused or handed to the core. */
class ReflectorServer {
  readonly #options: ResolvedOptions;
  readonly #core: ReflectorCore;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  #port = 0;

  constructor(options: ResolvedOptions, core: ReflectorCore) {
    this.#options = options;
    this.#core = core;
    this.#http = createServer((req, res) => {
      try {
        handleHttpRequest(req, res, () => core.health());
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
        logger.info("listening", { url: this.url, host, port: this.#port, storage: this.#options.dataDir ?? (this.#options.storage ? "custom" : "memory") });
        resolve();
      });
    });
  }

  close(): Promise<void> {
    let httpClosed: Promise<void> | undefined;
    return this.#core.close({
      connectionsFailed: () => {
        httpClosed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
        this.#http.closeIdleConnections();
      },
      connectionsClosed: async () => {
        // Keep-alive HTTP clients (e.g. a health checker) would otherwise hold the server open.
        this.#http.closeAllConnections();
        await httpClosed;
        await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
      },
    });
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    try {
      const address = clientAddress(req, this.#options.trustProxy);
      // Refused before the upgrade: an over-cap client costs one HTTP response, no WebSocket.
      const admission = this.#core.admit(address);
      if (!admission.ok) {
        refuse(socket, admission.status, admission.reason);
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
        this.#core.accept(new WsPeerSocket(ws, req.socket), { address, remote });
      });
    } catch (error) {
      this.#options.logger.error("upgrade.failed", { error });
      socket.destroy();
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
