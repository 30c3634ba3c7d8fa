import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { openReflectorCore, type ReflectorCore, type ReflectorStats } from "./core";
import { ReflectorError } from "./errors";
import { handleHttpRequest, type HttpRoutes, type MetricsEndpoint } from "./http";
import { ReflectorMetrics, type ReflectorMetricsOptions } from "./metrics";
import { resolveOptions, type ReflectorOptions, type ResolvedOptions } from "./options";
import { checkTls, type TlsOptions } from "./tls";
import { WsPeerSocket } from "./ws-socket";
import { ReadTurns } from "./read-turns";

export type { ReflectorStats } from "./core";

/** A running reflector, as returned by {@link startReflector}. */
export interface Reflector {
  /** WebSocket URL clients connect to, e.g. `"ws://127.0.0.1:8787/"` (`wss://` with the `tls` option). */
  readonly url: string;
  /** The port actually listened on (useful with `port: 0`). */
  readonly port: number;
  /** Where Prometheus scrapes, e.g. `"http://127.0.0.1:8787/metrics"`, or `undefined` with `metrics: false`. */
  readonly metricsUrl: string | undefined;
  /**
   * Serves new TLS connections with another certificate and key (a renewed certificate; open
   * connections keep theirs).
   * @throws {ReflectorError} if the reflector was started without `tls`, or the pair is unusable
   *   (the current one stays).
   */
  reloadTls(tls: TlsOptions): void;
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
    metricsUrl: server.metricsUrl,
    reloadTls: (tls) => server.reloadTls(tls),
    close: () => server.close(),
    stats: () => core.stats(),
  };
  return Object.freeze(reflector);
}

/** The HTTP and WebSocket side of a reflector: health checks, metrics, upgrades refused or handed to the core. */
class ReflectorServer {
  readonly #options: ResolvedOptions;
  readonly #core: ReflectorCore;
  readonly #http: Server | HttpsServer;
  readonly #wss: WebSocketServer;
  /** The read budgets of the connections (caps.readBytesPerTurn, caps.readBytesPerTurnTotal). */
  readonly #readTurns: ReadTurns;
  /** The plain-HTTP listener of `/metrics` when it has a port of its own. */
  readonly #metricsHttp: Server | undefined;
  #port = 0;
  #metricsPort = 0;

  constructor(options: ResolvedOptions, core: ReflectorCore) {
    this.#options = options;
    this.#core = core;
    this.#readTurns = new ReadTurns(options.caps.readBytesPerTurn, options.caps.readBytesPerTurnTotal);
    const health = (): ReturnType<ReflectorCore["health"]> => core.health();
    const metrics = options.metrics.enabled ? lazyMetrics(core, { process: options.metrics.process }) : undefined;
    const separate = options.metrics.enabled && options.metrics.port !== undefined;
    const routes: HttpRoutes = { health, metrics: separate ? undefined : metrics, data: core.data, describe: "a Lockstep reflector (WebSocket on any path, GET /health, /data/…)" };
    const handler = (r: HttpRoutes) => (req: IncomingMessage, res: ServerResponse): void => {
      try {
        handleHttpRequest(req, res, r);
      } catch (error) {
        options.logger.error("http.error", { error });
        res.destroy();
      }
    };
    // One port for wss:// and https://: the upgrade and the plain requests arrive on the same server.
    this.#http = options.tls ? createHttpsServer({ ...options.tls }, handler(routes)) : createServer(handler(routes));
    this.#metricsHttp = separate ? createServer(handler({ health, metrics, describe: "the metrics listener of a Lockstep reflector (GET /metrics, GET /health)" })) : undefined;
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
    return `${this.#options.tls ? "wss" : "ws"}://${hostInUrl(this.#options.host)}:${this.#port}/`;
  }

  get port(): number {
    return this.#port;
  }

  get metricsUrl(): string | undefined {
    const { metrics, tls, host } = this.#options;
    if (!metrics.enabled) return undefined;
    if (this.#metricsHttp !== undefined) return `http://${hostInUrl(metrics.host)}:${this.#metricsPort}/metrics`;
    return `${tls ? "https" : "http"}://${hostInUrl(host)}:${this.#port}/metrics`;
  }

  reloadTls(tls: TlsOptions): void {
    if (!this.#options.tls) throw new ReflectorError("reloadTls: this reflector was started without the tls option, so it serves no certificate to replace");
    const checked = checkTls(tls);
    (this.#http as HttpsServer).setSecureContext(checked);
    this.#options.logger.info("tls.reloaded", {});
  }

  async listen(): Promise<void> {
    const { host, port, logger, metrics } = this.#options;
    this.#port = await listenOn(this.#http, port, host, logger);
    if (this.#metricsHttp !== undefined && metrics.enabled) {
      try {
        this.#metricsPort = await listenOn(this.#metricsHttp, metrics.port ?? 0, metrics.host, logger, "the metrics listener");
      } catch (error) {
        await new Promise<void>((resolve) => this.#http.close(() => resolve()));
        throw error;
      }
    }
    logger.info("listening", {
      url: this.url,
      host,
      port: this.#port,
      tls: this.#options.tls !== undefined,
      metrics: this.metricsUrl,
      storage: this.#options.dataDir ?? (this.#options.storage ? "custom" : "memory"),
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
        if (this.#metricsHttp !== undefined) {
          const metricsClosed = new Promise<void>((resolve) => this.#metricsHttp!.close(() => resolve()));
          this.#metricsHttp.closeAllConnections();
          await metricsClosed;
        }
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
        this.#core.accept(new WsPeerSocket(ws, req.socket, this.#readTurns), { address, remote });
      });
    } catch (error) {
      this.#options.logger.error("upgrade.failed", { error });
      socket.destroy();
    }
  }
}

/** `/metrics`, built at the first scrape (see {@link ReflectorMetrics.create}). */
function lazyMetrics(core: ReflectorCore, options: ReflectorMetricsOptions): MetricsEndpoint {
  let metrics: Promise<ReflectorMetrics> | undefined;
  let contentType = "text/plain; version=0.0.4; charset=utf-8";
  return {
    get contentType() {
      return contentType;
    },
    async text() {
      metrics ??= ReflectorMetrics.create(core, options).catch((error: unknown) => {
        metrics = undefined; // the next scrape tries again
        throw error;
      });
      const m = await metrics;
      contentType = m.contentType;
      return m.text();
    },
  };
}

/** Listens on `port` of `host`; resolves with the port actually listened on. */
function listenOn(server: Server | HttpsServer, port: number, host: string, logger: ResolvedOptions["logger"], what?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (cause: Error): void => {
      reject(new ReflectorError(`could not listen${what ? ` (${what})` : ""} on ${host}:${port} (${cause.message}); pick another port or host`, { cause }));
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      server.on("error", (error) => logger.error("http.error", { error }));
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** A host as it goes into a URL: IPv6 addresses in brackets. */
function hostInUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
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
