import type { StreamEntry } from "@lockstep/protocol";

/** Writes entries durably; resolves once they survive a crash of the reflector process. */
export type PersistEntries = (entries: readonly StreamEntry[]) => Promise<void>;

/** A batch being written. */
interface Flight {
  readonly entries: StreamEntry[];
  readonly frames: Uint8Array[];
  /** undefined while in flight; then whether it was stored, and why not. */
  outcome: { readonly ok: true } | { readonly ok: false; readonly error: unknown } | undefined;
}

/**
 * Durable-before-relayed: stamped entries wait here until storage has them, then go out in stamp
 * order. While batches are being written, newly stamped entries gather into the next batch (a
 * group commit), so the storage round trip is paid per batch, not per message.
 *
 * Up to `maxInFlight` batches are written at once (storage that lands writes in order, see
 * BlobStore.orderedWrites): the first entry of an idle outbox is written at once, entries stamped
 * while a batch is in flight start the next batch at the end of the current callback (so the
 * entries of one socket read share it), and batches go out strictly in order, each once it and
 * every batch before it are stored. When one fails, nothing from it on is relayed.
 */
export class Outbox {
  readonly #persist: PersistEntries | undefined;
  readonly #deliver: (frame: Uint8Array, entry: StreamEntry) => void;
  readonly #deliverAll: ((frames: readonly Uint8Array[], entries: readonly StreamEntry[]) => void) | undefined;
  readonly #onError: (error: unknown, entries: readonly StreamEntry[]) => void;
  readonly #maxInFlight: number;
  #entries: StreamEntry[] = [];
  #frames: Uint8Array[] = [];
  readonly #flights: Flight[] = [];
  #scheduled = false;
  /** A batch failed: the session cannot go on without a gap, so nothing more is written or relayed. */
  #failed = false;
  #idle: Array<() => void> = [];

  constructor(options: {
    persist: PersistEntries | undefined;
    deliver: (frame: Uint8Array, entry: StreamEntry) => void;
    /** Optional: delivers a stored batch at once (else deliver() for each entry). */
    deliverAll?: (frames: readonly Uint8Array[], entries: readonly StreamEntry[]) => void;
    onError: (error: unknown, entries: readonly StreamEntry[]) => void;
    /** Batches written at once; default 1 (each waits for the one before). */
    maxInFlight?: number;
  }) {
    this.#persist = options.persist;
    this.#deliver = options.deliver;
    this.#deliverAll = options.deliverAll;
    this.#onError = options.onError;
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 1);
  }

  /** Whether stamped entries are still waiting for storage. */
  get pending(): boolean {
    return this.#entries.length > 0 || this.#flights.length > 0;
  }

  /** Queues a stamped entry and its encoded frame. Without storage, it goes out at once. */
  push(entry: StreamEntry, frame: Uint8Array): void {
    if (this.#persist === undefined) {
      this.#deliver(frame, entry);
      return;
    }
    if (this.#failed) return;
    this.#entries.push(entry);
    this.#frames.push(frame);
    if (this.#flights.length === 0) this.#launch();
    else if (!this.#scheduled && this.#flights.length < this.#maxInFlight) {
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.#launch();
      });
    }
  }

  /** Resolves when everything queued so far went out (or failed). */
  drained(): Promise<void> {
    if (!this.pending) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Starts writing what gathered, if a batch may start. */
  #launch(): void {
    if (this.#failed || this.#entries.length === 0 || this.#flights.length >= this.#maxInFlight) return;
    const flight: Flight = { entries: this.#entries, frames: this.#frames, outcome: undefined };
    this.#entries = [];
    this.#frames = [];
    this.#flights.push(flight);
    this.#persist!(flight.entries).then(
      () => this.#settle(flight, { ok: true }),
      (error: unknown) => this.#settle(flight, { ok: false, error }),
    );
  }

  /** Records how a batch ended, then relays every batch that ended, in order, up to one that failed. */
  #settle(flight: Flight, outcome: NonNullable<Flight["outcome"]>): void {
    flight.outcome = outcome;
    while (this.#flights.length > 0 && (this.#flights[0] as Flight).outcome !== undefined) {
      const done = this.#flights[0] as Flight;
      const result = done.outcome as NonNullable<Flight["outcome"]>;
      if (!result.ok) {
        // Not durable, so not relayed, and neither is anything after it. The owner decides.
        const lost = [...this.#flights.flatMap((f) => f.entries), ...this.#entries];
        this.#flights.length = 0;
        this.#entries = [];
        this.#frames = [];
        this.#failed = true;
        this.#onError(result.error, lost);
        break;
      }
      this.#flights.shift();
      const { frames, entries } = done;
      if (this.#deliverAll !== undefined && frames.length > 1) this.#deliverAll(frames, entries);
      else for (let i = 0; i < frames.length; i++) this.#deliver(frames[i]!, entries[i]!);
    }
    this.#launch();
    if (!this.pending) for (const resolve of this.#idle.splice(0)) resolve();
  }
}
