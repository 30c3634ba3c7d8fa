import { CloseCode, ProtocolError, realTimers, type TimerHandle, type Timers } from "@lockstep/protocol";
import type { Clock } from "./clock";
import type { Logger } from "./logger";
import { KeyedBuckets, TokenBucket } from "./rate-limiter";
import { Session, type SessionAccess, type SessionLogCaps, type SnapshotPolicy } from "./session";
import type { SessionStore } from "./storage/index";

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
  readonly store: SessionStore | undefined;
  /**
   * The persisted data a new session of `slot` starts from (PROTOCOL.md §13.2); throws (AuthFailed)
   * if the token is not the slot's. Undefined: sessions start with none.
   */
  readonly startingPoint?: (sessionId: string, slot: string, token: Uint8Array) => Promise<Uint8Array>;
  /** How long a view whose connection dropped keeps its place, in ms (default `DEFAULT_VIEW_GRACE_MS`). */
  readonly viewGraceMs?: number;
  /** Caps of every session's log. */
  readonly caps: SessionLogCaps & CreationRates;
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
    const store = this.#options.store;
    const stored = store ? await store.load(sessionId) : undefined;
    if (stored?.recovered) this.#options.logger.warn("storage.recovered", { ...stored.recovered });
    let persisted = stored?.persisted;
    if (!stored) {
      this.#chargeCreation(request);
      const { startingPoint } = this.#options;
      persisted = request.slot !== "" && startingPoint ? await startingPoint(sessionId, request.slot, request.slotToken) : undefined;
      await store?.create({ sessionId, persistentId: request.persistentId, tps: request.tps, verifier: request.access.verifier, check: request.access.check, createdAt: Date.now() }, persisted);
    }
    const session = new Session({
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
        appendEntries: (entries) => store.appendEntries(sessionId, entries),
        putSnapshot: (snapshot, views) => store.putSnapshot(sessionId, { ...snapshot, views }),
        putTime: (time, exact) => store.putTime(sessionId, time, { exact }),
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
    await Promise.all(sessions.map((s) => this.#saveTime(s)));
  }

  async #saveTime(session: Session): Promise<void> {
    try {
      await session.saveTime();
    } catch (error) {
      this.#options.logger.warn("storage.time.failed", { sessionId: session.id, error });
    }
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
    void this.#saveTime(session);
    this.#options.logger.info("session.dropped", { sessionId: session.id, lastSeq: session.lastSeq, idleMs: this.#options.sessionIdleMs });
  }
}
