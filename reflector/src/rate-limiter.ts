import type { Clock } from "./clock";

/**
 * A token bucket: `burst` tokens when full, refilled at `ratePerSecond`. Over any window of `t`
 * seconds it allows at most `burst + ratePerSecond × t` takes.
 */
export class TokenBucket {
  readonly #clock: Clock;
  readonly #perMs: number;
  readonly #capacity: number;
  #tokens: number;
  #last: number;

  constructor(ratePerSecond: number, burst: number, clock: Clock) {
    this.#clock = clock;
    this.#perMs = ratePerSecond / 1000;
    // A bucket that can never hold one token would refuse everything; treat that as a burst of one.
    this.#capacity = Math.max(1, burst);
    this.#tokens = this.#capacity;
    this.#last = clock();
  }

  /** Takes one token; `false` when the bucket is empty (the caller is over its rate). */
  take(): boolean {
    const now = this.#clock();
    const elapsed = now - this.#last;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.#capacity, this.#tokens + elapsed * this.#perMs);
      this.#last = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
