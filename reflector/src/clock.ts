/** A monotonic clock in milliseconds (fractions allowed). Injected so tests can drive time. */
export type Clock = () => number;

/** The default clock: `performance.now()`, monotonic and unaffected by wall-clock changes. */
export const performanceClock: Clock = () => performance.now();

/**
 * One session's time: whole milliseconds since the session was created, never decreasing even if
 * the underlying clock stutters backwards.
 */
export class SessionClock {
  readonly #clock: Clock;
  readonly #origin: number;
  #last = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
    this.#origin = clock();
  }

  /** Session time now, in integer ms. */
  now(): number {
    const t = Math.floor(this.#clock() - this.#origin);
    // Clamp: a non-finite or earlier reading must never make stamped times go backwards.
    if (t > this.#last) this.#last = t;
    return this.#last;
  }
}
