/** A monotonic clock in milliseconds (fractions allowed). Injected so tests can drive time. */
export type Clock = () => number;

/** The default clock: `performance.now()`, monotonic and unaffected by wall-clock changes. */
export const performanceClock: Clock = () => performance.now();

/**
 * One session's time: whole milliseconds since the session was created (counting only time the
 * session was in memory), never decreasing even if the underlying clock stutters backwards.
 */
export class SessionClock {
  readonly #clock: Clock;
  readonly #origin: number;
  #last: number;

  /** `start`: the session time to continue from (a session reloaded after a restart). */
  constructor(clock: Clock, start = 0) {
    this.#clock = clock;
    this.#last = start;
    this.#origin = clock() - start;
  }

  /** Session time now, in integer ms. */
  now(): number {
    const t = Math.floor(this.#clock() - this.#origin);
    // Clamp: a non-finite or earlier reading must never make stamped times go backwards.
    if (t > this.#last) this.#last = t;
    return this.#last;
  }
}
