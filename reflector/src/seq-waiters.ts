/** Promises that resolve once a sequence number is reached, or when they are all released. */
export class SeqWaiters {
  #waiters: Array<{ readonly seq: number; readonly resolve: () => void }> = [];

  /** Resolves once {@link reached} passes `seq` (or {@link releaseAll}). */
  wait(seq: number): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ seq, resolve }));
  }

  /** Entries up to `seq` went out: wakes those waiting for them (cheap when nobody waits: the hot path calls it). */
  reached(seq: number): void {
    if (this.#waiters.length === 0) return;
    const due = this.#waiters.filter((w) => w.seq <= seq);
    if (due.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.seq > seq);
    for (const w of due) w.resolve();
  }

  /** Wakes everyone (the session ended). */
  releaseAll(): void {
    const all = this.#waiters;
    this.#waiters = [];
    for (const w of all) w.resolve();
  }
}
