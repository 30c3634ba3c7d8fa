import type { StreamEntry } from "@lockstep/protocol";

/** Writes entries durably; resolves once they survive a crash of the reflector process. */
export type PersistEntries = (entries: readonly StreamEntry[]) => Promise<void>;

/**
 * Durable-before-relayed: stamped entries wait here until storage has them, then go out in stamp
 * order. While one batch is being written, newly stamped entries gather into the next batch (a
 * group commit), so the storage round trip is paid per batch, not per message.
 */
export class Outbox {
  readonly #persist: PersistEntries | undefined;
  readonly #deliver: (frame: Uint8Array, entry: StreamEntry) => void;
  readonly #onError: (error: unknown, entries: readonly StreamEntry[]) => void;
  #entries: StreamEntry[] = [];
  #frames: Uint8Array[] = [];
  #flushing = false;
  #idle: Array<() => void> = [];

  constructor(options: {
    persist: PersistEntries | undefined;
    deliver: (frame: Uint8Array, entry: StreamEntry) => void;
    onError: (error: unknown, entries: readonly StreamEntry[]) => void;
  }) {
    this.#persist = options.persist;
    this.#deliver = options.deliver;
    this.#onError = options.onError;
  }

  /** Whether stamped entries are still waiting for storage. */
  get pending(): boolean {
    return this.#entries.length > 0 || this.#flushing;
  }

  /** Queues a stamped entry and its encoded frame. Without storage, it goes out at once. */
  push(entry: StreamEntry, frame: Uint8Array): void {
    if (this.#persist === undefined) {
      this.#deliver(frame, entry);
      return;
    }
    this.#entries.push(entry);
    this.#frames.push(frame);
    if (!this.#flushing) void this.#flush();
  }

  /** Resolves when everything queued so far went out (or failed). */
  drained(): Promise<void> {
    if (!this.pending) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    while (this.#entries.length > 0) {
      const entries = this.#entries;
      const frames = this.#frames;
      this.#entries = [];
      this.#frames = [];
      try {
        await this.#persist!(entries);
      } catch (error) {
        // Not durable, so not relayed: the session cannot go on without a gap. The owner decides.
        this.#onError(error, entries);
        continue;
      }
      for (let i = 0; i < frames.length; i++) this.#deliver(frames[i]!, entries[i]!);
    }
    this.#flushing = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
