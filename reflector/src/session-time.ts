import { SessionClock, type Clock } from "./clock";
import type { Logger } from "./logger";

/**
 * How far ahead of the time clients may see the reflector keeps a durable watermark, in ms. A
 * restart continues from the watermark, so the stored promise must run ahead of every tick; it is
 * renewed when half of it is used, so a busy session writes it every couple of seconds.
 */
export const TIME_LEAD_MS = 4000;

/** Stores a session's time watermark durably (resolves once it survives a crash). */
export type SaveTime = (time: number, exact?: boolean) => Promise<void>;

/**
 * A session's time as clients see it, which must never go backwards — not even across a crash of
 * the reflector. Entries carry their time and are stored before they are relayed; ticks, Syncs and
 * Pongs are not stored, so the times they show are capped by a watermark stored ahead of them
 * ({@link TIME_LEAD_MS}). A restarted reflector continues from the watermark: model time may jump
 * forward by up to the lead, never back.
 */
export class SessionTime {
  readonly #clock: SessionClock;
  readonly #saveTime: SaveTime | undefined;
  readonly #logger: Logger;
  readonly #sessionId: string;
  /** Visible times may go up to here: storage holds it (Infinity without storage). */
  #granted: number;
  /** The latest time any client was sent (a relayed entry, a tick, a Sync). */
  #shown: number;
  #extending = false;

  /** `start`: where a reloaded session continues (its stored watermark or last entry time). */
  constructor(options: { clock: Clock; start: number; save: SaveTime | undefined; logger: Logger; sessionId: string }) {
    this.#clock = new SessionClock(options.clock, options.start);
    this.#saveTime = options.save;
    this.#logger = options.logger;
    this.#sessionId = options.sessionId;
    this.#granted = options.save === undefined ? Infinity : options.start;
    this.#shown = options.start;
  }

  /** Time to stamp an entry with (entries are stored before anyone sees them, so they need no watermark). */
  now(): number {
    return this.#clock.now();
  }

  /** The latest time a client was shown. */
  get shown(): number {
    return this.#shown;
  }

  /**
   * A time to show a client outside an entry (tick, Sync, Pong): now, but no later than the stored
   * watermark, and never earlier than what was shown before.
   */
  visible(): number {
    this.extend();
    const t = Math.max(this.#shown, Math.min(this.#clock.now(), this.#granted));
    this.#shown = t;
    return t;
  }

  /** An entry stamped at `time` went out: it is durable, so it raises the watermark too. */
  relayed(time: number): void {
    if (time > this.#shown) this.#shown = time;
    if (time > this.#granted) this.#granted = time;
  }

  /** Renews the stored watermark when half of its lead is used (on every visible time, and when the session wakes up). */
  extend(): void {
    const save = this.#saveTime;
    if (save === undefined || this.#extending) return;
    const now = this.#clock.now();
    if (now + TIME_LEAD_MS / 2 <= this.#granted) return;
    const target = now + TIME_LEAD_MS;
    this.#extending = true;
    save(target).then(
      () => {
        if (target > this.#granted) this.#granted = target;
      },
      // Until storage answers again, ticks stop advancing model time: nothing a client sees gets ahead of storage.
      (error: unknown) => this.#logger.error("storage.time.failed", { sessionId: this.#sessionId, time: target, error }),
    ).finally(() => (this.#extending = false));
  }

  /** Stores the time shown so far (a clean stop), so a restart continues from exactly there. */
  async save(): Promise<void> {
    await this.#saveTime?.(this.#shown, true);
  }
}
