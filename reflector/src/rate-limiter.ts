import type { Clock } from "./clock";

/**
 * A token bucket: `burst` tokens when full, refilled at `ratePerSecond`. Over any window of `t`
 * seconds it allows at most `burst + ratePerSecond × t` tokens taken.
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

  /** Takes `n` tokens (default one); `false`, taking none, when fewer are left (the caller is over its rate). */
  take(n = 1): boolean {
    this.#refill();
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /** Whether the bucket is full again (nothing would be lost by forgetting it). */
  get full(): boolean {
    this.#refill();
    return this.#tokens >= this.#capacity;
  }

  #refill(): void {
    const now = this.#clock();
    const elapsed = now - this.#last;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.#capacity, this.#tokens + elapsed * this.#perMs);
      this.#last = now;
    }
  }
}

/** How many keys a {@link KeyedBuckets} holds before it forgets the full ones. */
const PRUNE_AT = 4096;

/**
 * One token bucket per key (a client address), created on first use. Full buckets carry no
 * information, so they are forgotten whenever many keys have accumulated: memory stays bounded by
 * the keys active within one refill period.
 */
export class KeyedBuckets {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #rate: number;
  readonly #burst: number;
  readonly #clock: Clock;

  constructor(ratePerSecond: number, burst: number, clock: Clock) {
    this.#rate = ratePerSecond;
    this.#burst = burst;
    this.#clock = clock;
  }

  /** Takes a token from `key`'s bucket; `false` when that key is over its rate. */
  take(key: string): boolean {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= PRUNE_AT) this.#prune();
      bucket = new TokenBucket(this.#rate, this.#burst, this.#clock);
      this.#buckets.set(key, bucket);
    }
    return bucket.take();
  }

  /** Keys with a bucket in memory. */
  get size(): number {
    return this.#buckets.size;
  }

  #prune(): void {
    for (const [key, bucket] of this.#buckets) if (bucket.full) this.#buckets.delete(key);
  }
}
