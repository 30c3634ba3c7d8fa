import type { Clock } from "./clock";
import type { Logger } from "./logger";
import { Session, type SessionAccess, type SnapshotPolicy } from "./session";

/** Options of a {@link SessionRegistry}. */
export interface SessionRegistryOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** How long a session with no members stays in memory before it is dropped, in ms. */
  readonly sessionIdleMs: number;
  readonly snapshots: SnapshotPolicy;
}

/**
 * The live sessions by id. A session is created by its first join and dropped `sessionIdleMs`
 * after its last member left, unless someone joins again in between.
 */
export class SessionRegistry {
  readonly #options: SessionRegistryOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #dropTimers = new Map<Session, ReturnType<typeof setTimeout>>();

  constructor(options: SessionRegistryOptions) {
    this.#options = options;
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
   * The session `sessionId`, created with `tps` and the creator's `access` if it is not in memory.
   * Cancels a pending drop: the caller is about to join it.
   */
  acquire(sessionId: string, tps: number, access: SessionAccess): Session {
    let session = this.#sessions.get(sessionId);
    if (session === undefined) {
      session = new Session({
        sessionId,
        tps,
        clock: this.#options.clock,
        logger: this.#options.logger,
        onEmpty: (s) => this.release(s),
        access,
        snapshots: this.#options.snapshots,
      });
      this.#sessions.set(sessionId, session);
      this.#options.logger.info("session.created", { sessionId, tps });
    } else {
      this.#cancelDrop(session);
    }
    return session;
  }

  /** Schedules an empty session to be dropped after `sessionIdleMs`. No-op if it has members. */
  release(session: Session): void {
    if (session.size > 0 || this.#sessions.get(session.id) !== session) return;
    this.#cancelDrop(session);
    this.#dropTimers.set(
      session,
      setTimeout(() => this.#drop(session), this.#options.sessionIdleMs),
    );
  }

  /** Disposes every session and cancels every pending drop (reflector shutdown). */
  disposeAll(): void {
    for (const timer of this.#dropTimers.values()) clearTimeout(timer);
    this.#dropTimers.clear();
    for (const session of this.#sessions.values()) session.dispose();
    this.#sessions.clear();
  }

  #cancelDrop(session: Session): void {
    const timer = this.#dropTimers.get(session);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#dropTimers.delete(session);
  }

  #drop(session: Session): void {
    this.#dropTimers.delete(session);
    // Defensive: whatever happened since the timer was set, never drop a session that has members.
    if (session.size > 0 || this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    session.dispose();
    this.#options.logger.info("session.dropped", { sessionId: session.id, lastSeq: session.lastSeq, idleMs: this.#options.sessionIdleMs });
  }
}
