import { toBase64Url } from "@lockstep/protocol";
import { DataError, type DataAccess } from "./data";

/** What the Data API needs of a joined session to reach the reflector's `/data/` endpoint. */
export interface DataEndpointInput {
  /**
   * The reflector's WebSocket URL (`ws://` or `wss://`); data goes to the same host over HTTP(S).
   * Several (the nodes of a cluster, which share the blobs): a request that cannot reach one tries
   * the next, and later requests start at the one that answered.
   */
  readonly reflector: string | readonly string[];
  /** The id the reflector knows the session by. */
  readonly wireSessionId: string;
  /** The session's proof of key (its verifier is what the reflector stored). */
  readonly accessToken: Uint8Array;
  readonly persistMaster: Uint8Array;
  /** Default `globalThis.fetch`. */
  readonly fetch?: typeof globalThis.fetch;
}

const TIMEOUT_MS = 60_000;

/** The base URL of a reflector's Data API: `ws://host:port/…` → `http://host:port/data/`. */
export function dataBaseUrl(reflector: string): string {
  const url = new URL(reflector);
  if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new DataError(`the Data API needs a ws:// or wss:// reflector, not ${url.protocol}`, 0);
  return `${url.protocol === "wss:" ? "https:" : "http:"}//${url.host}/data/`;
}

/** Data access over HTTP to the reflector (PUT and GET `/data/<space>/<blob>`, the access token in `Authorization`). */
export function httpDataAccess(input: DataEndpointInput): DataAccess {
  const bases = (typeof input.reflector === "string" ? [input.reflector] : input.reflector).map(dataBaseUrl);
  if (bases.length === 0) throw new DataError("the Data API needs a reflector URL", 0);
  let preferred = 0;
  const authorization = `Bearer ${input.wireSessionId}.${toBase64Url(input.accessToken)}`;
  const doFetch = input.fetch ?? globalThis.fetch.bind(globalThis);
  const request = async (method: "GET" | "PUT", space: string, blob: string, body?: Uint8Array): Promise<Response> => {
    let res: Response | undefined;
    let failure: unknown;
    for (let i = 0; i < bases.length && res === undefined; i++) {
      const at = (preferred + i) % bases.length;
      try {
        res = await doFetch(`${bases[at]}${space}/${blob}`, {
          method,
          headers: { authorization, ...(body ? { "content-type": "application/octet-stream" } : {}) },
          body: body as Uint8Array<ArrayBuffer> | undefined,
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
        preferred = at;
      } catch (cause) {
        failure = cause;
      }
    }
    if (res === undefined) {
      const where = bases.length === 1 ? `the reflector at ${bases[0]}` : `any of the reflectors at ${bases.join(", ")}`;
      throw new DataError(`the Data API could not reach ${where} (${method} of blob ${blob}); check that it runs and is reachable, then retry`, 0, { cause: failure });
    }
    if (!res.ok) throw new DataError(`${refusalText(method, blob, res.status)}: ${await reasonOf(res)}`, res.status);
    return res;
  };
  return {
    space: input.wireSessionId,
    persistMaster: input.persistMaster,
    async put(blob, bytes) {
      await (await request("PUT", input.wireSessionId, blob, bytes)).arrayBuffer();
    },
    async get(space, blob) {
      return new Uint8Array(await (await request("GET", space, blob)).arrayBuffer());
    },
  };
}

function refusalText(method: "GET" | "PUT", blob: string, status: number): string {
  if (status === 413) return `the reflector refused to store a blob this large (HTTP 413; ${method} ${blob})`;
  if (status === 404) return `the reflector has no blob ${blob} (HTTP 404)`;
  if (status === 401) return `the reflector did not accept this session's credentials for the Data API (HTTP 401)`;
  return `the reflector refused ${method} of blob ${blob} (HTTP ${status})`;
}

async function reasonOf(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: unknown };
    return typeof body.error === "string" ? body.error : "no reason given";
  } catch {
    return "no reason given";
  }
}

/** Blobs of sessions running with `debug: "offline"` (no reflector): kept in this runtime's memory. */
const offlineBlobs = new Map<string, Uint8Array>();

/** Data access for an offline session: blobs stay in this page. */
export function offlineDataAccess(space: string, persistMaster: Uint8Array): DataAccess {
  return {
    space,
    persistMaster,
    async put(blob, bytes) {
      offlineBlobs.set(`${space}/${blob}`, bytes.slice());
    },
    async get(s, blob) {
      const bytes = offlineBlobs.get(`${s}/${blob}`);
      if (bytes === undefined) throw new DataError(`no blob ${blob} in this page (an offline session keeps its data in memory only)`, 404);
      return bytes.slice();
    },
  };
}
