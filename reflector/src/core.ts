import { CloseCode, encodeClientMessage, every, maxJoinFrameBytes, unrefTimer, type JoinMessage } from "@lockstep/protocol";
import { ProxyLink } from "./cluster/proxy";
import type { ClusterStore, NodeInfo } from "./cluster/types";
import { createAppAuth } from "./app-auth";
import { DataEndpoint } from "./data-http";
import { Connection, slowReaderMessage } from "./connection";
import { Dispatcher } from "./dispatcher";
import { ReflectorError } from "./errors";
import type { HealthReport } from "./http";
import { Instruments } from "./instruments";
import { resolveOptions, type ReflectorOptions, type ResolvedOptions } from "./options";
import type { PeerInfo, PeerSocket } from "./peer-socket";
import { Penalties } from "./penalties";
import { PersistService } from "./persistence";
import { SessionRegistry } from "./session-registry";
import { DataStore, PersistStore, SessionStore, checkWritable, createFsStore, createMemoryStore, type BlobStore } from "./storage/index";

/** Counters of a running reflector. */
export interface ReflectorStats {
  /** Sessions in memory, including empty ones not yet dropped. */
  readonly sessions: number;
  /** Open connections, joined or not. */
  readonly connections: number;
  /** Client messages relayed since start. */
  readonly relayed: number;
  /** Connections refused because of the connection caps, since start. */
  readonly refused: number;
  /**
   * Sessions in storage (in memory or not), or `undefined` until the first count finished. Counted
   * at start and after each retention pass, plus the sessions created since.
   */
  readonly stored: number | undefined;
}

/** Whether a new connection from an address may open: if not, the HTTP status and reason to refuse it with. */
export type Admission = { readonly ok: true } | { readonly ok: false; readonly status: 429 | 503; readonly reason: string };

/** What a transport does at the steps of {@link ReflectorCore.close}. */
export interface ShutdownHooks {
  /** Every connection was told to go: stop accepting new ones (e.g. stop listening). */
  readonly connectionsFailed?: () => void;
  /** Every connection closed (or was cut off after the grace period): release the transport. */
  readonly connectionsClosed?: () => Promise<void>;
}

// How long close() waits for clients to finish the closing handshake before cutting them off.
const SHUTDOWN_GRACE_MS = 2000;
/** WebSocket framing a client may add to its Join before it is admitted (header, mask, a pong). */
const PRE_JOIN_SLACK_BYTES = 1024;
const NORMAL_CLOSURE = 1000;
const GC_INTERVAL_MS = 60 * 60 * 1000;
const ADMITTED: Admission = Object.freeze({ ok: true });

/**
 * The reflector without its transport: sessions, the protocol rules, connection caps and
 * penalties, heartbeats and storage collection. A transport asks {@link admit} before it accepts a
 * connection, then hands the socket to {@link accept}; everything else happens here. Every timer
 * runs on the `timers` option.
 */
export class ReflectorCore {
  readonly #options: ResolvedOptions;
  readonly #registry: SessionRegistry;
  readonly #dispatcher: Dispatcher;
  readonly #connections = new Set<Connection>();
  /** Open connections per client address (the per-address cap). */
  readonly #perAddress = new Map<string, number>();
  /** Addresses just closed for flooding, refused new connections for a while. */
  readonly #penalties: Penalties;
  readonly #blobs: BlobStore;
  readonly #store: SessionStore | ClusterStore;
  readonly #cluster: ClusterStore | undefined;
  readonly #mayServe = (): boolean => this.#cluster?.alive ?? true;
  readonly #instruments = new Instruments();
  readonly #data: DataEndpoint;
  readonly #dataStore: DataStore;
  /** Sessions in storage at the last count, and how many had been created when it began. */
  #storedCount: { readonly stored: number; readonly createdBefore: number } | undefined;
  #refused = 0;
  #nextConnectionId = 1;
  #stopHeartbeat: (() => void) | undefined;
  #stopGc: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  /** A core on `blobs` (not checked here: see {@link openReflectorCore}). Call {@link start} to run its timers. */
  constructor(options: ResolvedOptions, blobs: BlobStore) {
    this.#options = options;
    this.#blobs = blobs;
    this.#penalties = new Penalties(options.clock);
    this.#cluster = options.cluster?.store;
    this.#store = this.#cluster ?? new SessionStore(blobs, { retentionMs: options.retentionMs });
    const { maxDataBytes, maxDataBytesPerSession, maxDataBlobsPerSession } = options.caps;
    const cluster = this.#cluster;
    const verifierOf = cluster && (async (id: string) => (await cluster.meta(id))?.verifier);
    const data = new DataStore(blobs, { maxBlobBytes: maxDataBytes, maxSessionBytes: maxDataBytesPerSession, maxSessionBlobs: maxDataBlobsPerSession }, verifierOf);
    this.#dataStore = data;
    this.#data = new DataEndpoint({ store: data, logger: options.logger, uploadTimeoutMs: options.caps.dataUploadTimeoutMs });
    const persist = new PersistService(new PersistStore(blobs, { keep: options.persistVersions }), options.logger);
    this.#registry = new SessionRegistry({
      ...options,
      caps: options.caps,
      store: this.#store,
      cluster: this.#cluster,
      instruments: this.#instruments,
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
      instruments: this.#instruments,
      ...(options.cluster?.proxy ? { forward: (conn: Connection, owner: NodeInfo, join: JoinMessage) => this.#forward(conn, owner, join) } : {}),
    });
    // A node that lost its lease may be paused or cut off: another may own its sessions by now.
    this.#cluster?.onLeaseLost((reason) => {
      options.logger.warn("cluster.lease_lost", { node: this.#cluster?.node.nodeId, reason, sessions: this.#registry.size });
      this.#registry.moveAll(`this node lost its lease: ${reason}`);
    });
  }

  /** What it counted since start, for metrics exporters (see metrics.ts). */
  get instruments(): Instruments {
    return this.#instruments;
  }

  /** The Data API's HTTP endpoint (a transport routes `/data/…` requests to it). */
  get data(): DataEndpoint {
    return this.#data;
  }

  /** The options it runs with, defaults filled in. */
  get options(): ResolvedOptions {
    return this.#options;
  }

  /** Whether {@link close} was called. */
  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /** Starts the heartbeat and storage collection (once; a no-op when closing). */
  start(): void {
    if (this.#stopGc !== undefined || this.#closing !== undefined) return;
    const { timers, heartbeatMs, retentionMs } = this.#options;
    if (heartbeatMs > 0) this.#stopHeartbeat = every(timers, heartbeatMs, () => this.#beat());
    // Retention: collect long-inactive sessions now and then (never the ones in memory).
    this.#collectGarbage();
    this.#stopGc = every(timers, Math.min(retentionMs, GC_INTERVAL_MS), () => this.#collectGarbage(), { unref: true });
  }

  /**
   * Whether a new connection from `address` may open: not while closing (503), not beyond the
   * total cap (503), the address's cap or while the address serves a penalty (429). A refusal
   * is counted in {@link stats}.
   */
  admit(address: string): Admission {
    if (this.#closing !== undefined) return { ok: false, status: 503, reason: "the reflector is shutting down" };
    const { maxConnections, maxConnectionsPerAddress } = this.#options.caps;
    if (this.#connections.size >= maxConnections) {
      return this.#refuse(503, `the reflector is at its cap of ${maxConnections} connections; retry later`, address);
    }
    const penalty = this.#penalties.remaining(address);
    if (penalty > 0) {
      return this.#refuse(429, `your address was closed for exceeding a rate limit; wait ${Math.ceil(penalty / 1000)} s before reconnecting`, address);
    }
    if ((this.#perAddress.get(address) ?? 0) >= maxConnectionsPerAddress) {
      return this.#refuse(429, `more than ${maxConnectionsPerAddress} connections from your address; close some first`, address);
    }
    return ADMITTED;
  }

  #refuse(status: 429 | 503, reason: string, address: string): Admission {
    this.#refused++;
    // One line per refusal would let a flood flood the log too: every 100th is enough to see it.
    if (this.#refused % 100 === 1) this.#options.logger.warn("connection.refused", { status, address, refused: this.#refused });
    return { ok: false, status, reason };
  }

  /**
   * Takes over an open socket (after {@link admit} let it in): it must send its Join within the
   * join timeout, then speaks the protocol until either side closes it.
   */
  accept(socket: PeerSocket, peer: PeerInfo): void {
    const { clock, timers, limits, caps, logger } = this.#options;
    const conn = new Connection(socket, {
      id: this.#nextConnectionId++,
      address: peer.address,
      remote: peer.remote,
      clock,
      timers,
      maxMessagesPerSecond: limits.maxMessagesPerSecond,
      messageBurst: limits.messageBurst,
      maxBytesPerSecond: limits.maxBytesPerSecond,
      byteBurst: limits.byteBurst,
      maxPingsPerSecond: limits.maxPingsPerSecond,
      pingBurst: limits.pingBurst,
      maxBufferedBytes: caps.maxBufferedBytes,
      instruments: this.#instruments,
      ...(this.#cluster !== undefined ? { mayServe: this.#mayServe } : {}),
      onSlowReader: (slow) => {
        logger.warn("connection.slow_reader", { connectionId: slow.id, sessionId: slow.session?.id, viewId: slow.viewId || undefined, remote: slow.remote });
        this.#dispatcher.fail(slow, CloseCode.SlowReader, slowReaderMessage(caps.maxBufferedBytes));
      },
    });
    this.#connections.add(conn);
    this.#perAddress.set(peer.address, (this.#perAddress.get(peer.address) ?? 0) + 1);
    this.#guardPreJoin(conn, socket);
    const dispatcher = this.#dispatcher;
    socket.listen({
      message: (data, isBinary) => dispatcher.onFrame(conn, data, isBinary),
      pong: () => {
        conn.alive = true;
      },
      error: (error) => this.#onSocketError(conn, error),
      close: (code) => this.#onClose(conn, code),
    });
    if (this.#closing !== undefined) conn.fail(CloseCode.ServerShutdown, "the reflector is shutting down");
  }

  /** Closes the storage of a core that never started (its transport could not come up). */
  async discard(): Promise<void> {
    this.#closing ??= Promise.resolve();
    await this.#cluster?.close().catch(() => undefined);
    await this.#blobs.close();
  }

  /** What the health endpoint reports. */
  health(): HealthReport {
    return { sessions: this.#registry.size, connections: this.#connections.size };
  }

  /** Current counters. */
  stats(): ReflectorStats {
    const count = this.#storedCount;
    const stored = count && count.stored + this.#instruments.sessionsCreated - count.createdBefore;
    return { sessions: this.#registry.size, connections: this.#connections.size, relayed: this.#dispatcher.relayed, refused: this.#refused, stored };
  }

  /**
   * Stops the timers, writes what was stamped, tells every client `ServerShutdown` (Error frame
   * and close code 4007), waits for the sockets to close (cutting off stragglers after a grace
   * period) and closes the storage. Calling it again returns the same promise.
   */
  close(hooks: ShutdownHooks = {}): Promise<void> {
    this.#closing ??= this.#shutdown(hooks);
    return this.#closing;
  }

  async #shutdown(hooks: ShutdownHooks): Promise<void> {
    const { logger } = this.#options;
    logger.info("shutdown", { sessions: this.#registry.size, connections: this.#connections.size });
    this.#stopHeartbeat?.();
    this.#stopGc?.();
    // A cluster node hands its sessions to live peers: their clients are redirected there.
    if (this.#cluster !== undefined) await this.#handOver(this.#cluster);
    // Everything stamped is written (and relayed) before the sessions go.
    await this.#registry.drain();
    // Sessions go first so that closing sockets do not stamp and broadcast a view-exit each.
    const timesSaved = this.#registry.disposeAll();
    for (const conn of this.#connections) {
      conn.session = undefined;
      conn.fail(CloseCode.ServerShutdown, "the reflector is shutting down; reconnect (with backoff) later");
    }
    hooks.connectionsFailed?.();
    await this.#drain();
    await hooks.connectionsClosed?.();
    await timesSaved;
    await this.#cluster?.close().catch((error: unknown) => logger.warn("cluster.close.failed", { error }));
    await this.#blobs.close();
    logger.info("closed", { relayed: this.#dispatcher.relayed });
  }

  async #handOver(cluster: ClusterStore): Promise<void> {
    const { logger } = this.#options;
    let nodes: NodeInfo[] = [];
    try {
      nodes = await cluster.liveNodes();
    } catch (error) {
      logger.warn("cluster.nodes.failed", { error });
    }
    const peers = nodes.filter((n) => n.nodeId !== cluster.node.nodeId);
    logger.info("cluster.handover", { node: cluster.node.nodeId, sessions: this.#registry.size, peers: peers.length });
    await this.#registry.handOverAll(peers, cluster.node.nodeId);
  }

  /** Proxy mode: the connection's frames go to the session's owner from now on, and the owner's back (cluster/proxy.ts). */
  #forward(conn: Connection, owner: NodeInfo, join: JoinMessage): void {
    const { caps, limits, logger, timers } = this.#options;
    conn.state = "proxied";
    conn.proxy = new ProxyLink({
      ownerUrl: owner.url,
      joinFrame: encodeClientMessage(join),
      client: conn.proxyTarget(),
      clientAddress: conn.address,
      maxBufferedBytes: caps.maxBufferedBytes,
      // The owner's largest frame is a Sync: a snapshot plus the log after it.
      maxPayload: limits.maxSnapshotBytes + caps.maxLogBytes + 64 * 1024,
      logger,
      logFields: { connectionId: conn.id, sessionId: join.sessionId, viewId: join.viewId },
      timers,
    });
  }

  /** Resolves once every socket closed, terminating stragglers after a grace period. */
  #drain(): Promise<void> {
    if (this.#connections.size === 0) return Promise.resolve();
    const { timers } = this.#options;
    return new Promise<void>((resolve) => {
      const grace = timers.setTimeout(() => {
        for (const conn of this.#connections) conn.terminate();
      }, SHUTDOWN_GRACE_MS);
      this.#drained = () => {
        timers.clearTimeout(grace);
        this.#drained = undefined;
        resolve();
      };
    });
  }

  #collectGarbage(): void {
    // A cluster keeps sessions in tables of their own: their Data blobs, in the shared blob store, go with them.
    const keep = this.#registry.liveIds();
    const collected = this.#cluster === undefined ? this.#store.collectGarbage(keep) : this.#cluster.collectGarbage(keep, (id) => this.#dataStore.deleteAll(id));
    collected
      .then(
        (n) => n > 0 && this.#options.logger.info("storage.collected", { sessions: n }),
        (error: unknown) => this.#options.logger.error("storage.gc.failed", { error }),
      )
      .then(() => this.#countStored());
  }

  /** Counts the stored sessions (a listing: once at start and after each retention pass, never per scrape). */
  async #countStored(): Promise<void> {
    if (this.#closing !== undefined) return;
    const createdBefore = this.#instruments.sessionsCreated;
    try {
      const ids = await this.#store.sessionIds();
      this.#storedCount = { stored: ids.length, createdBefore };
    } catch (error) {
      // A store closed under the count (a shutdown) is no fault.
      if (this.#closing === undefined) this.#options.logger.warn("storage.count.failed", { error });
    }
  }

  #onSocketError(conn: Connection, error: Error): void {
    try {
      // ws reports bad frames (e.g. over maxPayload: code WS_ERR_UNSUPPORTED_MESSAGE_LENGTH, close 1009)
      // and socket faults here, then closes the socket itself.
      this.#options.logger.warn("connection.error", { error, connectionId: conn.id, sessionId: conn.session?.id, remote: conn.remote });
      this.#dispatcher.detach(conn, "error", "away");
    } catch (nested) {
      this.#options.logger.error("internal.error", { error: nested, connectionId: conn.id });
    }
  }

  /**
   * Until it is admitted, a socket may send no more than one Join (it is cut off beyond that, before
   * the transport buffers more) and must send it within the join timeout.
   */
  #guardPreJoin(conn: Connection, socket: PeerSocket): void {
    const { limits, caps, timers, logger } = this.#options;
    const budget = maxJoinFrameBytes(limits) + PRE_JOIN_SLACK_BYTES;
    let received = 0;
    let unwatch: (() => void) | undefined;
    const stopWatching = (): void => {
      unwatch?.();
      unwatch = undefined;
    };
    unwatch = socket.watchIncoming?.((bytes) => {
      if (conn.state === "joined" || conn.state === "proxied" || conn.state === "closed") {
        stopWatching();
        return;
      }
      received += bytes;
      if (received > budget) {
        stopWatching();
        logger.warn("connection.prejoin_too_large", { connectionId: conn.id, remote: conn.remote, bytes: received, budget });
        conn.terminate();
      }
    });
    const timer = timers.setTimeout(() => {
      stopWatching();
      if (conn.state === "open") {
        logger.warn("connection.join_timeout", { connectionId: conn.id, remote: conn.remote });
        conn.fail(CloseCode.Timeout, `no Join within ${caps.joinTimeoutMs} ms of connecting; send Join right after the socket opens`);
      }
    }, caps.joinTimeoutMs);
    unrefTimer(timer);
    conn.onClosed = () => {
      timers.clearTimeout(timer);
      stopWatching();
    };
  }

  #onClose(conn: Connection, code: number): void {
    try {
      conn.closed();
      conn.proxy?.clientClosed(code);
      this.#instruments.closed(code);
      const left = (this.#perAddress.get(conn.address) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(conn.address, left);
      else this.#perAddress.delete(conn.address);
      // A socket closed without a Leave: the client may be coming back (a blip, a restart).
      this.#dispatcher.detach(conn, code === NORMAL_CLOSURE ? "closed" : `closed ${code}`, "away");
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

/**
 * Opens the storage the options name (filesystem for `dataDir`, memory by default) and checks it
 * can be written, then builds a core on it (not started).
 * @throws {ReflectorError} (as a rejection) when the storage cannot be written.
 */
export async function openReflectorCore(options: ResolvedOptions): Promise<ReflectorCore> {
  const blobs = options.storage ?? (options.dataDir !== undefined ? await createFsStore(options.dataDir, { logger: options.logger }) : createMemoryStore());
  try {
    // A read-only or full store would otherwise be noticed only by the first session that writes.
    await checkWritable(blobs);
  } catch (cause) {
    await blobs.close().catch(() => undefined);
    throw new ReflectorError(`cannot start: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  return new ReflectorCore(options, blobs);
}

/**
 * A running reflector core without a listener, for in-process transports and tests: hand it
 * sockets with `core.accept(socket, peer)` (after `core.admit(address)`), drive time through the
 * `timers` option, and `close()` it when done. `port` and `host` are ignored. Storage defaults to
 * memory, as with {@link startReflector}.
 * @throws {ReflectorError} (as a rejection) for invalid options or storage that cannot be written.
 */
export async function createReflectorCore(options?: ReflectorOptions): Promise<ReflectorCore> {
  const core = await openReflectorCore(resolveOptions(options));
  core.start();
  return core;
}
