import { MessageType, type StreamEntry } from "@lockstep/protocol";

/**
 * Bytes an entry is charged for against a session's log caps: its variable fields plus what an
 * entry costs in memory anyway (an object, its views and the encoded frame's header).
 */
export function entryBytes(e: StreamEntry): number {
  switch (e.type) {
    case MessageType.Relay:
      return 128 + e.payload.length;
    case MessageType.ViewJoin:
      return 160 + e.viewData.length;
    case MessageType.PersistData:
      return 160 + e.blob.length;
    default:
      return 160;
  }
}

/**
 * A session's log since its latest snapshot: what a joiner replays. The newest entries are kept in
 * memory up to `maxMemoryBytes`; older ones, already durable, are evicted and read back from
 * storage when a joiner needs them. The log's byte size counts every entry since the snapshot,
 * in memory or not, so the session can cap it.
 */
export class SessionLog {
  readonly #maxMemoryBytes: number;
  /** In-memory entries: the log's suffix, contiguous in seq. */
  #entries: StreamEntry[] = [];
  #head = 0;
  #memoryBytes = 0;
  /** Seq of the latest snapshot (0: none); the log holds the entries after it. */
  #snapshotSeq = 0;
  #lastSeq = 0;
  /** Bytes of every entry since the snapshot, in seq order from `#sizeHead` (exact accounting when a snapshot trims). */
  #sizes = new Uint32Array(1024);
  #sizeHead = 0;
  #sizeEnd = 0;
  #bytes = 0;

  /** `maxMemoryBytes`: Infinity keeps everything in memory (a session without storage). */
  constructor(maxMemoryBytes: number, snapshotSeq = 0) {
    this.#maxMemoryBytes = maxMemoryBytes;
    this.#snapshotSeq = this.#lastSeq = snapshotSeq;
  }

  /** Seq of the last entry appended. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Entries since the snapshot, in memory or not. */
  get length(): number {
    return this.#lastSeq - this.#snapshotSeq;
  }

  /** Bytes of the log since the snapshot, in memory or not. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes of the entries held in memory. */
  get memoryBytes(): number {
    return this.#memoryBytes;
  }

  /** Seq of the oldest entry in memory (lastSeq + 1 when none is). */
  get firstInMemory(): number {
    return this.#head < this.#entries.length ? this.#entries[this.#head]!.seq : this.#lastSeq + 1;
  }

  /** Appends the next entry (seq = lastSeq + 1). */
  push(entry: StreamEntry): void {
    const n = entryBytes(entry);
    this.#entries.push(entry);
    this.#memoryBytes += n;
    this.#bytes += n;
    if (this.#sizeEnd === this.#sizes.length) this.#growSizes();
    this.#sizes[this.#sizeEnd++] = n;
    this.#lastSeq = entry.seq;
  }

  #growSizes(): void {
    // Reuse the array when trimming freed most of it; else double it. Either way live sizes move to the front.
    const live = this.#sizes.slice(this.#sizeHead, this.#sizeEnd);
    if (live.length * 2 > this.#sizes.length) this.#sizes = new Uint32Array(this.#sizes.length * 2);
    this.#sizes.set(live, 0);
    this.#sizeEnd = live.length;
    this.#sizeHead = 0;
  }

  /**
   * Evicts the oldest in-memory entries at or below `durableSeq` while memory is over its cap,
   * down to three quarters of it (so eviction happens in a few large steps, not per entry).
   */
  evict(durableSeq: number): void {
    if (this.#memoryBytes <= this.#maxMemoryBytes) return;
    const target = this.#maxMemoryBytes * 0.75;
    while (this.#memoryBytes > target && this.#head < this.#entries.length) {
      const e = this.#entries[this.#head]!;
      if (e.seq > durableSeq) break;
      this.#memoryBytes -= entryBytes(e);
      this.#head++;
    }
    this.#compact();
  }

  /** A snapshot was taken right after entry `seq`: entries at or below it leave the log. */
  trim(seq: number): void {
    if (seq <= this.#snapshotSeq) return;
    const dropped = Math.min(seq, this.#lastSeq) - this.#snapshotSeq;
    for (let i = 0; i < dropped; i++) this.#bytes -= this.#sizes[this.#sizeHead + i]!;
    this.#sizeHead += dropped;
    this.#snapshotSeq = seq;
    while (this.#head < this.#entries.length && this.#entries[this.#head]!.seq <= seq) {
      this.#memoryBytes -= entryBytes(this.#entries[this.#head]!);
      this.#head++;
    }
    this.#compact();
  }

  /**
   * The entries after the snapshot (or after `after`, if later) up to `upTo`, for a joiner's Sync: `stored` (read back from
   * storage; may start earlier or hold more) supplies what memory no longer has. Returns undefined
   * if `stored` does not reach the in-memory part (read storage again).
   */
  entries(upTo: number, stored?: readonly StreamEntry[], after = this.#snapshotSeq): StreamEntry[] | undefined {
    const first = this.firstInMemory;
    const out: StreamEntry[] = [];
    let next = Math.max(this.#snapshotSeq, after) + 1;
    if (first > next) {
      if (stored === undefined) return undefined;
      for (const e of stored) {
        if (e.seq < next) continue;
        if (e.seq !== next || e.seq >= first) break;
        out.push(e);
        next++;
      }
      if (next !== first && next <= upTo) return undefined;
    }
    for (let i = this.#head; i < this.#entries.length; i++) {
      const e = this.#entries[i]!;
      if (e.seq > upTo) break;
      if (e.seq >= next) out.push(e);
    }
    return out;
  }

  /** Whether a joiner's Sync (of the entries after `after`, default the snapshot) needs entries read back from storage. */
  needsStorage(after = this.#snapshotSeq): boolean {
    return this.firstInMemory > Math.max(this.#snapshotSeq, after) + 1;
  }

  /** Seq of the latest snapshot (0: none): the log holds the entries after it. */
  get snapshotSeq(): number {
    return this.#snapshotSeq;
  }

  #compact(): void {
    // Evicting and trimming happen in batches (a quarter of the memory cap, a snapshot), so
    // copying the survivors each time is cheap — and it is what lets the evicted entries, and the
    // frames their payloads view, be collected at all.
    if (this.#head === 0) return;
    this.#entries = this.#head === this.#entries.length ? [] : this.#entries.slice(this.#head);
    this.#head = 0;
  }
}
