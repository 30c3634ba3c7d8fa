import { DEFAULT_LIMITS, realTimers, type Limits, type Timers } from "@lockstep/protocol";
import { performanceClock, type Clock } from "./clock";
import { ReflectorError } from "./errors";
import { DEFAULT_PERSIST_VERSIONS } from "./storage/index";
import { createConsoleLogger, type Logger } from "./logger";
import type { SnapshotPolicy } from "./session";
import { DEFAULT_VIEW_GRACE_MS } from "./session-views";
import type { BlobStore } from "./storage/index";
import type { ClusterStore } from "./cluster/types";
import type { AppAuthOptions } from "./app-auth";
import { checkTls, type TlsOptions } from "./tls";

/**
 * Bounds on what clients can make the reflector hold, beyond the per-frame {@link Limits}. Every
 * field has a default (see {@link DEFAULT_CAPS}); the reflector README lists them with their flags.
 */
export interface ReflectorCaps {
  /** Open WebSockets in total; an upgrade beyond it is refused with HTTP 503. */
  readonly maxConnections: number;
  /** Open WebSockets per client address; an upgrade beyond it is refused with HTTP 429. */
  readonly maxConnectionsPerAddress: number;
  /** A socket that has not sent its Join this long after connecting is closed with `Timeout` (4009), in ms. */
  readonly joinTimeoutMs: number;
  /**
   * Bytes sent to a connection that it has not read yet (beyond a Sync still being sent); a reader
   * that falls further behind is closed with `SlowReader` (4011) and rejoins from the reflector's state.
   */
  readonly maxBufferedBytes: number;
  /**
   * Bytes of a session's log since its last snapshot. At half of it the session asks its members for
   * a snapshot; at the cap their Sends are refused with `LogFull` (4015) until a snapshot trims the log.
   */
  readonly maxLogBytes: number;
  /** Of a session's log, the newest bytes kept in memory; older entries are read back from storage for joiners. */
  readonly maxLogMemoryBytes: number;
  /** Sessions the whole reflector creates per minute; a Join that would create one more is refused with `Overloaded` (4016). */
  readonly newSessionsPerMinute: number;
  /** Sessions created per minute from one client address; beyond it a creating Join is refused with `RateLimited` (4005). */
  readonly newSessionsPerAddressPerMinute: number;
  /** Largest Data API blob (`session.data.store`), in bytes; a bigger upload is refused with HTTP 413. */
  readonly maxDataBytes: number;
  /** Bytes of all Data API blobs of one session; an upload beyond it is refused with HTTP 413. */
  readonly maxDataBytesPerSession: number;
  /** Data API blobs of one session; one more is refused with HTTP 413. */
  readonly maxDataBlobsPerSession: number;
  /** Time an upload's body may take to arrive; a slower one is refused with HTTP 408 and its socket cut, freeing its upload slot. */
  readonly dataUploadTimeoutMs: number;
  /**
   * Bytes of messages one connection delivers in one turn of the event loop; past them, its socket
   * is not read again until the next turn, so a client with a backlog cannot hold the loop (and the
   * relays of every other session) while it drains (read-turns.ts). Nothing is refused.
   */
  readonly readBytesPerTurn: number;
  /** Bytes of messages all connections together deliver in one turn; past them, messages wait for the next turn (read-turns.ts). */
  readonly readBytesPerTurnTotal: number;
}

/** The default {@link ReflectorCaps}. */
export const DEFAULT_CAPS: ReflectorCaps = Object.freeze({
  maxConnections: 10_000,
  maxConnectionsPerAddress: 256,
  joinTimeoutMs: 5_000,
  maxBufferedBytes: 16 * 1024 * 1024,
  maxLogBytes: 32 * 1024 * 1024,
  maxLogMemoryBytes: 8 * 1024 * 1024,
  newSessionsPerMinute: 600,
  newSessionsPerAddressPerMinute: 60,
  maxDataBytes: 16 * 1024 * 1024,
  maxDataBytesPerSession: 256 * 1024 * 1024,
  maxDataBlobsPerSession: 1000,
  dataUploadTimeoutMs: 60_000,
  readBytesPerTurn: 64 * 1024,
  readBytesPerTurnTotal: 256 * 1024,
});

/** Where and how a reflector serves Prometheus metrics (`GET /metrics`). */
export interface MetricsOptions {
  /**
   * Serve `/metrics` (and `/health`) on a plain-HTTP listener of its own on this port instead of
   * the reflector's port (0 picks a free one; read it from `Reflector.metricsUrl`), e.g. to keep it
   * on a private interface or behind a firewall rule. Default: on the reflector's own port.
   */
  readonly port?: number;
  /** Interface of that listener. Default: the reflector's `host`. Only with `port`. */
  readonly host?: string;
  /**
   * Also export prom-client's process and Node.js metrics (CPU, memory, open handles, event loop
   * lag, GC). They describe the whole process, and collecting them keeps an event-loop monitor
   * running, so ask for them once per process. Default false; the CLI turns them on.
   */
  readonly process?: boolean;
}

/** Options of {@link startReflector}. Every field is optional. */
export interface ReflectorOptions {
  /** TCP port to listen on. Default 8787; 0 picks a free port (read it from `Reflector.port`). */
  readonly port?: number;
  /** Interface to listen on. Default `"127.0.0.1"` (loopback only); `"0.0.0.0"` for every IPv4 interface. */
  readonly host?: string;
  /** Overrides of the protocol's {@link DEFAULT_LIMITS}. */
  readonly limits?: Partial<Limits>;
  /** Where structured logs go. Default: JSON lines on stdout at level `"info"`. */
  readonly logger?: Logger;
  /**
   * Monotonic clock in ms that session times and rate limits are computed from. Default
   * `timers.now`, else `performance.now`. Giving only a clock keeps real timers.
   */
  readonly clock?: Clock;
  /**
   * Time and every timer of the reflector (session ticks, join timeout, heartbeats, close grace,
   * snapshot rounds, session drops, storage collection): a fake clock here (tests) means nothing
   * fires until it is advanced. Default `realTimers` from `@lockstep/protocol`.
   */
  readonly timers?: Timers;
  /** How long a session with no clients stays in memory, in ms. Default 60 000. */
  readonly sessionIdleMs?: number;
  /**
   * How long a view whose connection dropped without a Leave (or that was live when the reflector
   * stopped) keeps its place in the session, in ms: a client back within it continues without a
   * view-exit; after it, the view-exit is stamped. Default 10 000; 0 stamps it at once.
   */
  readonly viewGraceMs?: number;
  /**
   * Interval of WebSocket pings, in ms. A connection that has not answered the previous ping (nor
   * sent anything) by the next one is closed with `Timeout` (4009), and terminated one interval
   * later if it does not finish the close either. Default 30 000; 0 disables heartbeats.
   */
  readonly heartbeatMs?: number;
  /**
   * Tick rate for every session, overriding the `tps` joiners ask for. Default: each session ticks
   * at the rate its first joiner asked for.
   */
  readonly tps?: number;
  /**
   * When sessions snapshot: after `everyMessages` entries (default 1000), or `everyMs` of session
   * time with any activity (default 30 000), waiting `voteTimeoutMs` for votes and uploads
   * (default 5 000).
   */
  readonly snapshots?: Partial<SnapshotPolicy>;
  /**
   * Where sessions are stored (so they outlive their clients and the reflector): a BlobStore
   * adapter. Default: `dataDir` if given (filesystem), else memory (lost when the process ends).
   */
  readonly storage?: BlobStore;
  /** Directory of the filesystem store (the embedded default of the CLI and dev server). */
  readonly dataDir?: string;
  /** Stored sessions inactive this long are deleted, in ms. Default 30 days. */
  readonly retentionMs?: number;
  /** Versions of persisted data kept per slot (the newest; older ones are deleted). Default 10. */
  readonly persistVersions?: number;
  /** Overrides of {@link DEFAULT_CAPS}: connections, pre-join time, send queues, logs, session creation. */
  readonly caps?: Partial<ReflectorCaps>;
  /**
   * Take the client address (for per-address caps and logs) from the last `X-Forwarded-For` entry,
   * as a reverse proxy in front of the reflector appends it. Only behind such a proxy. Default false.
   */
  readonly trustProxy?: boolean;
  /**
   * Admit only clients presenting a token the app's backend signed (a JWT; PROTOCOL.md §14).
   * Default: none (any client that proves the session key may join).
   */
  readonly appAuth?: AppAuthOptions;
  /**
   * Serve `wss://` (and `https://` for `/health` and `/metrics`) on the same port with this
   * certificate and key. Default: plain `ws://` (put TLS at a reverse proxy instead, or give this).
   */
  readonly tls?: TlsOptions;
  /** Prometheus metrics: `false` serves none. Default: `GET /metrics` on the reflector's port. */
  readonly metrics?: false | MetricsOptions;
  /**
   * Run as one node of a cluster (DEPLOYMENT.md, "A cluster"): sessions are owned, fenced and
   * stored through `cluster.store` (from `createClusterStore`, which the reflector closes), and
   * `storage` must be a store every node shares (persisted data and Data blobs live there).
   * Default: a single reflector.
   */
  readonly cluster?: ClusterOptions;
}

/** Options of a cluster node (see {@link ReflectorOptions.cluster}). */
export interface ClusterOptions {
  /** This node's handle on the cluster's PostgreSQL (`createClusterStore`). */
  readonly store: ClusterStore;
  /**
   * Forward the clients of sessions another node owns to that node, instead of redirecting them
   * (for nodes behind one public address, which clients cannot leave). Default false.
   */
  readonly proxy?: boolean;
}

/** {@link MetricsOptions} resolved: where metrics are served, if at all. */
export type ResolvedMetrics =
  | { readonly enabled: false }
  | { readonly enabled: true; readonly port: number | undefined; readonly host: string; readonly process: boolean };

/** {@link ReflectorOptions} with every default filled in and validated. */
export interface ResolvedOptions {
  readonly port: number;
  readonly host: string;
  readonly limits: Limits;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly sessionIdleMs: number;
  readonly viewGraceMs: number;
  readonly heartbeatMs: number;
  readonly tps: number | undefined;
  readonly snapshots: SnapshotPolicy;
  readonly storage: BlobStore | undefined;
  readonly dataDir: string | undefined;
  readonly retentionMs: number;
  readonly persistVersions: number;
  readonly caps: ReflectorCaps;
  readonly trustProxy: boolean;
  readonly appAuth: AppAuthOptions | undefined;
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  readonly metrics: ResolvedMetrics;
  readonly cluster: ClusterOptions | undefined;
}

/** Default port of a reflector. */
export const DEFAULT_PORT = 8787;
/** Default interface of a reflector. */
export const DEFAULT_HOST = "127.0.0.1";

const LIMIT_KEYS = Object.keys(DEFAULT_LIMITS) as (keyof Limits)[];

/**
 * Fills in defaults and validates.
 * @throws {ReflectorError} naming the first invalid option.
 */
export function resolveOptions(options: ReflectorOptions = {}): ResolvedOptions {
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ReflectorError(`option port must be an integer in 0..65535, got ${String(port)}`);
  }
  const host = options.host ?? DEFAULT_HOST;
  if (typeof host !== "string" || host.length === 0) throw new ReflectorError("option host must be a non-empty string");
  const limits: Limits = Object.freeze({ ...DEFAULT_LIMITS, ...options.limits });
  for (const key of LIMIT_KEYS) {
    const value = limits[key];
    if (!Number.isInteger(value) || value < 0) {
      throw new ReflectorError(`limit ${key} must be a non-negative integer, got ${String(value)}`);
    }
  }
  if (limits.maxFrameBytes < 2 || limits.minTps < 1 || limits.maxTps < limits.minTps) {
    throw new ReflectorError("limits need maxFrameBytes ≥ 2 and 1 ≤ minTps ≤ maxTps");
  }
  const sessionIdleMs = nonNegative("sessionIdleMs", options.sessionIdleMs ?? 60_000);
  const heartbeatMs = nonNegative("heartbeatMs", options.heartbeatMs ?? 30_000);
  const viewGraceMs = nonNegative("viewGraceMs", options.viewGraceMs ?? DEFAULT_VIEW_GRACE_MS);
  const tps = options.tps;
  if (tps !== undefined && (!Number.isInteger(tps) || tps < limits.minTps || tps > limits.maxTps)) {
    throw new ReflectorError(`option tps must be an integer in ${limits.minTps}..${limits.maxTps}, got ${String(tps)}`);
  }
  if (options.storage !== undefined && options.dataDir !== undefined) {
    throw new ReflectorError("give either option storage or option dataDir, not both");
  }
  if (options.cluster !== undefined && (options.storage === undefined || typeof options.cluster.store?.claim !== "function")) {
    throw new ReflectorError("option cluster needs cluster.store (createClusterStore) and option storage, a store every node shares (createPostgresStore on the same database)");
  }
  if (options.persistVersions !== undefined && !(Number.isSafeInteger(options.persistVersions) && options.persistVersions >= 1)) {
    throw new ReflectorError(`option persistVersions must be a positive integer, got ${String(options.persistVersions)}`);
  }
  if (options.retentionMs !== undefined && !(options.retentionMs > 0)) {
    throw new ReflectorError(`option retentionMs must be a positive number of ms, got ${String(options.retentionMs)}`);
  }
  const everyMessages = options.snapshots?.everyMessages ?? 1000;
  if (!Number.isInteger(everyMessages) || everyMessages < 1) {
    throw new ReflectorError(`option snapshots.everyMessages must be a positive integer, got ${String(everyMessages)}`);
  }
  const snapshots: SnapshotPolicy = Object.freeze({
    everyMessages,
    everyMs: nonNegative("snapshots.everyMs", options.snapshots?.everyMs ?? 30_000),
    voteTimeoutMs: nonNegative("snapshots.voteTimeoutMs", options.snapshots?.voteTimeoutMs ?? 5_000),
  });
  const { clock, timers } = resolveTime(options);
  const caps: ReflectorCaps = Object.freeze({ ...DEFAULT_CAPS, ...options.caps });
  for (const key of Object.keys(DEFAULT_CAPS) as (keyof ReflectorCaps)[]) {
    const value = caps[key];
    if (!Number.isSafeInteger(value) || value < 1) throw new ReflectorError(`cap ${key} must be a positive integer, got ${String(value)}`);
  }
  nonNegative("caps.joinTimeoutMs", caps.joinTimeoutMs);
  if (caps.maxLogMemoryBytes > caps.maxLogBytes) {
    throw new ReflectorError(`cap maxLogMemoryBytes (${caps.maxLogMemoryBytes}) must not exceed maxLogBytes (${caps.maxLogBytes})`);
  }
  return {
    port,
    host,
    tls: options.tls === undefined ? undefined : checkTls(options.tls),
    metrics: resolveMetrics(options.metrics, host),
    limits,
    logger: options.logger ?? createConsoleLogger("info"),
    clock,
    timers,
    sessionIdleMs,
    viewGraceMs,
    heartbeatMs,
    tps,
    snapshots,
    storage: options.storage,
    dataDir: options.dataDir,
    retentionMs: options.retentionMs ?? 30 * 24 * 60 * 60 * 1000,
    persistVersions: options.persistVersions ?? DEFAULT_PERSIST_VERSIONS,
    caps,
    trustProxy: options.trustProxy ?? false,
    appAuth: options.appAuth,
    cluster: options.cluster,
  };
}

function resolveMetrics(metrics: false | MetricsOptions | undefined, host: string): ResolvedMetrics {
  if (metrics === false) return { enabled: false };
  const { port, host: metricsHost, process = false } = metrics ?? {};
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new ReflectorError(`option metrics.port must be an integer in 0..65535, got ${String(port)}`);
  }
  if (metricsHost !== undefined && (port === undefined || typeof metricsHost !== "string" || metricsHost.length === 0)) {
    throw new ReflectorError("option metrics.host must be a non-empty string, and needs metrics.port (it names the interface of the metrics listener)");
  }
  return { enabled: true, port, host: metricsHost ?? host, process };
}

/** The clock and timers: the clock (if given) overrides `timers.now` for time stamps. */
function resolveTime(options: ReflectorOptions): { clock: Clock; timers: Timers } {
  const given = options.timers;
  if (options.clock !== undefined && typeof options.clock !== "function") throw new ReflectorError("option clock must be a function returning ms");
  if (given === undefined) return { clock: options.clock ?? performanceClock, timers: realTimers };
  if (typeof given.now !== "function" || typeof given.setTimeout !== "function" || typeof given.clearTimeout !== "function") {
    throw new ReflectorError("option timers must have now(), setTimeout(fn, ms) and clearTimeout(handle)");
  }
  return { clock: options.clock ?? (() => given.now()), timers: given };
}

// Node timers silently turn longer delays into 1 ms.
const MAX_TIMER_MS = 2 ** 31 - 1;

function nonNegative(name: string, value: number): number {
  if (!(value >= 0 && value <= MAX_TIMER_MS)) throw new ReflectorError(`option ${name} must be a number of ms in 0..${MAX_TIMER_MS}, got ${String(value)}`);
  return value;
}
