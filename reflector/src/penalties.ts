import type { Clock } from "./clock";

/** How long an address is refused after its first rate-limit violation, in ms; each further one doubles it. */
const FIRST_PENALTY_MS = 1000;
/** The longest penalty, in ms. */
const MAX_PENALTY_MS = 60_000;
/** An address that broke no limit for this long starts again from the first penalty, in ms. */
const FORGIVE_AFTER_MS = 5 * 60_000;
/** How many addresses are remembered before the forgiven ones are forgotten. */
const PRUNE_AT = 4096;

interface Record {
  strikes: number;
  until: number;
  last: number;
}

/**
 * Addresses that were just closed for flooding are refused new connections for a while (1 s,
 * doubling per repeat up to a minute): a flooder that reconnects at once would otherwise get a
 * fresh burst every time, and its reconnect churn alone would slow everyone else.
 */
export class Penalties {
  readonly #clock: Clock;
  readonly #records = new Map<string, Record>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** `address` broke a rate limit now. */
  strike(address: string): void {
    const now = this.#clock();
    let record = this.#records.get(address);
    if (record === undefined || now - record.last > FORGIVE_AFTER_MS) {
      if (this.#records.size >= PRUNE_AT) this.#prune(now);
      record = { strikes: 0, until: 0, last: now };
      this.#records.set(address, record);
    }
    record.strikes++;
    record.last = now;
    record.until = now + Math.min(MAX_PENALTY_MS, FIRST_PENALTY_MS * 2 ** (record.strikes - 1));
  }

  /** The ms `address` must still wait before connecting again (0: it may). */
  remaining(address: string): number {
    const record = this.#records.get(address);
    if (record === undefined) return 0;
    return Math.max(0, Math.ceil(record.until - this.#clock()));
  }

  #prune(now: number): void {
    for (const [address, record] of this.#records) if (now - record.last > FORGIVE_AFTER_MS) this.#records.delete(address);
  }
}
