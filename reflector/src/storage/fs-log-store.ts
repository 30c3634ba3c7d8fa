/*
 * The log-structured store behind createFsStore: one append-only log for every key of a data
 * directory, an in-memory index, group commit.
 *
 * Group commit. A put or delete encodes its record and queues it. A flush takes everything queued
 * (up to maxBatchBytes; at least one op), writes it as ONE batch with one positional write at the
 * end of the newest segment, made durable by one fdatasync (or, where the file is opened with
 * O_DSYNC, by that write itself, which saves a trip through the thread pool), then updates the
 * index and resolves every op of the batch. The first op of an idle store waits one turn
 * (setImmediate), so the ops of one turn share a flush. No timer delays anything.
 * Behind the write position the store keeps zeros written ahead (fs-log-prealloc.ts), so a flush's
 * sync writes data, not the file system's journal too.
 *
 * Flushes in flight. Up to maxFlights flushes are written at once, each placed where the one before
 * it ends: ops arriving while flushes are in flight start another after a turn (or, at the limit,
 * as soon as one retires), so a busy store waits about one write, not a queue of them, and the disk
 * syncs several at a time. Flushes retire strictly in launch order: a flush's ops resolve and show
 * only once it and every flush before it are durable. Each batch records the durable end of the
 * segment when it was written, so recovery can tell batches that were in flight at a crash (cut
 * as a torn tail) from damage (fs-log-recovery.ts). Rolling to a new segment and cutting back
 * happen with nothing in flight, and compaction copies travel only in a flush launched then.
 *
 * Visibility and failures. The index changes only after a batch is durable, so get/list never see
 * what a crash could still undo. A failed flush leaves nothing visible: its ops reject, and so do
 * those of every flush in flight after it and every op queued when the failure came back (ops
 * issued before the failure was known may continue the failed ones, as a session's next log
 * segment does, and must not land after a hole); the file is cut back to the last durable batch
 * (retried before the next write if cutting fails), and later ops work once the disk does.
 */
import { join } from "node:path";
import { checkKey, checkPrefix, type BlobStore } from "./blob-store";
import { StorageError } from "./errors";
import { Compactor, takeCopies, type Copy } from "./fs-compaction";
import { BATCH_HEADER_BYTES, KIND_PUT, KIND_TOMBSTONE, encodeBatchHeader, encodeRecord, encodeTombstones, tombstoneChunks, type RecordKind } from "./fs-log-format";
import type { KeyIndex, Location } from "./fs-log-index";
import { InlinePolicy } from "./fs-log-inline";
import { ioError, writeFully } from "./fs-log-io";
import { Preallocator } from "./fs-log-prealloc";
import { createSegment, hashKey, segmentName, unlinkSegment, type Segment } from "./fs-log-recovery";
import { logStats, readRecord, type Flight, type LogStats, type LogStoreConfig, type Op, type Outcome } from "./fs-log-types";
import { corrupt } from "./records";

export type { LogStats, LogStoreConfig } from "./fs-log-types";

/** Largest value a record holds (its length is a u32). */
const MAX_VALUE_BYTES = 0xffff_0000;
/** Fewest iovecs a writev may take (POSIX's minimum IOV_MAX is 16; Linux and macOS take 1024). */
const IOV_MAX = 1024;
/** Compaction copies carried by one flush at most, so they never make user ops wait long. */
const COPY_BYTES_PER_FLUSH = 256 * 1024;

/** The log-structured {@link BlobStore} (see the top of this file); made by createFsStore(). */
export class LogStore implements BlobStore {
  /** Flushes retire in launch order, and a failed one fails every later op not resolved (see #retire). */
  readonly orderedWrites = true;
  readonly #config: LogStoreConfig;
  readonly #index: KeyIndex;
  /** Every segment, oldest first (numbers only grow, so insertion order is number order). */
  readonly #segments = new Map<number, Segment>();
  #active: Segment | undefined;
  #nextSegment: number;
  #queue: Op[] = [];
  readonly #copies: Copy[] = [];
  /** Puts queued or being flushed, per key: a delete of a key with none and no value needs no write. */
  readonly #pending = new Map<string, number>();
  /** Flushes launched and not retired yet, in launch order (at most maxFlights). */
  readonly #flights: Flight[] = [];
  /** A launch is scheduled (setImmediate). */
  #scheduled = false;
  /** A flush that rolls or cuts back the segment, or the cut back after a failure, runs alone. */
  #exclusive = false;
  /** The first failure among the flushes in flight; cleared once they all retired. */
  #failure: { readonly cause: unknown; readonly path: string } | undefined;
  /** Where the next batch goes in the active segment: past every flush in flight. */
  #writeEnd = 0;
  #idle: (() => void)[] = [];
  /** A failed flush may have left bytes past the active segment's size: cut them before writing. */
  #mustTruncate = false;
  #reads = 0;
  readonly #readsDone: (() => void)[] = [];
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #compactor: Compactor;
  readonly #prealloc: Preallocator;
  readonly #inline = new InlinePolicy();
  #stats = { flushes: 0, overlapped: 0, inline: 0, syncs: 0, records: 0, compactedSegments: 0 };

  constructor(config: LogStoreConfig) {
    this.#config = config;
    this.#index = config.index;
    for (const segment of config.segments) this.#segments.set(segment.no, segment);
    const newest = config.segments[config.segments.length - 1];
    // A damaged newest segment is never written to again: the next flush starts a new one.
    this.#active = newest !== undefined && !newest.damaged ? newest : undefined;
    this.#writeEnd = this.#active?.size ?? 0;
    this.#nextSegment = (newest?.no ?? 0) + 1;
    this.#prealloc = new Preallocator(config.preallocBytes, config.segmentBytes);
    this.#compactor = new Compactor({
      index: this.#index,
      segments: () => this.#segments.values(),
      activeNo: () => this.#active?.no ?? this.#nextSegment,
      compactBelow: config.compactBelow,
      copy: (copies) => this.#enqueueCopies(copies),
      remove: (segment) => this.#removeSegment(segment),
      onError: config.onCompactionError,
      onCompacted: () => void this.#stats.compactedSegments++,
    });
  }

  get location(): string {
    return this.#config.root;
  }

  /** Counters (internal: for tests and benchmarks). */
  stats(): LogStats {
    return logStats(this.#stats, this.#segments, this.#index.size);
  }

  /** Resolves once nothing is queued or being flushed, and no compaction runs (internal: for tests). */
  async settled(): Promise<void> {
    for (;;) {
      if (this.#busy) await new Promise<void>((resolve) => this.#idle.push(resolve));
      else if (this.#compactor.running) await this.#compactor.running;
      else return;
    }
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#guard(async () => {
      this.#reads++;
      try {
        return await this.#read(key);
      } finally {
        if (--this.#reads === 0) for (const resolve of this.#readsDone.splice(0)) resolve();
      }
    });
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.#guard(() => {
      checkKey(key);
      if (!(value instanceof Uint8Array)) throw new StorageError(`put ${JSON.stringify(key)}: value must be a Uint8Array`, { key });
      if (value.length > MAX_VALUE_BYTES) throw new StorageError(`put ${JSON.stringify(key)}: a value is at most ${MAX_VALUE_BYTES} bytes, got ${value.length}`, { key });
      return this.#enqueue(KIND_PUT, key, value);
    });
  }

  delete(key: string): Promise<void> {
    return this.#guard(() => {
      checkKey(key);
      // Nothing to delete: unless a failed write may have left a put of it in the file (not cut off yet).
      if (this.#index.get(key) === undefined && !this.#pending.has(key) && !this.#mustTruncate) return Promise.resolve();
      return this.#enqueue(KIND_TOMBSTONE, key, undefined);
    });
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#guard(() => {
      for (const key of keys) checkKey(key);
      if (keys.length === 0) return Promise.resolve();
      // Unlike delete, missing keys are not looked up (callers pass keys they listed): a tombstone each.
      // One op (one buffer, one promise) per maxBatchBytes of tombstones, so a flush stays bounded.
      const done = tombstoneChunks(keys, this.#config.maxBatchBytes).map((chunk) => this.#enqueue(KIND_TOMBSTONE, chunk[0] as string, undefined, chunk));
      return done.length === 1 ? (done[0] as Promise<void>) : Promise.all(done).then(() => undefined);
    });
  }

  list(prefix: string): Promise<string[]> {
    return this.#guard(async () => {
      const { dirs, partial } = checkPrefix(prefix);
      return this.#index.list(dirs, partial);
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    // Compaction stops between steps; copies not written yet are dropped (their segment stays).
    for (const copy of this.#copies.splice(0)) copy.done(false);
    this.#compactor.stop();
    // Queued puts and deletes complete (settled() waits for the flushes), and so do reads.
    if (this.#reads > 0) await new Promise<void>((resolve) => this.#readsDone.push(resolve));
    await this.settled();
    for (const segment of this.#segments.values()) await segment.file.close().catch(() => undefined);
    await this.#config.onClose();
  }

  /** Runs `operation` unless the store is closed; what it throws becomes a rejection. */
  #guard<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new StorageError(`the storage directory ${this.#config.root} was closed; open it again with createFsStore()`));
    try {
      return operation();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async #read(key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    const entry = this.#index.get(key);
    if (entry === undefined) return undefined;
    if (entry.damaged) throw corrupt(key, entry.reason);
    return readRecord(this.#segments.get(entry.at.seg) as Segment, key, entry.at);
  }

  /** Queues a record of `key`, or (`keys`: deleteMany) a tombstone of each of `keys`, in one buffer. */
  #enqueue(kind: RecordKind, key: string, value: Uint8Array | undefined, keys?: readonly string[]): Promise<void> {
    const record = keys === undefined ? encodeRecord(kind, key, value) : [encodeTombstones(keys)];
    const bytes = record.length === 1 ? (record[0] as Buffer).length : (record[0] as Buffer).length + (record[1] as Buffer).length;
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ kind, key, keys, record, bytes, resolve, reject });
      if (kind === KIND_PUT) this.#pend(key, 1);
      this.#schedule();
    });
  }

  #enqueueCopies(copies: readonly Copy[]): void {
    if (this.#closed) {
      for (const copy of copies) copy.done(false);
      return;
    }
    this.#copies.push(...copies);
    this.#schedule();
  }

  /**
   * Starts flushing soon: the first op of an idle store waits one turn (setImmediate), so the ops
   * of one turn share a flush; with flushes in flight, another starts after a turn if fewer than
   * maxFlights are, or as soon as one retires.
   */
  #schedule(): void {
    if (this.#scheduled || this.#exclusive || this.#flights.length >= this.#config.maxFlights) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  /** Launches flushes while there is something to write and room in flight; resolves settled() once idle. */
  #pump(): void {
    while (!this.#exclusive && this.#failure === undefined && this.#flights.length < this.#config.maxFlights && this.#launch());
    if (!this.#busy) for (const resolve of this.#idle.splice(0)) resolve();
  }

  get #busy(): boolean {
    return this.#scheduled || this.#exclusive || this.#flights.length > 0 || this.#queue.length > 0 || this.#copies.length > 0;
  }

  /** Takes what is queued into one flush and starts writing it; false if there is nothing to write now. */
  #launch(): boolean {
    const idle = this.#flights.length === 0;
    // Copies are checked against the index, which is exactly what is on disk only with no flush in flight.
    const copies = idle ? takeCopies(this.#copies, COPY_BYTES_PER_FLUSH, this.#index) : [];
    const parts: Buffer[] = [];
    let bytes = 0;
    for (const copy of copies) {
      parts.push(copy.record);
      bytes += copy.record.length;
    }
    let take = 0;
    while (take < this.#queue.length && (take === 0 || bytes + (this.#queue[take] as Op).bytes <= this.#config.maxBatchBytes)) {
      bytes += (this.#queue[take] as Op).bytes;
      take++;
    }
    if (take === 0 && copies.length === 0) return false;
    const active = this.#active;
    // Rolling to a new segment, or cutting back a failed write first, happens with nothing else in flight.
    const exclusive = active === undefined || this.#mustTruncate || this.#writeEnd >= this.#config.segmentBytes;
    if (exclusive && !idle) return false;
    const ops = this.#queue.slice(0, take);
    this.#queue = this.#queue.slice(take);
    let count = copies.length;
    for (const op of ops) {
      for (const part of op.record) parts.push(part);
      count += op.keys?.length ?? 1;
    }
    const rolls = active === undefined || (!this.#mustTruncate && this.#writeEnd >= this.#config.segmentBytes);
    const flight: Flight = {
      ops,
      copies,
      parts,
      count,
      bytes,
      exclusive,
      segment: exclusive ? undefined : active,
      path: rolls ? join(this.#config.logDir, segmentName(this.#nextSegment)) : active.file.path,
      start: this.#writeEnd,
      outcome: undefined,
    };
    if (exclusive) this.#exclusive = true;
    else this.#writeEnd += BATCH_HEADER_BYTES + bytes;
    if (!idle) this.#stats.overlapped++;
    this.#flights.push(flight);
    this.#write(flight).then(
      () => this.#retire(flight, { ok: true }),
      (cause: unknown) => this.#retire(flight, { ok: false, cause }),
    );
    return true;
  }

  /** Writes a flush's batch durably (rolling or cutting back first if it is exclusive). */
  async #write(flight: Flight): Promise<void> {
    if (flight.exclusive) {
      const segment = await this.#prepare();
      flight.segment = segment;
      flight.path = segment.file.path;
      flight.start = segment.size;
      this.#writeEnd = segment.size + BATCH_HEADER_BYTES + flight.bytes;
    }
    const segment = flight.segment as Segment;
    // Its durable end: where the retired batches end (earlier flushes may still be in flight).
    const { parts } = flight;
    const header = encodeBatchHeader(parts, flight.count, segment.size);
    // One system call, so that on an O_DSYNC file the batch costs one sync (iovecs past IOV_MAX would split it).
    const buffers = parts.length < IOV_MAX ? [header, ...parts] : [Buffer.concat([header, ...parts])];
    // Alone in flight and small: maybe written on this thread (fs-log-inline.ts).
    if (!flight.exclusive && this.#flights.length === 1 && this.#config.inlineWrites && this.#inline.write(segment.file, buffers, flight.start, flight.bytes)) {
      this.#stats.inline++;
      return;
    }
    await writeFully(segment.file, buffers, flight.start);
    if (!segment.file.syncsOnWrite) await segment.file.datasync();
  }

  /**
   * Records how a flush ended and retires, in launch order, every flush that ended: a durable one
   * updates the index and resolves its ops, unless an earlier one failed. A failure fails every
   * flush in flight after it, and the ops queued then (ops issued before the failure was known may
   * follow the failed ones, as a session's next log segment does: none is written after a hole);
   * once none is in flight, the segment is cut back to its last durable batch.
   */
  #retire(flight: Flight, outcome: Outcome): void {
    flight.outcome = outcome;
    const flights = this.#flights;
    while (flights.length > 0 && (flights[0] as Flight).outcome !== undefined) {
      const done = flights.shift() as Flight;
      const result = done.outcome as Outcome;
      if (done.exclusive) this.#exclusive = false;
      if (result.ok && this.#failure === undefined) {
        this.#commit(done);
        continue;
      }
      if (this.#failure === undefined) {
        this.#failure = { cause: result.ok ? undefined : result.cause, path: done.path };
        this.#mustTruncate = true;
        const queued = this.#queue;
        this.#queue = [];
        this.#fail(queued, [], this.#failure.cause, this.#failure.path);
      }
      this.#fail(done.ops, done.copies, result.ok ? this.#failure.cause : result.cause, result.ok ? this.#failure.path : done.path);
    }
    if (flights.length === 0 && this.#failure !== undefined) {
      this.#failure = undefined;
      this.#exclusive = true;
      void this.#cutBack().then(() => {
        this.#exclusive = false;
        this.#writeEnd = this.#active?.size ?? 0;
        this.#afterFlush();
      });
      return;
    }
    this.#afterFlush();
  }

  #afterFlush(): void {
    // After every flush, not only when idle: a store that is never idle must compact too.
    if (!this.#closed) this.#compactor.poke();
    this.#pump();
  }

  /** A durable flush: the index points at its records, its ops resolve. */
  #commit(flight: Flight): void {
    const segment = flight.segment as Segment;
    segment.size = flight.start + BATCH_HEADER_BYTES + flight.bytes;
    this.#stats.syncs++;
    this.#stats.flushes++;
    this.#stats.records += flight.count;
    let offset = flight.start + BATCH_HEADER_BYTES;
    for (const copy of flight.copies) {
      this.#applyCopy(copy, segment, offset);
      offset += copy.record.length;
    }
    for (const op of flight.ops) {
      if (op.keys === undefined) this.#apply(op.kind, op.key, { seg: segment.no, offset, length: op.bytes }, segment);
      else for (const key of op.keys) this.#remove(key);
      offset += op.bytes;
    }
    for (const copy of flight.copies) copy.done(true);
    this.#forget(flight.ops);
    for (const op of flight.ops) op.resolve();
    if (segment === this.#active) this.#prealloc.poke(segment, this.#writeEnd);
  }

  #fail(ops: readonly Op[], copies: readonly Copy[], cause: unknown, path: string): void {
    for (const copy of copies) copy.done(false);
    for (const op of ops) op.reject(ioError(op.kind === KIND_PUT ? "write" : "delete", op.key, path, cause));
    this.#forget(ops);
  }

  #forget(ops: readonly Op[]): void {
    for (const op of ops) if (op.kind === KIND_PUT) this.#pend(op.key, -1);
  }

  #pend(key: string, change: 1 | -1): void {
    const n = (this.#pending.get(key) ?? 0) + change;
    void (n <= 0 ? this.#pending.delete(key) : this.#pending.set(key, n));
  }

  #applyCopy(copy: Copy, segment: Segment, offset: number): void {
    if (copy.kind === KIND_PUT) {
      segment.hashes.add(hashKey(copy.key));
      // Nothing else touched the key since the check: this batch's copies come before its ops.
      this.#move(copy.key, { seg: segment.no, offset, length: copy.record.length }, segment);
    }
  }

  #apply(kind: RecordKind, key: string, at: Location, segment: Segment): void {
    if (kind === KIND_PUT) {
      segment.hashes.add(hashKey(key));
      this.#move(key, at, segment);
    } else this.#remove(key);
  }

  #remove(key: string): void {
    const before = this.#index.delete(key);
    if (before !== undefined) (this.#segments.get(before.seg) as Segment).live -= before.length;
  }

  #move(key: string, at: Location, segment: Segment): void {
    const before = this.#index.set(key, at);
    segment.live += at.length;
    if (before !== undefined) (this.#segments.get(before.seg) as Segment).live -= before.length;
  }

  /** The segment to write the next batch to: cut back after a failure, a new one when full. */
  async #prepare(): Promise<Segment> {
    const active = this.#active;
    if (active !== undefined && this.#mustTruncate) {
      await this.#truncate(active);
      this.#mustTruncate = false;
    }
    if (active !== undefined && active.size < this.#config.segmentBytes) return active;
    // Only the newest segment has zeros past its log (recovery reads them as free space there).
    if (active !== undefined && active.allocated > active.size) await this.#truncate(active);
    return this.#roll();
  }

  /** Cuts `segment`'s file back to its last durable batch (dropping a failed write, or zeroed space). */
  async #truncate(segment: Segment): Promise<void> {
    await segment.file.truncate(segment.size);
    await segment.file.datasync();
    segment.allocated = segment.size;
    this.#stats.syncs++;
  }

  /** Starts segment #nextSegment (see createSegment). */
  async #roll(): Promise<Segment> {
    const segment = await createSegment(this.#config.io, this.#config.logDir, this.#nextSegment);
    this.#stats.syncs += 2;
    this.#active?.hashes.seal();
    this.#segments.set(segment.no, segment);
    this.#active = segment;
    this.#nextSegment = segment.no + 1;
    return segment;
  }

  /** After a failed write: cut the active segment back to its last good batch (or retry before the next write). */
  async #cutBack(): Promise<void> {
    const active = this.#active;
    if (active === undefined || !this.#mustTruncate) return;
    try {
      await this.#truncate(active);
      this.#mustTruncate = false;
    } catch {
      // #prepare() tries again before the next batch is written.
    }
  }

  async #removeSegment(segment: Segment): Promise<void> {
    await unlinkSegment(this.#config.io, this.#config.logDir, segment);
    this.#segments.delete(segment.no);
    segment.removed = true;
    if (segment.readers === 0) await segment.file.close().catch(() => undefined);
  }
}

