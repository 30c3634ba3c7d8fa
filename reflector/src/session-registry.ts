import { CloseCode, ProtocolError, realTimers, type TimerHandle, type Timers } from "@lockstep/protocol";
import type { Clock } from "./clock";
import type { Instruments } from "./instruments";
import type { Logger } from "./logger";
import { KeyedBuckets, TokenBucket } from "./rate-limiter";
import { Session, type SessionAccess, type SessionLogCaps, type SnapshotPolicy } from "./session";
import { SessionElsewhere, successorOf } from "./cluster/routing";
import { isFenced, type ClusterStore, type NodeInfo } from "./cluster/types";
import type { SessionStore, StoredSession } from "./storage/index";

/** How fast sessions may be created, whole reflector and per client address. */
export interface CreationRates {
  readonly newSessionsPerMinute: number;
  readonly newSessionsPerAddressPerMinute: number;
}

/** Options of a {@link SessionRegistry}. */
export interface SessionRegistryOptions {
  readonly clock: Clock;
  /** Schedules session drops and every session's timers. Default `realTimers`. */
  readonly timers?: Timers;
  readonly logger: Logger;
  /** How long a session with no members stays in memory before it is dropped, in ms. */
  readonly sessionIdleMs: number;
  readonly snapshots: SnapshotPolicy;
  /** Durable storage; undefined keeps sessions in memory only. */
  readonly store: SessionStore | ClusterStore | undefined;
  /**
   * This node's handle on its cluster (the same object as `store`): sessions are claimed before
   * they are served, a session another live node owns is refused with {@link SessionElsewhere},
   * and sessions dropped from memory are released.
   */
  readonly cluster?: ClusterStore;
  /**
   * The persisted data a new session of `slot` starts from (PROTOCOL.md §13.2); throws (AuthFailed)
   * if the token is not the slot's. Undefined: sessions start with none.
   */
  readonly startingPoint?: (sessionId: string, slot: string, token: Uint8Array) => Promise<Uint8Array>;
  /** How long a view whose connection dropped keeps its place, in ms (default `DEFAULT_VIEW_GRACE_MS`). */
  readonly viewGraceMs?: number;
  /** Caps of every session's log. */
  readonly caps: SessionLogCaps & CreationRates;
  /** Where session creations and storage append latency are counted. */
  readonly instruments: Instruments;
}

/** What a join says about the session it wants. */
export interface SessionRequest {
  readonly sessionId: string;
  readonly persistentId: string;
  readonly tps: number;
  readonly access: SessionAccess;
  /** The persistence slot a new session starts from, or empty. */
  readonly slot: string;
  readonly slotToken: Uint8Array;
  /** The joining client's address (per-address creation rate). */
  readonly address: string;
}

/**
 * The sessions in memory by id. A session is loaded (or created) by a join and dropped from memory
 * `sessionIdleMs` after its last member left, unless someone joins again in between; with
 * storage, a later join loads it again.
 */
export class SessionRegistry {
  readonly #options: SessionRegistryOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #dropTimers = new Map<Session, TimerHandle>();
  readonly #timers: Timers;
  readonly #opening = new Map<string, Promise<Session>>();
  readonly #created: TokenBucket;
  readonly #createdByAddress: KeyedBuckets;
  #handingOver = false;

  constructor(options: SessionRegistryOptions) {
    this.#options = options;
    this.#timers = options.timers ?? realTimers;
    const { newSessionsPerMinute, newSessionsPerAddressPerMinute } = options.caps;
    this.#created = new TokenBucket(newSessionsPerMinute / 60, newSessionsPerMinute, options.clock);
    this.#createdByAddress = new KeyedBuckets(newSessionsPerAddressPerMinute / 60, newSessionsPerAddressPerMinute, options.clock);
  }

  /** Number of sessions in memory, including empty ones waiting to be dropped. */
  get size(): number {
    return this.#sessions.size;
  }

  /** The session with this id, if it is in memory. */
  get(sessionId: string): Session | undefined {
    return this.#sessions.get(sessionId);
  }

  /**
   * The session a join asks for: in memory, else loaded from storage (a restarted reflector
   * continues it), else created with the joiner's tps and access. Cancels a pending drop: the
   * caller is about to join it. Concurrent joins of one session share one load.
   */
  open(request: SessionRequest): Promise<Session> {
    if (this.#handingOver) return Promise.reject(new ProtocolError("this reflector node is handing its sessions over and shutting down; reconnect to another node", CloseCode.ServerShutdown));
    const live = this.#sessions.get(request.sessionId);
    if (live !== undefined) {
      this.#cancelDrop(live);
      return Promise.resolve(live);
    }
    let opening = this.#opening.get(request.sessionId);
    if (opening === undefined) {
      opening = this.#load(request).finally(() => this.#opening.delete(request.sessionId));
      this.#opening.set(request.sessionId, opening);
    }
    return opening;
  }

  async #load(request: SessionRequest): Promise<Session> {
    const { sessionId } = request;
    const { store, cluster } = this.#options;
    let stored: StoredSession | undefined;
    let persisted: Uint8Array | undefined;
    if (cluster !== undefined) {
      ({ stored, persisted } = await this.#claim(cluster, request));
    } else {
      stored = store ? await store.load(sessionId) : undefined;
      persisted = stored?.persisted;
      if (!stored) {
        persisted = await this.#startingPoint(request);
        await (store as SessionStore | undefined)?.create(metaOf(request), persisted);
        this.#options.instruments.sessionsCreated++;
      }
    }
    if (stored?.recovered) this.#options.logger.warn("storage.recovered", { ...stored.recovered });
    const { clock, instruments } = this.#options;
    // Set right below: the storage callbacks of a fenced write end this session.
    let session: Session | undefined;
    const fenced = (error: unknown): never => {
      if (isFenced(error)) session?.moved(error.message);
      throw error;
    };
    session = new Session({
      sessionId,
      persistentId: stored?.meta.persistentId ?? request.persistentId,
      caps: this.#options.caps,
      tps: stored?.meta.tps ?? request.tps,
      clock: this.#options.clock,
      timers: this.#timers,
      logger: this.#options.logger,
      onEmpty: (s) => this.release(s),
      onBroken: (s) => this.#forget(s),
      access: stored?.meta ?? request.access,
      snapshots: this.#options.snapshots,
      storage: store && {
        appendEntries: async (entries) => {
          // Timed here, around the store: one observation per group commit, not per entry.
          const started = clock();
          await store.appendEntries(sessionId, entries);
          instruments.observeAppend((clock() - started) / 1000);
        },
        // The cluster store's writes are fenced statements on a pool: one at a time per session.
        appendsInFlight: cluster === undefined ? (store as SessionStore).appendsInFlight : 1,
        putSnapshot: (snapshot, views) => store.putSnapshot(sessionId, { ...snapshot, views }),
        putTime: (time, exact) => store.putTime(sessionId, time, { exact }).catch(fenced),
        readEntries: async () => (await store.load(sessionId))?.entries ?? [],
      },
      persisted,
      restored: stored && {
        snapshot: stored.snapshot,
        entries: stored.entries,
        lastSeq: stored.lastSeq,
        lastTime: stored.lastTime,
        timeWatermark: stored.timeWatermark,
        liveViews: stored.liveViews,
      },
      viewGraceMs: this.#options.viewGraceMs,
      ...(cluster !== undefined ? { mayServe: () => cluster.alive } : {}),
    });
    this.#sessions.set(sessionId, session);
    store?.touch(sessionId).catch((error: unknown) => this.#options.logger.warn("storage.touch.failed", { sessionId, error }));
    if (stored) {
      this.#options.logger.info("session.loaded", { sessionId, tps: session.tps, lastSeq: stored.lastSeq, snapshotSeq: stored.snapshot?.seq, entries: stored.entries.length });
    } else {
      this.#options.logger.info("session.created", { sessionId, tps: session.tps });
    }
    return session;
  }

  /**
   * A cluster node's way to a session: claim it (taking it over if nobody alive owns it), or
   * create it; a session a live node owns elsewhere is a {@link SessionElsewhere}. Creations race
   * with other nodes' (simultaneous first joins): the loser claims what the winner created.
   */
  async #claim(cluster: ClusterStore, request: SessionRequest): Promise<{ stored?: StoredSession; persisted?: Uint8Array }> {
    let persisted: Uint8Array | undefined;
    let charged = false;
    for (let attempt = 0; attempt < 3; attempt++) {
      const claim = await cluster.claim(request.sessionId);
      if (claim.kind === "owned") {
        this.#options.instruments.claims++;
        this.#options.logger.info("session.claimed", { sessionId: request.sessionId, epoch: claim.epoch, lastSeq: claim.stored.lastSeq });
        return { stored: claim.stored, persisted: claim.stored.persisted };
      }
      if (claim.kind === "elsewhere") throw new SessionElsewhere(request.sessionId, claim.owner);
      if (!charged) {
        persisted = await this.#startingPoint(request);
        charged = true;
      }
      if (await cluster.create(metaOf(request), persisted ?? new Uint8Array(0))) {
        this.#options.instruments.sessionsCreated++;
        return { persisted };
      }
    }
    throw new Error(`session ${request.sessionId} kept changing owner while this node claimed it`);
  }

  /** Charges a new session's creation and fetches the persisted data it starts from (none without a slot). */
  async #startingPoint(request: SessionRequest): Promise<Uint8Array | undefined> {
    this.#chargeCreation(request);
    const { startingPoint } = this.#options;
    return request.slot !== "" && startingPoint ? startingPoint(request.sessionId, request.slot, request.slotToken) : undefined;
  }

  /**
   * Takes a token for creating one more session, per address and for the whole reflector.
   * @throws {ProtocolError} `RateLimited` (this address) or `Overloaded` (everyone) when out of them.
   */
  #chargeCreation(request: SessionRequest): void {
    const { newSessionsPerMinute, newSessionsPerAddressPerMinute } = this.#options.caps;
    if (!this.#createdByAddress.take(request.address)) {
      this.#options.logger.warn("session.rate_limited", { sessionId: request.sessionId, address: request.address });
      throw new ProtocolError(`more than ${newSessionsPerAddressPerMinute} new sessions per minute from your address; retry later`, CloseCode.RateLimited);
    }
    if (!this.#created.take()) {
      this.#options.logger.warn("session.overloaded", { sessionId: request.sessionId, address: request.address });
      throw new ProtocolError(`the reflector creates at most ${newSessionsPerMinute} sessions per minute; retry with backoff`, CloseCode.Overloaded);
    }
  }

  /** Ids of the sessions in memory. */
  liveIds(): Set<string> {
    return new Set(this.#sessions.keys());
  }

  /** Resolves once every session in memory has written and relayed what it stamped. */
  async drain(): Promise<void> {
    await Promise.all([...this.#opening.values()].map((p) => p.catch(() => undefined)));
    await Promise.all([...this.#sessions.values()].map((s) => s.drained()));
  }

  #forget(session: Session): void {
    this.#cancelDrop(session);
    if (this.#sessions.get(session.id) === session) this.#sessions.delete(session.id);
  }

  /** Schedules an empty session to be dropped after `sessionIdleMs`. No-op if it has members. */
  release(session: Session): void {
    if (!session.empty || this.#sessions.get(session.id) !== session) return;
    this.#cancelDrop(session);
    this.#dropTimers.set(
      session,
      this.#timers.setTimeout(() => this.#drop(session), this.#options.sessionIdleMs),
    );
  }

  /**
   * Disposes every session and cancels every pending drop (reflector shutdown). Each session's time
   * is stored first, so a restart continues from exactly the time its clients last saw.
   */
  async disposeAll(): Promise<void> {
    for (const timer of this.#dropTimers.values()) this.#timers.clearTimeout(timer);
    this.#dropTimers.clear();
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const session of sessions) session.dispose();
    // A disposed session stamps nothing more, but a write begun since drain() may still be under way.
    await Promise.all(sessions.map(async (s) => {
      await s.drained();
      await this.#saveTime(s);
    }));
  }

  async #saveTime(session: Session): Promise<void> {
    try {
      await session.saveTime();
    } catch (error) {
      this.#options.logger.warn("storage.time.failed", { sessionId: session.id, error });
    }
  }

  /**
   * A session no longer held in memory: a single node's store drops what it caches of it (or it
   * would keep it for every session served since the start); a cluster node gives it up, so any
   * node may take it at once.
   */
  async #release(sessionId: string): Promise<void> {
    if (this.#sessions.has(sessionId)) return;
    if (this.#options.cluster === undefined) {
      const { store } = this.#options;
      if (store !== undefined && "forget" in store) store.forget(sessionId);
      return;
    }
    try {
      await this.#options.cluster.release(sessionId);
    } catch (error) {
      this.#options.logger.warn("cluster.release.failed", { sessionId, error });
    }
  }

  /** This node may no longer serve anything (its cluster lease was lost): every session moves. */
  moveAll(reason: string): void {
    for (const session of [...this.#sessions.values()]) session.moved(reason);
  }

  /**
   * A draining cluster node hands every session over: once what it stamped is stored, the time
   * is saved, the session released, and its clients are redirected to the live node that
   * `nodes` rank first for it (all of a session's clients to the same one); without another live
   * node they get `ServerShutdown`.
   */
  async handOverAll(nodes: readonly NodeInfo[], self: string): Promise<void> {
    this.#handingOver = true;
    // Joins already loading a session finish first (new ones are refused from now on).
    await Promise.all([...this.#opening.values()].map((p) => p.catch(() => undefined)));
    for (const timer of this.#dropTimers.values()) this.#timers.clearTimeout(timer);
    this.#dropTimers.clear();
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(
      sessions.map(async (session) => {
        session.freeze();
        await session.drained();
        await this.#saveTime(session);
        await this.#release(session.id);
        const to = successorOf(session.id, nodes, self);
        session.handOver(to?.url);
        this.#options.logger.info("session.handed_over", { sessionId: session.id, lastSeq: session.lastSeq, to: to?.nodeId, url: to?.url });
      }),
    );
  }

  #cancelDrop(session: Session): void {
    const timer = this.#dropTimers.get(session);
    if (timer === undefined) return;
    this.#timers.clearTimeout(timer);
    this.#dropTimers.delete(session);
  }

  #drop(session: Session): void {
    this.#dropTimers.delete(session);
    // Defensive: whatever happened since the timer was set, never drop a session that has members.
    if (!session.empty || this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    session.dispose();
    void this.#saveTime(session).then(() => this.#release(session.id));
    this.#options.logger.info("session.dropped", { sessionId: session.id, lastSeq: session.lastSeq, idleMs: this.#options.sessionIdleMs });
  }
}

function metaOf(request: SessionRequest): Parameters<SessionStore["create"]>[0] {
  const { sessionId, persistentId, tps, access } = request;
  return { sessionId, persistentId, tps, verifier: access.verifier, check: access.check, createdAt: Date.now() };
}
