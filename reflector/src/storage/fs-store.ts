import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { checkKey, checkPrefix, type BlobStore } from "./blob-store";
import { StorageError } from "./errors";
import { migrateLegacy } from "./fs-legacy";
import { KeyIndex } from "./fs-log-index";
import { codeOf, ioError, nodeLogIo, type LogIo } from "./fs-log-io";
import { recoverLog, type LogDamage, type LogTruncation, type Segment } from "./fs-log-recovery";
import { LogStore, type LogStats } from "./fs-log-store";
import { PREALLOC_CHUNK_BYTES } from "./fs-log-prealloc";
import { lockDir, type DirLock } from "./fs-lock";

/** Options of {@link createFsStore}, for tuning and tests. */
export interface FsStoreOptions {
  /** A new segment file is started once the current one is past this size. Default 64 MiB. */
  readonly segmentBytes?: number;
  /**
   * A sealed segment is compacted (its live records copied forward, the file deleted) once less
   * than this fraction of its bytes is live. Default 0.5; 0 turns compaction off.
   */
  readonly compactBelow?: number;
  /**
   * Flushes written at once, each a batch placed after the one before and acknowledged in order
   * (a put resolves once its batch and every batch before it are durable). More than one lets the
   * disk sync several at a time and keeps a busy store's latency near one write's. Default 4; 1
   * writes one at a time.
   */
  readonly flushesInFlight?: number;
  /**
   * Zeroed space the store keeps written past the end of its log, so that a flush writes over
   * zeros rather than growing the file: then its sync writes data alone, not the file system's
   * journal too (fs-log-prealloc.ts). Default 1 MiB; 0 turns it off (worth it on copy-on-write file
   * systems such as btrfs or ZFS, where writing over zeros saves nothing).
   */
  readonly preallocateBytes?: number;
  /**
   * A small flush with nothing else in flight is written with a synchronous write on the event
   * loop's own thread, which skips two thread hand-offs (fs-log-inline.ts: within a time budget,
   * and never again for a second after a write that stalled). Default true; false sends every
   * write through libuv's thread pool.
   */
  readonly inlineWrites?: boolean;
  /** Receives what opening found (damage, a torn write cut, a migration) and compaction failures. */
  readonly logger?: FsStoreLogger;
}

/** The part of the reflector's `Logger` the store uses. */
export interface FsStoreLogger {
  info(event: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(event: string, fields?: Readonly<Record<string, unknown>>): void;
  error(event: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** What opening a data directory found and did. */
export interface FsStoreOpening {
  /** Keys moved from the former layout (a file per key) into the log. */
  readonly migratedKeys: number;
  /** Damage found in the log (see {@link LogDamage}); empty when it read back intact. */
  readonly damage: readonly LogDamage[];
  /** A write torn by a crash, cut from the end of the log (none of its operations had resolved). */
  readonly truncated: LogTruncation | undefined;
  /** Set if the directory cannot be written: the store then rejects every operation with it. */
  readonly unwritable: StorageError | undefined;
}

/** A filesystem {@link BlobStore}, with what opening it found. */
export interface FsStore extends BlobStore {
  readonly opened: FsStoreOpening;
  /** Always there: one record batch (see {@link BlobStore.deleteMany}). */
  deleteMany(keys: readonly string[]): Promise<void>;
}

/** Default {@link FsStoreOptions.segmentBytes}: 64 MiB. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Default {@link FsStoreOptions.flushesInFlight}. */
export const DEFAULT_FLUSHES_IN_FLIGHT = 4;
/** Default {@link FsStoreOptions.compactBelow}. */
export const DEFAULT_COMPACT_BELOW = 0.5;
/** Most bytes of ops one flush writes (a single larger op is written alone). */
const MAX_BATCH_BYTES = 16 * 1024 * 1024;
/** The log's directory inside the data directory: `@` never starts a name of the former layout. */
export const LOG_DIR = "@log";
const LOCK_FILE = "lock";

/**
 * A {@link BlobStore} in a directory: the embedded default, durable across `kill -9` and power loss.
 *
 * Every key of the directory lives in one append-only log (`<dir>/@log/00000001.seg`, …), indexed
 * in memory. Puts and deletes are group-committed: those waiting when a flush starts are written
 * together, with one write made durable by one fdatasync (or written with O_DSYNC), and each
 * resolves once its bytes are durable. Records carry checksums; opening the store scans the log,
 * cuts off a write torn by a crash, and reports damage (a damaged value reads as a
 * `SessionDamagedError` naming the key). Segments that are mostly dead (overwritten or deleted
 * keys) are compacted in the background. The format and its rules are described in
 * fs-log-format.ts, fs-log-recovery.ts, fs-log-store.ts and fs-compaction.ts.
 *
 * Opening creates `dir` if needed, takes the directory's lock (one process at a time: a second one
 * fails with a {@link StorageError} saying who holds it) and moves the keys of a directory written
 * by the former layout (a file per key) into the log. A directory this process cannot write still
 * opens, but every operation then rejects with a StorageError saying what to fix (which is how the
 * reflector's start-up probe reports it).
 *
 * @example
 * ```ts
 * const store = await createFsStore("./data");
 * const sessions = new SessionStore(store);
 * // ...
 * await store.close(); // releases the directory for the next process
 * ```
 * @throws {StorageError} if the directory cannot be created or read, or another process uses it.
 */
export function createFsStore(dir: string, options: FsStoreOptions = {}): Promise<FsStore> {
  return openFsStore(dir, options, nodeLogIo());
}

/** {@link createFsStore} on a given file layer (internal: tests inject failures and count syncs). */
export async function openFsStore(dir: string, options: FsStoreOptions, io: LogIo): Promise<FsStore> {
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const compactBelow = options.compactBelow ?? DEFAULT_COMPACT_BELOW;
  if (!(Number.isSafeInteger(segmentBytes) && segmentBytes >= 1024 && segmentBytes <= 2 ** 30)) {
    throw new StorageError(`segmentBytes must be an integer from 1024 to 2^30, got ${segmentBytes}`);
  }
  const flushesInFlight = options.flushesInFlight ?? DEFAULT_FLUSHES_IN_FLIGHT;
  if (!(Number.isSafeInteger(flushesInFlight) && flushesInFlight >= 1 && flushesInFlight <= 64)) {
    throw new StorageError(`flushesInFlight must be an integer from 1 to 64, got ${flushesInFlight}`);
  }
  const preallocBytes = options.preallocateBytes ?? PREALLOC_CHUNK_BYTES;
  if (!(Number.isSafeInteger(preallocBytes) && preallocBytes >= 0 && preallocBytes <= 2 ** 30)) {
    throw new StorageError(`preallocateBytes must be an integer from 0 to 2^30, got ${preallocBytes}`);
  }
  if (!(compactBelow >= 0 && compactBelow <= 1)) throw new StorageError(`compactBelow must be a fraction from 0 to 1, got ${compactBelow}`);
  const root = resolve(dir);
  try {
    await mkdir(root, { recursive: true });
  } catch (cause) {
    throw new StorageError(`cannot create the storage directory ${root} (${codeOf(cause)}); check the path and its permissions`, { cause });
  }
  const logDir = join(root, LOG_DIR);
  let lock: DirLock;
  try {
    await io.mkdir(logDir);
    lock = await lockDir(join(logDir, LOCK_FILE), root);
  } catch (cause) {
    if (cause instanceof StorageError) throw cause;
    if (!UNWRITABLE.has(codeOf(cause))) throw new StorageError(`cannot open the storage log in ${logDir} (${codeOf(cause)}); check the directory and its permissions`, { cause });
    return new UnwritableStore(root, ioError("write", "", logDir, cause));
  }
  const logger = options.logger;
  const index = new KeyIndex();
  let segments: Segment[] = [];
  try {
    const recovered = await recoverLog(io, logDir, index);
    segments = recovered.segments;
    const store = new LogStore({
      root,
      logDir,
      io,
      segmentBytes,
      preallocBytes,
      inlineWrites: options.inlineWrites !== false,
      compactBelow,
      maxBatchBytes: MAX_BATCH_BYTES,
      maxFlights: flushesInFlight,
      index,
      segments,
      onCompactionError: (error) => logger?.warn("storage.compaction.failed", { dir: root, error }),
      onClose: () => lock.release(),
    });
    if (recovered.truncated !== undefined) logger?.warn("storage.log.truncated", { dir: root, ...recovered.truncated });
    for (const damage of recovered.damage) logger?.error("storage.log.damaged", { dir: root, ...damage });
    let migratedKeys: number;
    try {
      migratedKeys = await migrateLegacy(root, io, (key, value) => store.put(key, value));
    } catch (error) {
      await store.close();
      throw error;
    }
    if (migratedKeys > 0) logger?.info("storage.migrated", { dir: root, keys: migratedKeys, to: logDir });
    return Object.assign(store, { opened: { migratedKeys, damage: recovered.damage, truncated: recovered.truncated, unwritable: undefined } });
  } catch (error) {
    for (const segment of segments) await segment.file.close().catch(() => undefined);
    await lock.release();
    throw error instanceof StorageError ? error : new StorageError(`cannot open the storage log in ${logDir} (${codeOf(error)}); check the directory and the disk`, { cause: error });
  }
}

/** Counters of a store made by {@link createFsStore} (internal: for tests and benchmarks). */
export function fsStoreStats(store: BlobStore): LogStats {
  if (!(store instanceof LogStore)) throw new TypeError("not a filesystem store");
  return store.stats();
}

/** Resolves once a store made by {@link createFsStore} has flushed everything and no compaction runs (internal: tests). */
export function fsStoreSettled(store: BlobStore): Promise<void> {
  if (!(store instanceof LogStore)) throw new TypeError("not a filesystem store");
  return store.settled();
}

/** Errors that mean "this process cannot write here" (as opposed to a wrong path). */
const UNWRITABLE = new Set(["EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT"]);

/** A directory that cannot be written: every operation rejects with why (validating keys first). */
class UnwritableStore implements FsStore {
  readonly opened: FsStoreOpening;
  #closed = false;

  constructor(
    readonly location: string,
    readonly error: StorageError,
  ) {
    this.opened = { migratedKeys: 0, damage: [], truncated: undefined, unwritable: error };
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#fail("read", key, () => checkKey(key));
  }

  put(key: string, value: Uint8Array): Promise<void> {
    void value;
    return this.#fail("write", key, () => checkKey(key));
  }

  delete(key: string): Promise<void> {
    return this.#fail("delete", key, () => checkKey(key));
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#fail("delete", keys[0] ?? "", () => keys.forEach((key) => checkKey(key)));
  }

  list(prefix: string): Promise<string[]> {
    return this.#fail("list", prefix, () => checkPrefix(prefix));
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async #fail<T>(verb: string, key: string, check: () => unknown): Promise<T> {
    if (this.#closed) throw new StorageError(`the storage directory ${this.location} was closed; open it again with createFsStore()`);
    check();
    const cause = this.error.cause;
    throw ioError(verb, key, join(this.location, LOG_DIR), cause);
  }
}
