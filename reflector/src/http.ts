import type { IncomingMessage, ServerResponse } from "node:http";

/** What the health endpoint reports. */
export interface HealthReport {
  readonly sessions: number;
  readonly connections: number;
}

/**
 * Answers plain HTTP requests: `GET /health` (or `HEAD`) → 200 with
 * `{"status":"ok","sessions":N,"connections":N}`; every other path → 404. WebSocket upgrades never
 * reach this handler.
 */
export function handleHttpRequest(req: IncomingMessage, res: ServerResponse, health: () => HealthReport): void {
  const path = (req.url ?? "/").split("?", 1)[0];
  if (path === "/health") {
    if (req.method !== "GET" && req.method !== "HEAD") {
      reply(res, 405, { error: "method not allowed; use GET /health" }, { allow: "GET, HEAD" });
      return;
    }
    reply(res, 200, { status: "ok", ...health() }, {}, req.method === "HEAD");
    return;
  }
  reply(res, 404, { error: "not found; this is a Lockstep reflector (WebSocket on any path, GET /health)" });
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
