import type { TickRate } from "./tps";

/**
 * Croquet's tick multiplier (`tps: "10x3"`: the reflector ticks 10 times a second, models step 30
 * times), done so that replicas cannot diverge. Croquet's client runs ahead of the reflector
 * between its ticks and relies on its reflector holding messages back so none is stamped before a
 * local tick; a Lockstep reflector stamps messages as they come. So here the local ticks trail the
 * stream instead: the replica runs at most `period - period / multiplier` ms behind the latest time
 * heard, catching up in `multiplier` equal steps before the next tick is due. It only ever runs
 * what the stream already holds, in stream order, so every replica's state at every entry is the
 * same as without local ticks; what the multiplier changes is when, locally, models step (futures
 * spread over the tick period instead of running in one burst), at the price of that much added
 * latency — the same latency Croquet's held-back messages have.
 */
export class LocalTicks {
  /** Local ms between two local ticks. */
  readonly #step: number;
  /** How far behind the latest heard time the replica may trail: (multiplier − 1) steps. */
  readonly #lag: number;
  #heard = 0;
  #heardAt = 0;
  #limit = 0;

  constructor(rate: TickRate) {
    const period = 1000 / rate.tps;
    this.#step = period / rate.multiplier;
    this.#lag = period - this.#step;
  }

  /** The reflector's time `time` was heard at local time `at`. */
  heard(time: number, at: number): void {
    this.#heard = time;
    this.#heardAt = at;
  }

  /** The model time the replica may run to at local time `now` (never less than before). */
  limit(now: number): number {
    const steps = Math.floor(Math.max(0, now - this.#heardAt) / this.#step);
    const limit = Math.min(this.#heard, Math.round(this.#heard - this.#lag + steps * this.#step));
    if (limit > this.#limit) this.#limit = limit;
    return this.#limit;
  }

  /** The local time of the next local tick, or undefined once the replica may run to the latest time heard. */
  nextAt(now: number): number | undefined {
    if (this.limit(now) >= this.#heard) return undefined;
    const steps = Math.floor(Math.max(0, now - this.#heardAt) / this.#step) + 1;
    return this.#heardAt + steps * this.#step;
  }
}
