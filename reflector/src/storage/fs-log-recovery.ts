/*
 * Opening the log: every segment is scanned in order and the index rebuilt from its records.
 *
 * What a crash can leave, and what is done with it. A flush is one batch written at the end of the
 * newest segment, then one fdatasync (or one O_DSYNC write). Up to a few flushes may be in flight
 * at once, each at the offset where the one before it ends; they are acknowledged in order, so a
 * flush's operations resolve only once it and every flush before it are durable. A new segment is
 * started only while no flush is in flight. So only the newest segment's last batches can be torn
 * (some of their pages on disk, some not, in any order), and none of their operations had been
 * acknowledged. Each batch records where the durable batches ended when it was written (its
 * "durable end"). A bad batch at offset P of the newest segment is a torn write if every batch that
 * checks after it was written with a durable end at or before P (in flight alongside it, so not
 * acknowledged either); the file is cut back to P.
 *
 * The newest segment may also end in zeros written ahead of the log (fs-log-prealloc.ts): a run of
 * zeros to the end of the file is free space, kept as it is. (Acknowledged batches that a disk
 * turned to zeros at the very end of the log look the same, as they look like a torn tail without
 * it; anywhere else they are damage.)
 *
 * Anything else that does not check is damage to data that was acknowledged (a bad disk, a
 * hand-edited file): a bad batch in an older segment, or in the newest one with a good batch after
 * it that was written once it was durable (or by a version that did not record durable ends). It is
 * never silently dropped or served:
 * - its records are read one by one (each has its own checksums) and the good ones kept;
 * - a record whose header and key check but whose value does not marks its key damaged: the key is
 *   listed, and a get of it rejects with a SessionDamagedError naming the key, until it is put or
 *   deleted again (a later good record of the key supersedes the damaged one, as it would have);
 * - bytes that make no record (a damaged header: the key is unknown) are skipped up to the next
 *   record or batch that checks, and reported with their segment and offset in {@link LogDamage}
 *   (the store logs them): a key whose newest record was there reads as its previous state.
 * Segments with damage are never compacted, so the evidence stays for the operator.
 */
import { join } from "node:path";
import {
  KIND_PUT,
  SEGMENT_HEADER_BYTES,
  checkSegmentHeader,
  encodeSegmentHeader,
  findNextBatch,
  isBatchHeader,
  parseBatch,
  parseRecord,
  BATCH_HEADER_BYTES,
  type ParsedRecord,
} from "./fs-log-format";
import type { KeyIndex } from "./fs-log-index";
import { codeOf, readFully, writeFully, type LogFile, type LogIo } from "./fs-log-io";

/** A segment file of the log, open, with what the store tracks of it. */
export interface Segment {
  readonly no: number;
  readonly file: LogFile;
  /** Bytes in the file that belong to the log. */
  size: number;
  /** The file's length: past `size` it holds zeros (fs-log-prealloc.ts; only the active segment has them). */
  allocated: number;
  /** Zeroing space in it failed (a full disk): not tried again. */
  noPrealloc?: boolean;
  /** Bytes of the records the index points at. */
  live: number;
  /** Hashes of the keys of every put record in the segment, for compaction's tombstone rule. */
  readonly hashes: KeyHashes;
  /** Damage was found in it: never compacted, never written to again. */
  damaged: boolean;
  /** Gets reading it right now (its file is closed only once none is). */
  readers: number;
  /** Removed by compaction: close the file once the last reader is done. */
  removed: boolean;
}

/** Damage found while opening the log (see the top of this file). */
export interface LogDamage {
  /** The segment file. */
  readonly segment: string;
  /** Where the damaged bytes start, and how many make no record that checks. */
  readonly offset: number;
  readonly unreadableBytes: number;
  readonly reason: string;
  /** Records of the damaged region that checked and were kept. */
  readonly salvagedRecords: number;
  /** Keys whose newest record there has a damaged value: they read as damaged. */
  readonly damagedKeys: readonly string[];
}

/** A torn write cut from the end of the newest segment while opening (nothing acknowledged is lost). */
export interface LogTruncation {
  readonly segment: string;
  readonly offset: number;
  readonly bytes: number;
}

/** What opening the log found. */
export interface Recovered {
  readonly segments: Segment[];
  readonly damage: LogDamage[];
  readonly truncated: LogTruncation | undefined;
}

/** Segment file names: the segment's number, 8 digits, `.seg`. */
export const SEGMENT_NAME = /^([0-9]{8})\.seg$/;
/** @see SEGMENT_NAME */
export const segmentName = (no: number): string => `${String(no).padStart(8, "0")}.seg`;

/** FNV-1a of the key, as a signed 32-bit integer. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h | 0;
}

/**
 * The key hashes of a segment's puts, in a typed array that grows by doubling: no engine heap
 * objects per put (a segment of a 10,000-session log holds hundreds of thousands), so opening a
 * large log does not grow the young generation (RSS) for them. {@link seal} sorts them once the
 * segment takes no more puts; {@link has} is then a binary search, and a linear scan over the
 * puts added since (the active segment).
 */
export class KeyHashes {
  #data = new Int32Array(16);
  #length = 0;
  #sorted = 0;

  get length(): number {
    return this.#length;
  }

  add(hash: number): void {
    if (this.#length === this.#data.length) {
      const grown = new Int32Array(this.#data.length * 2);
      grown.set(this.#data);
      this.#data = grown;
    }
    this.#data[this.#length++] = hash;
  }

  /** Sorts the hashes and trims the array to them (the segment is sealed, or scanned). */
  seal(): void {
    this.#data = this.#data.slice(0, this.#length).sort();
    this.#sorted = this.#length;
  }

  has(hash: number): boolean {
    const data = this.#data;
    let lo = 0;
    let hi = this.#sorted;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((data[mid] as number) < hash) lo = mid + 1;
      else hi = mid;
    }
    if (lo < this.#sorted && data[lo] === hash) return true;
    for (let i = this.#sorted; i < this.#length; i++) if (data[i] === hash) return true;
    return false;
  }
}

/** Creates segment `no` in `logDir`: the file, its header durable, then its directory entry (two syncs). */
export async function createSegment(io: LogIo, logDir: string, no: number): Promise<Segment> {
  const path = join(logDir, segmentName(no));
  // Left by a roll that failed after creating the file: it holds no batch.
  await io.unlink(path).catch(() => undefined);
  const file = await io.open(path, true);
  try {
    const header = encodeSegmentHeader(no);
    await writeFully(file, [header], 0);
    await file.datasync();
    await io.syncDir(logDir);
    return { no, file, size: header.length, allocated: header.length, live: 0, hashes: new KeyHashes(), damaged: false, readers: 0, removed: false };
  } catch (error) {
    await file.close().catch(() => undefined);
    await io.unlink(path).catch(() => undefined);
    throw error;
  }
}

/** Removes `segment`'s file and its directory entry durably (compaction). */
export async function unlinkSegment(io: LogIo, logDir: string, segment: Segment): Promise<void> {
  // Gone already: an earlier attempt unlinked it, then failed to sync the directory.
  await io.unlink(segment.file.path).catch((error: unknown) => (codeOf(error) === "ENOENT" ? undefined : Promise.reject(error)));
  await io.syncDir(logDir);
}

/** Scans the segments in `logDir`, filling `index`. */
export async function recoverLog(io: LogIo, logDir: string, index: KeyIndex): Promise<Recovered> {
  const numbers = (await io.readdir(logDir))
    .map((name) => SEGMENT_NAME.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const segments: Segment[] = [];
  const damage: LogDamage[] = [];
  let truncated: LogTruncation | undefined;
  const bySeg = new Map<number, Segment>();
  // Records are parsed from a buffer holding the file from `base` on: their offsets are relative to it.
  const apply = (record: ParsedRecord, segment: Segment, base: number, damagedKeys?: string[]): void => {
    const at = { seg: segment.no, offset: base + record.offset, length: record.length };
    let before;
    if (record.kind === KIND_PUT) {
      segment.hashes.add(hashKey(record.key));
      const reason = record.valueOk ? undefined : `its newest record (${segment.file.path}, offset ${at.offset}) has a value whose checksum does not match`;
      if (reason !== undefined) damagedKeys?.push(record.key);
      before = index.set(record.key, at, reason);
      segment.live += record.length;
    } else {
      before = index.delete(record.key);
    }
    if (before !== undefined) (bySeg.get(before.seg) as Segment).live -= before.length;
  };

  try {
    for (let i = 0; i < numbers.length; i++) truncated = (await scanSegment(numbers[i] as number, i === numbers.length - 1)) ?? truncated;
  } catch (error) {
    for (const segment of segments) await segment.file.close().catch(() => undefined);
    throw error;
  }
  // A damaged record superseded by a later good one (or a delete) is no longer the key's state.
  const reports = damage.map((d) => ({ ...d, damagedKeys: d.damagedKeys.filter((key) => index.get(key)?.damaged === true) }));
  return { segments, damage: reports, truncated };

  async function scanSegment(no: number, newest: boolean): Promise<LogTruncation | undefined> {
    const file = await io.open(join(logDir, segmentName(no)), false);
    const size = await file.size();
    // The file is read through a window (`win` holds its bytes from `base` on), so a large log is
    // never in memory whole: at most SCAN_WINDOW bytes, or one batch larger than that.
    let win: Buffer = Buffer.alloc(0);
    let base = 0;
    let pooled: Buffer | undefined;
    /** Whether the window holds `bytes` from `from` (or up to the end of the file); checked before calling cover(), so nearly every batch awaits nothing. */
    const covered = (from: number, bytes: number): boolean => from >= base && Math.min(size, from + bytes) <= base + win.length;
    /** Reads the window from `from`, at least `bytes` of it (callers check covered() first). */
    const cover = async (from: number, bytes: number): Promise<void> => {
      const length = Math.min(size, from + Math.max(bytes, SCAN_WINDOW)) - from;
      if (length > SCAN_WINDOW) win = Buffer.allocUnsafe(length);
      else win = (pooled ??= Buffer.allocUnsafe(Math.min(size, SCAN_WINDOW))).subarray(0, length);
      await readFully(file, [win], from);
      base = from;
    };
    if (!covered(0, SEGMENT_HEADER_BYTES)) await cover(0, SEGMENT_HEADER_BYTES);
    const headerOk = checkSegmentHeader(win, no);
    // A segment whose header does not check is scanned whole, as damage.
    const whole = headerOk ? undefined : await readWhole(file, 0, size);
    if (whole !== undefined) {
      if (newest && findNextBatch(whole, 0) < 0) {
        // Created by a roll just before a crash, before its header was durable: holds nothing.
        await file.close();
        await io.unlink(file.path);
        await io.syncDir(logDir);
        return size > 0 ? { segment: file.path, offset: 0, bytes: size } : undefined;
      }
    }
    const segment: Segment = { no, file, size, allocated: size, live: 0, hashes: new KeyHashes(), damaged: false, readers: 0, removed: false };
    segments.push(segment);
    bySeg.set(no, segment);
    let truncated: LogTruncation | undefined;
    if (whole !== undefined) {
      truncated = await scanDamaged(segment, whole, 0, 0, "the segment header does not check", newest);
    } else {
      let p = SEGMENT_HEADER_BYTES;
      while (p < size) {
        if (!covered(p, BATCH_HEADER_BYTES)) await cover(p, BATCH_HEADER_BYTES);
        // A batch whose header checks is read whole before it is parsed.
        if (isBatchHeader(win, p - base)) {
          const batchBytes = BATCH_HEADER_BYTES + win.readUInt32LE(p - base + 8);
          if (!covered(p, batchBytes)) await cover(p, batchBytes);
        }
        const batch = parseBatch(win, p - base);
        if (typeof batch === "string") {
          // A torn tail or damage: judged on the rest of the file, whole (the window may end early).
          truncated = await scanDamaged(segment, await readWhole(file, p, size - p), p, p, "", newest);
          break;
        }
        for (const record of batch.records) apply(record, segment, base);
        p = base + batch.end;
      }
    }
    segment.hashes.seal();
    return truncated;
  }

  /**
   * Scans `buf` (the segment from `base` to its end) from `start` on, where a batch did not check
   * (`reason`, or "" to parse it again): a torn tail of the newest segment is cut back; damage
   * elsewhere is salvaged record by record and reported.
   */
  async function scanDamaged(segment: Segment, buf: Buffer, base: number, start: number, reason: string, newest: boolean): Promise<LogTruncation | undefined> {
    const { file } = segment;
    const size = base + buf.length;
    let p = start;
    while (p < size) {
      const batch = reason === "" ? parseBatch(buf, p - base) : reason;
      if (typeof batch !== "string") {
        for (const record of batch.records) apply(record, segment, base);
        p = base + batch.end;
        continue;
      }
      // Zeros from here to the end of the newest segment are space zeroed ahead of the log (fs-log-prealloc.ts).
      if (newest && isZero(buf.subarray(p - base))) {
        segment.size = p;
        return undefined;
      }
      const next = findNextBatch(buf, p - base + 1);
      if (newest && p >= SEGMENT_HEADER_BYTES && onlyFlightsAfter(buf, next, p)) {
        await file.truncate(p);
        await file.datasync();
        segment.size = p;
        return { segment: file.path, offset: p, bytes: size - p };
      }
      const end = next < 0 ? size : base + next;
      damage.push(salvage(buf, base, p, end, segment, batch, apply));
      segment.damaged = true;
      p = end;
      reason = "";
    }
    return undefined;
  }
}

/**
 * Whether every batch that checks in `buf` from `from` on (-1: none) was written while the batch
 * at `p` was still in flight (its durable end is at or before `p`): then none of them was
 * acknowledged (flushes are acknowledged in order), and a bad batch at `p` is a torn tail.
 */
function onlyFlightsAfter(buf: Buffer, from: number, p: number): boolean {
  for (let q = from; q >= 0; ) {
    const batch = parseBatch(buf, q);
    if (typeof batch === "string") throw new Error("unreachable: findNextBatch returned a batch that does not check");
    if (batch.durableEnd === 0 || batch.durableEnd > p) return false;
    q = findNextBatch(buf, batch.end);
  }
  return true;
}

/** Whether every byte of `buf` is zero (compared a window at a time, natively). */
function isZero(buf: Buffer): boolean {
  const zeros = Buffer.alloc(Math.min(buf.length, 64 * 1024));
  for (let p = 0; p < buf.length; p += zeros.length) {
    const end = Math.min(buf.length, p + zeros.length);
    if (buf.compare(zeros, 0, end - p, p, end) !== 0) return false;
  }
  return true;
}

/** Bytes of a segment read at a time while scanning it. */
const SCAN_WINDOW = 1 << 20;

/** `length` bytes of `file` from `position`, in a buffer of their own. */
async function readWhole(file: LogFile, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  await readFully(file, [buf], position);
  return buf;
}

/** Keeps the records of the damaged region `[start, end)` that check, one by one. */
function salvage(
  buf: Buffer,
  base: number,
  start: number,
  end: number,
  segment: Segment,
  reason: string,
  apply: (r: ParsedRecord, s: Segment, base: number, damaged: string[]) => void,
): LogDamage {
  const damagedKeys: string[] = [];
  let unreadable = 0;
  let salvaged = 0;
  // Offsets into `buf`, which holds the file from `base` on.
  let p = start - base;
  const stop = end - base;
  while (p < stop) {
    const record = parseRecord(buf, p, stop, true);
    if (record !== undefined) {
      apply(record, segment, base, damagedKeys);
      if (record.valueOk) salvaged++;
      p += record.length;
    } else if (isBatchHeader(buf, p) && p + BATCH_HEADER_BYTES <= stop) {
      p += BATCH_HEADER_BYTES;
    } else {
      unreadable++;
      p++;
    }
  }
  return { segment: segment.file.path, offset: start, unreadableBytes: unreadable, reason, salvagedRecords: salvaged, damagedKeys };
}
