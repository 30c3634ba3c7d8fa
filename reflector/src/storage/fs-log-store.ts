/*
 * The log-structured store behind createFsStore: one append-only log for every key of a data
 * directory, an in-memory index, group commit.
 *
 * Group commit. A put or delete encodes its record and queues it. One flush at a time takes
 * everything queued (up to maxBatchBytes; at least one op), writes it as ONE batch with one
 * positional write at the end of the newest segment, made durable by one fdatasync (or, where the
 * file is opened with O_DSYNC, by that write itself, which saves a trip through the thread pool),
 * then updates the index and resolves every op of the batch. Ops arriving meanwhile wait for the next flush, which starts
 * as soon as this one ends; the first op of an idle store waits one turn (setImmediate), so the ops
 * of one turn share a flush. No timer delays anything.
 *
 * Visibility. The index changes only after a batch is durable, so get/list never see what a crash
 * could still undo, and a failed flush leaves nothing visible: its ops reject, the file is cut back
 * to the last good batch (retried before the next write if cutting fails), and later ops work once
 * the disk does.
 */
import { join } from "node:path";
import { checkKey, checkPrefix, type BlobStore } from "./blob-store";
import { StorageError } from "./errors";
import { Compactor, type Copy } from "./fs-compaction";
import { BATCH_HEADER_BYTES, KIND_PUT, KIND_TOMBSTONE, RECORD_HEADER_BYTES, encodeBatchHeader, encodeRecord, encodeSegmentHeader, recordMatches, type RecordKind } from "./fs-log-format";
import { KeyIndex, type Location } from "./fs-log-index";
import { codeOf, ioError, readFully, writeFully, type LogIo } from "./fs-log-io";
import { KeyHashes, hashKey, segmentName, type Segment } from "./fs-log-recovery";
import { corrupt } from "./records";

/** What {@link LogStore} is built from: the recovered log and the tuning. */
export interface LogStoreConfig {
  /** The data directory (for messages) and the log's directory in it. */
  readonly root: string;
  readonly logDir: string;
  readonly io: LogIo;
  readonly segmentBytes: number;
  readonly compactBelow: number;
  readonly maxBatchBytes: number;
  readonly index: KeyIndex;
  readonly segments: readonly Segment[];
  /** Called when background compaction fails (it retries later); must not throw. */
  readonly onCompactionError: (error: unknown) => void;
  /** Called once close() has released everything (the lock). */
  readonly onClose: () => Promise<void>;
}

/** Counters for tests and benchmarks (internal). */
export interface LogStats {
  readonly flushes: number;
  readonly syncs: number;
  readonly records: number;
  readonly segments: number;
  readonly diskBytes: number;
  readonly liveBytes: number;
  readonly compactedSegments: number;
  readonly keys: number;
}

interface Op {
  readonly kind: RecordKind;
  readonly key: string;
  readonly record: Buffer;
  resolve(): void;
  reject(error: unknown): void;
}

/** Largest value a record holds (its length is a u32). */
const MAX_VALUE_BYTES = 0xffff_0000;
/** Fewest iovecs a writev may take (POSIX's minimum IOV_MAX is 16; Linux and macOS take 1024). */
const IOV_MAX = 1024;
/** Compaction copies carried by one flush at most, so they never make user ops wait long. */
const COPY_BYTES_PER_FLUSH = 256 * 1024;

/** The log-structured {@link BlobStore} (see the top of this file); made by createFsStore(). */
export class LogStore implements BlobStore {
  readonly #config: LogStoreConfig;
  readonly #index: KeyIndex;
  /** Every segment, oldest first (numbers only grow, so insertion order is number order). */
  readonly #segments = new Map<number, Segment>();
  #active: Segment | undefined;
  #nextSegment: number;
  #queue: Op[] = [];
  readonly #copies: Copy[] = [];
  /** Ops queued or being flushed, per key: a delete of a key with none and no value needs no write. */
  readonly #pending = new Map<string, number>();
  #flushing = false;
  #idle: (() => void)[] = [];
  /** A failed flush may have left bytes past the active segment's size: cut them before writing. */
  #mustTruncate = false;
  #reads = 0;
  readonly #readsDone: (() => void)[] = [];
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #compactor: Compactor;
  #stats = { flushes: 0, syncs: 0, records: 0, compactedSegments: 0 };

  constructor(config: LogStoreConfig) {
    this.#config = config;
    this.#index = config.index;
    for (const segment of config.segments) this.#segments.set(segment.no, segment);
    const newest = config.segments[config.segments.length - 1];
    // A damaged newest segment is never written to again: the next flush starts a new one.
    this.#active = newest !== undefined && !newest.damaged ? newest : undefined;
    this.#nextSegment = (newest?.no ?? 0) + 1;
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
    let diskBytes = 0;
    let liveBytes = 0;
    for (const s of this.#segments.values()) {
      diskBytes += s.size;
      liveBytes += s.live;
    }
    return { ...this.#stats, segments: this.#segments.size, diskBytes, liveBytes, keys: this.#index.size };
  }

  /** Resolves once nothing is queued or being flushed, and no compaction runs (internal: for tests). */
  async settled(): Promise<void> {
    for (;;) {
      if (this.#flushing) await new Promise<void>((resolve) => this.#idle.push(resolve));
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
    const { seg, offset, length } = entry.at;
    const segment = this.#segments.get(seg) as Segment;
    const head = Buffer.alloc(RECORD_HEADER_BYTES + key.length);
    const value = new Uint8Array(length - head.length);
    segment.readers++;
    try {
      await readFully(segment.file, [head, value], offset);
    } catch (cause) {
      throw ioError("read", key, segment.file.path, cause);
    } finally {
      if (--segment.readers === 0 && segment.removed) await segment.file.close().catch(() => undefined);
    }
    // Checked on every read: bytes the disk changed since they were written are never served.
    if (!recordMatches(head, value, key)) {
      segment.damaged = true;
      throw corrupt(key, `its record (${segment.file.path}, offset ${offset}) no longer checks: the disk returned other bytes than were written`);
    }
    return value;
  }

  #enqueue(kind: RecordKind, key: string, value: Uint8Array | undefined): Promise<void> {
    const record = encodeRecord(kind, key, value);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ kind, key, record, resolve, reject });
      this.#pending.set(key, (this.#pending.get(key) ?? 0) + 1);
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

  #schedule(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    setImmediate(() => void this.#drain());
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#copies.length > 0) {
      await this.#flush();
      // After every flush, not only when idle: a store that is never idle must compact too.
      if (!this.#closed) this.#compactor.poke();
    }
    this.#flushing = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** One batch: never throws (a failure rejects the batch's ops). */
  async #flush(): Promise<void> {
    const copies: Copy[] = [];
    const records: Buffer[] = [];
    let copyBytes = 0;
    let taken = 0;
    while (taken < this.#copies.length && copyBytes < COPY_BYTES_PER_FLUSH) copyBytes += (this.#copies[taken++] as Copy).record.length;
    copyBytes = 0;
    for (const copy of this.#copies.splice(0, taken)) {
      // Checked now, when no other flush is in flight: the index is exactly what is on disk.
      if (!this.#copyIsLive(copy)) {
        copy.done(true);
        continue;
      }
      copies.push(copy);
      records.push(copy.record);
      copyBytes += copy.record.length;
    }
    let bytes = copyBytes;
    let take = 0;
    while (take < this.#queue.length && (take === 0 || bytes + (this.#queue[take] as Op).record.length <= this.#config.maxBatchBytes)) {
      bytes += (this.#queue[take] as Op).record.length;
      take++;
    }
    const ops = this.#queue.slice(0, take);
    this.#queue = this.#queue.slice(take);
    for (const op of ops) records.push(op.record);
    if (records.length === 0) return;

    const active = this.#active;
    const rolls = active === undefined || (!this.#mustTruncate && active.size >= this.#config.segmentBytes);
    let path = rolls ? join(this.#config.logDir, segmentName(this.#nextSegment)) : active.file.path;
    try {
      const segment = await this.#prepare();
      path = segment.file.path;
      const start = segment.size;
      this.#mustTruncate = true;
      const header = encodeBatchHeader(records);
      // One system call, so that on an O_DSYNC file the batch costs one sync (iovecs past IOV_MAX would split it).
      await writeFully(segment.file, records.length < IOV_MAX ? [header, ...records] : [Buffer.concat([header, ...records])], start);
      if (!segment.file.syncsOnWrite) await segment.file.datasync();
      this.#stats.syncs++;
      this.#mustTruncate = false;
      segment.size = start + BATCH_HEADER_BYTES + bytes;
      this.#stats.flushes++;
      this.#stats.records += records.length;
      let offset = start + BATCH_HEADER_BYTES;
      for (const copy of copies) {
        this.#applyCopy(copy, segment, offset);
        offset += copy.record.length;
      }
      for (const op of ops) {
        this.#apply(op.kind, op.key, { seg: segment.no, offset, length: op.record.length }, segment);
        offset += op.record.length;
      }
    } catch (cause) {
      for (const copy of copies) copy.done(false);
      for (const op of ops) op.reject(ioError(op.kind === KIND_PUT ? "write" : "delete", op.key, path, cause));
      this.#forget(ops);
      await this.#cutBack();
      return;
    }
    for (const copy of copies) copy.done(true);
    this.#forget(ops);
    for (const op of ops) op.resolve();
  }

  #forget(ops: readonly Op[]): void {
    for (const op of ops) {
      const n = (this.#pending.get(op.key) ?? 1) - 1;
      if (n === 0) this.#pending.delete(op.key);
      else this.#pending.set(op.key, n);
    }
  }

  #copyIsLive(copy: Copy): boolean {
    const entry = this.#index.get(copy.key);
    if (copy.kind === KIND_TOMBSTONE) return entry === undefined;
    return entry !== undefined && !entry.damaged && entry.at.seg === copy.from.seg && entry.at.offset === copy.from.offset;
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
    } else {
      const before = this.#index.delete(key);
      if (before !== undefined) (this.#segments.get(before.seg) as Segment).live -= before.length;
    }
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
      await active.file.truncate(active.size);
      await active.file.datasync();
      this.#stats.syncs++;
      this.#mustTruncate = false;
    }
    if (active !== undefined && active.size < this.#config.segmentBytes) return active;
    return this.#roll();
  }

  /** Starts segment #nextSegment: created, header durable, then its directory entry. */
  async #roll(): Promise<Segment> {
    const { io, logDir } = this.#config;
    const no = this.#nextSegment;
    const path = join(logDir, segmentName(no));
    // Left by a roll that failed after creating the file: it holds no batch.
    await io.unlink(path).catch(() => undefined);
    const file = await io.open(path, true);
    try {
      const header = encodeSegmentHeader(no);
      await writeFully(file, [header], 0);
      await file.datasync();
      await io.syncDir(logDir);
      this.#stats.syncs += 2;
      const segment: Segment = { no, file, size: header.length, live: 0, hashes: new KeyHashes(), damaged: false, readers: 0, removed: false };
      const sealed = this.#active;
      sealed?.hashes.seal();
      this.#segments.set(no, segment);
      this.#active = segment;
      this.#nextSegment = no + 1;
      return segment;
    } catch (error) {
      await file.close().catch(() => undefined);
      await io.unlink(path).catch(() => undefined);
      throw error;
    }
  }

  /** After a failed write: cut the active segment back to its last good batch (or retry before the next write). */
  async #cutBack(): Promise<void> {
    const active = this.#active;
    if (active === undefined || !this.#mustTruncate) return;
    try {
      await active.file.truncate(active.size);
      await active.file.datasync();
      this.#mustTruncate = false;
    } catch {
      // #prepare() tries again before the next batch is written.
    }
  }

  async #removeSegment(segment: Segment): Promise<void> {
    const { io, logDir } = this.#config;
    // Gone already: an earlier attempt unlinked it, then failed to sync the directory.
    await io.unlink(segment.file.path).catch((error: unknown) => (codeOf(error) === "ENOENT" ? undefined : Promise.reject(error)));
    await io.syncDir(logDir);
    this.#segments.delete(segment.no);
    segment.removed = true;
    if (segment.readers === 0) await segment.file.close().catch(() => undefined);
  }
}

