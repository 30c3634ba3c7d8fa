/*
 * Compaction of the filesystem store's log, in the background, one segment at a time.
 *
 * A sealed segment (not the one being written) whose live records (those the index points at) are
 * less than `compactBelow` of its bytes is rewritten forward: its live records are copied to the
 * end of the log through the normal flush path, then, once they are durable, the segment is
 * unlinked and the directory synced. A copy goes at the head of a batch, and whether it is still
 * live is checked when that batch is built, when no other flush is in flight: so the index is what
 * is on disk, ops on the key queued in the same batch come after the copy (and win), and an op that
 * changed the key earlier has made the copy dead (it is dropped).
 *
 * Tombstones. Dropping a tombstone could let an older put of its key come back at the next open.
 * A tombstone is carried forward (copied like a live record) while the key is still deleted and
 * some older segment may hold a put of it: each segment keeps the 32-bit hashes of the keys of all
 * its put records, live or dead, sorted, so "may hold" is a binary search per older segment (a hash
 * collision only keeps a tombstone longer). The oldest segment's tombstones always go.
 */
import { StorageError } from "./errors";
import { KIND_PUT, KIND_TOMBSTONE, SEGMENT_HEADER_BYTES, parseBatch, type RecordKind } from "./fs-log-format";
import type { KeyIndex, Location } from "./fs-log-index";
import { readFully } from "./fs-log-io";
import { hashKey, type Segment } from "./fs-log-recovery";

/** A record of a segment being compacted, to be written again at the end of the log. */
export interface Copy {
  readonly kind: RecordKind;
  readonly key: string;
  /** The record's bytes, exactly as they are in the old segment. */
  readonly record: Buffer;
  readonly from: Location;
  /** Called once: `true` when written (or found dead and dropped), `false` when its flush failed or the store closed. */
  done(ok: boolean): void;
}

/**
 * Takes the first queued copies of `queue` for one flush (up to `maxBytes`, at least one); those no
 * longer live (the key was written or deleted since they were read: `index` says) are done at once.
 */
export function takeCopies(queue: Copy[], maxBytes: number, index: KeyIndex): Copy[] {
  let bytes = 0;
  let taken = 0;
  while (taken < queue.length && bytes < maxBytes) bytes += (queue[taken++] as Copy).record.length;
  const copies: Copy[] = [];
  for (const copy of queue.splice(0, taken)) {
    if (copyIsLive(copy, index)) copies.push(copy);
    else copy.done(true);
  }
  return copies;
}

function copyIsLive(copy: Copy, index: KeyIndex): boolean {
  const entry = index.get(copy.key);
  if (copy.kind === KIND_TOMBSTONE) return entry === undefined;
  return entry !== undefined && !entry.damaged && entry.at.seg === copy.from.seg && entry.at.offset === copy.from.offset;
}

/** What the compactor needs from the store. */
export interface CompactorHost {
  readonly index: KeyIndex;
  segments(): Iterable<Segment>;
  /** The number of the segment being written (segments from it on are never compacted). */
  activeNo(): number;
  readonly compactBelow: number;
  copy(copies: readonly Copy[]): void;
  remove(segment: Segment): Promise<void>;
  onError(error: unknown): void;
  onCompacted(): void;
}

/** Pokes (ends of flushes) to let pass after a failure before trying again. */
const BACKOFF_POKES = 100;

/** Compacts one segment at a time, when poked (after each flush). */
export class Compactor {
  readonly #host: CompactorHost;
  #running: Promise<void> | undefined;
  #stopped = false;
  #backoff = 0;

  constructor(host: CompactorHost) {
    this.#host = host;
  }

  /** The compaction in progress, if any. */
  get running(): Promise<void> | undefined {
    return this.#running;
  }

  /** Starts compacting the deadest eligible segment, unless one is being compacted already. */
  poke(): void {
    if (this.#running !== undefined || this.#stopped || this.#host.compactBelow <= 0) return;
    if (this.#backoff > 0) {
      this.#backoff--;
      return;
    }
    const victim = this.#pick();
    if (victim === undefined) return;
    this.#running = this.#compact(victim)
      .catch((error: unknown) => {
        this.#backoff = BACKOFF_POKES;
        this.#host.onError(error);
      })
      .finally(() => {
        this.#running = undefined;
        this.poke();
      });
  }

  /** No new compaction starts; the one running stops at its next step. */
  stop(): void {
    this.#stopped = true;
  }

  #pick(): Segment | undefined {
    const active = this.#host.activeNo();
    let best: Segment | undefined;
    for (const segment of this.#host.segments()) {
      if (segment.no >= active || segment.damaged || segment.removed) continue;
      const ratio = segment.live / segment.size;
      if (ratio < this.#host.compactBelow && (best === undefined || ratio < best.live / best.size)) best = segment;
    }
    return best;
  }

  async #compact(segment: Segment): Promise<void> {
    const buf = Buffer.allocUnsafe(segment.size);
    segment.readers++;
    try {
      await readFully(segment.file, [buf], 0);
    } finally {
      segment.readers--;
    }
    if (this.#stopped) return;
    const candidates: Omit<Copy, "done">[] = [];
    for (let p = SEGMENT_HEADER_BYTES; p < segment.size; ) {
      const batch = parseBatch(buf, p);
      if (typeof batch === "string") {
        segment.damaged = true;
        throw new StorageError(`compaction found damage in ${segment.file.path} at offset ${p} (${batch}); the segment is kept as it is: check the disk`);
      }
      for (const r of batch.records) {
        const from = { seg: segment.no, offset: r.offset, length: r.length };
        const entry = this.#host.index.get(r.key);
        const keep =
          r.kind === KIND_PUT
            ? entry !== undefined && !entry.damaged && entry.at.seg === segment.no && entry.at.offset === r.offset
            : entry === undefined && this.#olderMayHold(r.key, segment.no);
        if (keep) candidates.push({ kind: r.kind, key: r.key, record: buf.subarray(r.offset, r.offset + r.length), from });
      }
      p = batch.end;
    }
    if (this.#stopped) return;
    const outcomes = await new Promise<boolean[]>((resolve) => {
      const results: boolean[] = [];
      if (candidates.length === 0) resolve(results);
      this.#host.copy(
        candidates.map((c) => ({
          ...c,
          done: (ok: boolean) => {
            results.push(ok);
            if (results.length === candidates.length) resolve(results);
          },
        })),
      );
    });
    if (outcomes.includes(false)) {
      if (this.#stopped) return;
      throw new StorageError(`compaction of ${segment.file.path} could not write its live records; it is kept and tried again later`);
    }
    if (segment.live !== 0) {
      // Every live record was copied or superseded; anything else is a bug, and the segment stays.
      throw new StorageError(`compaction of ${segment.file.path} left ${segment.live} live bytes in it; the segment is kept`);
    }
    await this.#host.remove(segment);
    this.#host.onCompacted();
  }

  /** Whether a segment older than `no` may hold a put of `key`. */
  #olderMayHold(key: string, no: number): boolean {
    const hash = hashKey(key);
    for (const segment of this.#host.segments()) {
      if (segment.no >= no) break;
      if (segment.hashes.has(hash)) return true;
    }
    return false;
  }
}

