import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "./logger";
import { DATA_BLOB_ID, type DataRefusal, type DataStore } from "./storage/data-store";

/**
 * The Data API's HTTP endpoint, on the reflector's own port:
 *
 *   PUT /data/<wireSessionId>/<blobId>   body: the encrypted blob → 201 {"id","bytes"}
 *   GET /data/<wireSessionId>/<blobId>   → 200 the encrypted blob
 *
 * Both need `Authorization: Bearer <requester wire id>.<access token, base64url>`: the proof of
 * key a Join shows, checked against the verifier the requester's session registered. A PUT stores
 * only into the requester's own session; a GET may read any session's blob (a shareable handle is
 * fetched from other sessions, and every blob is encrypted by the client anyway). CORS allows pages
 * of any origin (the header, not a cookie, carries the proof). A body is read as it streams in and
 * refused with 413 the moment it passes the cap, so no upload makes the reflector hold more.
 */
export interface DataEndpointOptions {
  readonly store: DataStore;
  readonly logger: Logger;
  /** Uploads being received at once; one more gets 503 (bounds the bytes held: this × the blob cap). Default 16. */
  readonly maxConcurrentUploads?: number;
  /** Time a body may take to arrive: a client trickling it would otherwise hold an upload slot. Default 60 s. */
  readonly uploadTimeoutMs?: number;
}

/** The path prefix the endpoint serves. */
export const DATA_PATH_PREFIX = "/data/";

const CORS: Readonly<Record<string, string>> = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, PUT, OPTIONS",
  "access-control-allow-headers": "authorization, content-type",
  "access-control-max-age": "600",
};
const WIRE_ID = /^[A-Za-z0-9_-]{16,120}$/;

/** Serves `/data/…` requests; see {@link DataEndpointOptions}. */
export class DataEndpoint {
  readonly #store: DataStore;
  readonly #logger: Logger;
  readonly #maxUploads: number;
  readonly #uploadTimeoutMs: number;
  #uploads = 0;

  constructor(options: DataEndpointOptions) {
    this.#store = options.store;
    this.#logger = options.logger;
    this.#maxUploads = options.maxConcurrentUploads ?? 16;
    this.#uploadTimeoutMs = options.uploadTimeoutMs ?? 60_000;
  }

  /** Whether `path` (without query) is the endpoint's. */
  static serves(path: string): boolean {
    return path.startsWith(DATA_PATH_PREFIX);
  }

  /** Answers one request whose path {@link serves} accepted. Never throws; failures become 500. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    this.#route(req, res).catch((error: unknown) => {
      this.#logger.error("data.error", { error });
      if (!res.headersSent) reply(res, 500, { error: "the reflector could not serve this data request; retry later" });
      else res.destroy();
      req.resume();
    });
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?", 1)[0] ?? "/";
    if (req.method === "OPTIONS") {
      res.writeHead(204, { ...CORS, "content-length": "0" });
      res.end();
      return;
    }
    const parts = path.slice(DATA_PATH_PREFIX.length).split("/");
    const [space, blobId] = parts;
    if (parts.length !== 2 || space === undefined || blobId === undefined || !WIRE_ID.test(space) || !DATA_BLOB_ID.test(blobId)) {
      return refuse(req, res, 404, "not found; data lives at /data/<sessionId>/<blobId> (blob ids: 16–64 characters of [A-Za-z0-9_-])");
    }
    if (req.method !== "GET" && req.method !== "PUT" && req.method !== "HEAD") {
      return refuse(req, res, 405, `method not allowed; use GET or PUT ${DATA_PATH_PREFIX}<sessionId>/<blobId>`, { allow: "GET, HEAD, PUT, OPTIONS" });
    }
    const requester = await this.#authenticate(req);
    if (requester === undefined) {
      return refuse(req, res, 401, "the Data API needs Authorization: Bearer <sessionId>.<access token> of a session of this reflector", { "www-authenticate": "Bearer" });
    }
    if (req.method === "PUT") return this.#put(req, res, requester, space, blobId);
    req.resume();
    const bytes = await this.#store.get(space, blobId);
    if (bytes === undefined) return reply(res, 404, { error: `no blob ${blobId} in session ${space}: it was never stored, or retention removed its session` });
    res.writeHead(200, { ...CORS, "content-type": "application/octet-stream", "content-length": bytes.length, "cache-control": "private, max-age=31536000, immutable" });
    res.end(req.method === "HEAD" ? undefined : bytes);
  }

  async #put(req: IncomingMessage, res: ServerResponse, requester: string, space: string, blobId: string): Promise<void> {
    if (requester !== space) return refuse(req, res, 403, "a session may store data only under its own id");
    const cap = this.#store.limits.maxBlobBytes;
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > cap) return refuse(req, res, 413, tooLarge(cap));
    if (this.#uploads >= this.#maxUploads) return refuse(req, res, 503, "the reflector is receiving too many uploads; retry shortly", { "retry-after": "1" });
    this.#uploads++;
    let body: Uint8Array | "too-large" | "too-slow";
    try {
      body = await readCapped(req, cap, this.#uploadTimeoutMs);
    } finally {
      this.#uploads--;
    }
    if (body === "too-large") return refuse(req, res, 413, tooLarge(cap));
    if (body === "too-slow") {
      this.#logger.warn("data.upload.timeout", { sessionId: space, blobId, timeoutMs: this.#uploadTimeoutMs });
      return refuse(req, res, 408, `the upload took longer than this reflector allows (${this.#uploadTimeoutMs} ms, flag --data-upload-timeout-ms)`);
    }
    const refusal = await this.#store.put(space, blobId, body);
    if (refusal !== undefined) return reply(res, ...refusalReply(refusal));
    this.#logger.info("data.stored", { sessionId: space, blobId, bytes: body.length });
    reply(res, 201, { id: blobId, bytes: body.length });
  }

  /** The wire id of the session whose access token the request carries, or `undefined`. */
  async #authenticate(req: IncomingMessage): Promise<string | undefined> {
    const header = req.headers.authorization;
    const match = typeof header === "string" ? /^Bearer ([A-Za-z0-9_-]{16,120})\.([A-Za-z0-9_-]{16,128})$/.exec(header.trim()) : null;
    if (!match) return undefined;
    const [, sessionId, token] = match as unknown as [string, string, string];
    return (await this.#store.authorize(sessionId, new Uint8Array(Buffer.from(token, "base64url")))) ? sessionId : undefined;
  }
}

function tooLarge(cap: number): string {
  return `the blob is larger than this reflector's limit of ${cap} bytes per blob (option caps.maxDataBytes, flag --max-data-bytes)`;
}

function refusalReply(refusal: DataRefusal): [number, object] {
  switch (refusal.reason) {
    case "exists":
      return [409, { error: "a blob with this id is already stored; blobs never change, store under a new id" }];
    case "too-large":
      return [413, { error: tooLarge(refusal.limit) }];
    case "quota-bytes":
      return [413, { error: `the session's data would exceed its quota of ${refusal.limit} bytes (${refusal.used} used; flag --max-data-bytes-per-session)` }];
    case "quota-blobs":
      return [413, { error: `the session already stores ${refusal.limit} blobs, its limit (flag --max-data-blobs-per-session)` }];
  }
}

/**
 * The body; `"too-large"` as soon as it passes `cap` bytes (nothing beyond the cap is kept), or
 * `"too-slow"` if it has not all arrived within `timeoutMs`.
 */
function readCapped(req: IncomingMessage, cap: number, timeoutMs: number): Promise<Uint8Array | "too-large" | "too-slow"> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = (verdict: "too-large" | "too-slow"): void => {
      clearTimeout(timer);
      req.off("data", onData);
      chunks.length = 0;
      resolve(verdict);
    };
    const timer = setTimeout(() => stop("too-slow"), timeoutMs);
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > cap) return stop("too-large");
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => {
      clearTimeout(timer);
      if (total <= cap) resolve(new Uint8Array(Buffer.concat(chunks, total)));
    });
    req.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.once("aborted", () => {
      clearTimeout(timer);
      reject(new Error("the client aborted the upload"));
    });
  });
}

/**
 * Answers and stops listening to the rest of the body: the connection closes after the reply, so
 * a client cannot keep streaming into a refused request.
 */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
  const bodyExpected = req.method === "PUT" && !req.complete;
  reply(res, status, { error }, bodyExpected ? { ...headers, connection: "close" } : headers);
  if (bodyExpected) {
    // Drain what is in flight so the client can read the reply, then cut the socket.
    req.resume();
    res.once("finish", () => setTimeout(() => req.socket.destroy(), 1000).unref());
  }
}

function reply(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...CORS,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(text);
}
