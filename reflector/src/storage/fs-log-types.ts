/** The filesystem store's log: what a LogStore is built from, its flushes, and reading a record (see fs-log-store.ts). */
import type { Copy } from "./fs-compaction";
import { RECORD_HEADER_BYTES, recordMatches, type RecordKind } from "./fs-log-format";
import type { KeyIndex, Location } from "./fs-log-index";
import { ioError, readFully, type LogIo } from "./fs-log-io";
import type { Segment } from "./fs-log-recovery";
import { corrupt } from "./records";

/** What {@link LogStore} is built from: the recovered log and the tuning. */
export interface LogStoreConfig {
  /** The data directory (for messages) and the log's directory in it. */
  readonly root: string;
  readonly logDir: string;
  readonly io: LogIo;
  readonly segmentBytes: number;
  /** Zeroed space kept ahead of the write position (fs-log-prealloc.ts); 0: none. */
  readonly preallocBytes: number;
  /** Small flushes alone in flight may be written on the loop's thread (fs-log-inline.ts). */
  readonly inlineWrites: boolean;
  readonly compactBelow: number;
  readonly maxBatchBytes: number;
  /** Flushes written at once (each past the one before; retired in order). 1: one at a time. */
  readonly maxFlights: number;
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
  /** Flushes started while another was in flight. */
  readonly overlapped: number;
  /** Flushes written inline, on the event loop's thread (fs-log-inline.ts). */
  readonly inline: number;
  readonly syncs: number;
  readonly records: number;
  readonly segments: number;
  readonly diskBytes: number;
  readonly liveBytes: number;
  readonly compactedSegments: number;
  readonly keys: number;
}

/** A flush: one batch, written at `start` of `segment` (set when it starts, for an exclusive one). */
export interface Flight {
  readonly ops: readonly Op[];
  readonly copies: readonly Copy[];
  /** The batch body's buffers in order: each copy's record, then each op's parts. */
  readonly parts: readonly Buffer[];
  /** Records in the batch. */
  readonly count: number;
  /** Bytes of the records (the batch body). */
  readonly bytes: number;
  /** Rolls to a new segment or cuts back the active one first: nothing else is in flight meanwhile. */
  readonly exclusive: boolean;
  segment: Segment | undefined;
  /** The segment file, for error messages. */
  path: string;
  start: number;
  /** How the write ended; undefined while in flight. */
  outcome: Outcome | undefined;
}

export type Outcome = { readonly ok: true } | { readonly ok: false; readonly cause: unknown };

export interface Op {
  readonly kind: RecordKind;
  /** The key (for a deleteMany op, its first: the one its error names). */
  readonly key: string;
  /** A deleteMany op's keys, in order: `record` is a tombstone for each. Absent for one key. */
  readonly keys: readonly string[] | undefined;
  /** The record: one buffer, or its header and key then its value (see encodeRecord). */
  readonly record: readonly Buffer[];
  /** Bytes of the record. */
  readonly bytes: number;
  resolve(): void;
  reject(error: unknown): void;
}


/** The store's counters with what its segments and index hold. */
export function logStats(counters: Omit<LogStats, "segments" | "diskBytes" | "liveBytes" | "keys">, segments: ReadonlyMap<number, Segment>, keys: number): LogStats {
  let diskBytes = 0;
  let liveBytes = 0;
  for (const s of segments.values()) {
    diskBytes += s.size;
    liveBytes += s.live;
  }
  return { ...counters, segments: segments.size, diskBytes, liveBytes, keys };
}

/** Reads `key`'s record at `at` of `segment` and checks it: bytes the disk changed since they were written are never served. */
export async function readRecord(segment: Segment, key: string, at: Location): Promise<Uint8Array> {
  const head = Buffer.alloc(RECORD_HEADER_BYTES + key.length);
  const value = new Uint8Array(at.length - head.length);
  segment.readers++;
  try {
    await readFully(segment.file, [head, value], at.offset);
  } catch (cause) {
    throw ioError("read", key, segment.file.path, cause);
  } finally {
    if (--segment.readers === 0 && segment.removed) await segment.file.close().catch(() => undefined);
  }
  if (!recordMatches(head, value, key)) {
    segment.damaged = true;
    throw corrupt(key, `its record (${segment.file.path}, offset ${at.offset}) no longer checks: the disk returned other bytes than were written`);
  }
  return value;
}
