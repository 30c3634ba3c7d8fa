import type { IncomingMessage, ServerResponse } from "node:http";
import { DataEndpoint } from "./data-http";

/** What the health endpoint reports. */
export interface HealthReport {
  readonly sessions: number;
  readonly connections: number;
}

/** What serves `GET /metrics`: the exposition text and its content type. */
export interface MetricsEndpoint {
  readonly contentType: string;
  text(): Promise<string>;
}

/** The routes one HTTP listener serves. */
export interface HttpRoutes {
  readonly health: () => HealthReport;
  /** Serves `/metrics` when given. */
  readonly metrics?: MetricsEndpoint | undefined;
  /** Serves the Data API (`/data/…`, see data-http.ts) when given. */
  readonly data?: DataEndpoint | undefined;
  /** What a 404 says this server is, e.g. "a Lockstep reflector (WebSocket on any path, GET /health)". */
  readonly describe: string;
}

/**
 * Answers plain HTTP requests: `GET /health` (or `HEAD`) → 200 with
 * `{"status":"ok","sessions":N,"connections":N}`; `GET /metrics` (when metrics are served here) →
 * the Prometheus exposition; `/data/…` (when the Data API is served here) → see data-http.ts; every
 * other path → 404. WebSocket upgrades never reach this handler.
 */
export function handleHttpRequest(req: IncomingMessage, res: ServerResponse, routes: HttpRoutes): void {
  const path = (req.url ?? "/").split("?", 1)[0];
  const { metrics } = routes;
  if (routes.data !== undefined && path !== undefined && DataEndpoint.serves(path)) {
    routes.data.handle(req, res);
    return;
  }
  if (path === "/health" || (path === "/metrics" && metrics !== undefined)) {
    if (req.method !== "GET" && req.method !== "HEAD") {
      reply(res, 405, { error: `method not allowed; use GET ${path}` }, { allow: "GET, HEAD" });
      return;
    }
    if (path === "/health" || metrics === undefined) {
      reply(res, 200, { status: "ok", ...routes.health() }, {}, req.method === "HEAD");
      return;
    }
    metrics.text().then(
      (text) => {
        res.writeHead(200, { "content-type": metrics.contentType, "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (error: unknown) => reply(res, 500, { error: `metrics failed: ${error instanceof Error ? error.message : String(error)}` }),
    );
    return;
  }
  reply(res, 404, { error: `not found; this is ${routes.describe}` });
}

function reply(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}, headOnly = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(headOnly ? undefined : text);
}
