/*
 * The group commit: appends of different sessions that arrive in the same turn of the event loop
 * (or while a flush is in flight) go to PostgreSQL in one statement, so the database sees one
 * round trip and one commit per batch instead of one per append. One flush at a time; the next
 * gathers what queued meanwhile. No timers: a batch waits for nothing but the flush before it.
 */
import { isRetryable } from "../storage/pg-driver";

/** One session's segment, fenced on the epoch and the last seq it continues. */
export interface PendingAppend {
  readonly id: string;
  readonly epoch: number;
  /** The stored last_seq this segment continues. */
  readonly prevSeq: number;
  readonly newSeq: number;
  readonly newTime: number;
  /** encodeSegment(entries). */
  readonly segment: Uint8Array;
}

/** Counters of a {@link GroupCommit}, for tests and benchmarks. */
export interface GroupCommitStats {
  /** Statements sent (a retried batch counts twice). */
  readonly flushes: number;
  /** Appends submitted. */
  readonly appends: number;
  /** Most appends in one statement. */
  readonly largestBatch: number;
  /** Batches sent again after a deadlock or serialization failure. */
  readonly retries: number;
}

/** Limits of one batch. */
export interface BatchLimits {
  readonly maxSessions: number;
  readonly maxBytes: number;
}

/** Default {@link BatchLimits}: 256 sessions or 4 MiB of segments, whichever comes first. */
export const DEFAULT_BATCH_LIMITS: BatchLimits = { maxSessions: 256, maxBytes: 4 * 1024 * 1024 };

interface Queued {
  readonly append: PendingAppend;
  readonly resolve: (stored: boolean) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Batches {@link PendingAppend}s into single statements run by `write`, which returns the ids
 * whose segment was stored (the others were fenced).
 */
export class GroupCommit {
  readonly #write: (batch: readonly PendingAppend[]) => Promise<ReadonlySet<string>>;
  readonly #limits: BatchLimits;
  #queue: Queued[] = [];
  #scheduled = false;
  #flushing: Promise<void> | undefined;
  #stats = { flushes: 0, appends: 0, largestBatch: 0, retries: 0 };

  constructor(write: (batch: readonly PendingAppend[]) => Promise<ReadonlySet<string>>, limits: BatchLimits = DEFAULT_BATCH_LIMITS) {
    this.#write = write;
    this.#limits = limits;
  }

  get stats(): GroupCommitStats {
    return { ...this.#stats };
  }

  /** Whether nothing is queued or in flight. */
  get idle(): boolean {
    return this.#queue.length === 0 && this.#flushing === undefined && !this.#scheduled;
  }

  /**
   * Queues `append` for the next batch. Resolves `true` once it is committed, `false` if it was
   * fenced (no row matched its session, epoch and previous seq); rejects if the statement failed.
   */
  submit(append: PendingAppend): Promise<boolean> {
    this.#stats.appends++;
    return new Promise<boolean>((resolve, reject) => {
      this.#queue.push({ append, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#flushing !== undefined) return;
    this.#scheduled = true;
    // One turn of the event loop: appends submitted by other sessions meanwhile join the batch.
    setImmediate(() => {
      this.#scheduled = false;
      this.#flushing = this.#flush().finally(() => {
        this.#flushing = undefined;
        if (this.#queue.length > 0) this.#schedule();
      });
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#take();
    if (batch.length === 0) return;
    this.#stats.largestBatch = Math.max(this.#stats.largestBatch, batch.length);
    const appends = batch.map((queued) => queued.append);
    let stored: ReadonlySet<string>;
    try {
      stored = await this.#send(appends);
    } catch (error) {
      for (const queued of batch) queued.reject(error);
      return;
    }
    for (const queued of batch) queued.resolve(stored.has(queued.append.id));
  }

  async #send(appends: readonly PendingAppend[]): Promise<ReadonlySet<string>> {
    this.#stats.flushes++;
    try {
      return await this.#write(appends);
    } catch (error) {
      if (!isRetryable(error)) throw error;
      // A deadlock with another multi-row statement (a retention pass, a fenced old owner's
      // batch): the statement rolled back whole, so sending it again is safe.
      this.#stats.retries++;
      this.#stats.flushes++;
      return this.#write(appends);
    }
  }

  /** The next batch: in queue order, within the limits, at most one append per session. */
  #take(): Queued[] {
    const batch: Queued[] = [];
    const rest: Queued[] = [];
    const ids = new Set<string>();
    let bytes = 0;
    for (const queued of this.#queue) {
      const size = queued.append.segment.length;
      const fits = batch.length < this.#limits.maxSessions && (batch.length === 0 || bytes + size <= this.#limits.maxBytes);
      // A session seen once (taken or deferred) defers its later appends too: they must follow it.
      if (fits && !ids.has(queued.append.id)) {
        batch.push(queued);
        bytes += size;
      } else {
        rest.push(queued);
      }
      ids.add(queued.append.id);
    }
    this.#queue = rest;
    return batch;
  }
}
