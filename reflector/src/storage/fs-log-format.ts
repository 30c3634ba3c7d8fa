/*
 * The byte format of the filesystem store's log (`<dir>/@log/<8 digits>.seg`). Little-endian.
 *
 *   segment  header (16 bytes): "LSTEPLOG", u32 segment number, u32 CRC-32 of the first 12 bytes;
 *            then batches, back to back.
 *   batch    One flush (one write, one fdatasync). Header (24 bytes): "LkBt", u32 header CRC (of
 *            bytes 8..24), u32 body length, u32 record count, u32 body CRC, u32 durable end. Then
 *            the body: `count` records. A batch counts only if both CRCs match, so a flush torn by
 *            a crash (some of its pages on disk, some not) is all or nothing. The durable end is
 *            where the segment's durable batches ended when this one was written: its own start,
 *            or an earlier offset while earlier flushes were still in flight (pipelined flushes;
 *            recovery tells a torn tail from damage by it). 0 in logs written before it existed:
 *            unknown.
 *   record   Header (16 bytes): u8 0xA7, u8 kind (1 put, 2 tombstone), u16 key length, u32 value
 *            length (0 for a tombstone), u32 CRC of the value, u32 CRC of bytes 0..12 plus the key.
 *            Then the key (ASCII) and the value. The record's own CRCs let the records of a
 *            damaged batch be told apart: a good header with a bad value names the damaged key.
 */
import * as zlib from "node:zlib";

/** Sizes of the fixed headers (see the top of this file). */
export const SEGMENT_HEADER_BYTES = 16;
/** @see SEGMENT_HEADER_BYTES */
export const BATCH_HEADER_BYTES = 24;
/** @see SEGMENT_HEADER_BYTES */
export const RECORD_HEADER_BYTES = 16;

/** A record that stores a value. */
export const KIND_PUT = 1;
/** A record that deletes its key. */
export const KIND_TOMBSTONE = 2;
/** What a record does. */
export type RecordKind = typeof KIND_PUT | typeof KIND_TOMBSTONE;

const SEGMENT_MAGIC = Buffer.from("LSTEPLOG", "latin1");
const BATCH_MAGIC = Buffer.from("LkBt", "latin1");
const RECORD_MAGIC = 0xa7;
/** Longest key a record may hold: {@link MAX_KEY_LENGTH} of blob-store.ts. */
const MAX_RECORD_KEY = 1024;

/** zlib's CRC-32 (Node ≥ 20.15), or the same function in JS on older Nodes (engines says ≥ 20). */
export const crc32: (data: Uint8Array, value?: number) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === "function" ? (data, value) => zlib.crc32(data, value) : crc32Table;

let TABLE: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, reflected, as zlib): the fallback for Nodes without `zlib.crc32`. */
export function crc32Table(data: Uint8Array, value = 0): number {
  return crc32Range(data, 0, data.length, value);
}

/**
 * The CRC-32 of `data[start, end)`, continuing `value`, in JS: for the short ranges of record and
 * batch headers and keys, where it beats a call into zlib and needs no subarray (the log's open
 * parses every record: a subarray each is most of what it would allocate).
 */
export function crc32Range(data: Uint8Array, start: number, end: number, value = 0): number {
  const table = crcTable();
  let c = ~value >>> 0;
  for (let i = start; i < end; i++) c = table[(c ^ (data[i] as number)) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function crcTable(): Uint32Array {
  if (TABLE === undefined) {
    TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      TABLE[n] = c >>> 0;
    }
  }
  return TABLE;
}

/** The 16-byte header of segment `no`. */
export function encodeSegmentHeader(no: number): Buffer {
  const out = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(out, 0);
  out.writeUInt32LE(no, 8);
  out.writeUInt32LE(crc32(out.subarray(0, 12)), 12);
  return out;
}

/** Whether `buf` starts with the header of segment `no`. */
export function checkSegmentHeader(buf: Buffer, no: number): boolean {
  return (
    buf.length >= SEGMENT_HEADER_BYTES &&
    buf.subarray(0, 8).equals(SEGMENT_MAGIC) &&
    buf.readUInt32LE(8) === no &&
    buf.readUInt32LE(12) === crc32(buf.subarray(0, 12))
  );
}

/**
 * Values longer than this are not copied into their record: it refers to them until written. A
 * payload of 256 KB would otherwise cost another buffer of that size per put, which the process
 * frees only at a GC and the allocator may not give back to the system.
 */
export const RECORD_COPY_MAX = 4096;

/**
 * Writes a record's header and key at `at` of `out` (its value, if any, goes right after them) and
 * returns where the key ends. The key's bytes and their CRC are made in one pass (keys are ASCII:
 * checkKey); the header's CRC covers its first 12 bytes and the key.
 */
function writeHead(out: Buffer, at: number, kind: RecordKind, key: string, valueLength: number, valueCrc: number): number {
  out[at] = RECORD_MAGIC;
  out[at + 1] = kind;
  out.writeUInt16LE(key.length, at + 2);
  out.writeUInt32LE(valueLength, at + 4);
  out.writeUInt32LE(valueCrc, at + 8);
  const table = crcTable();
  let c = ~crc32Range(out, at, at + 12) >>> 0;
  let p = at + RECORD_HEADER_BYTES;
  for (let i = 0; i < key.length; i++, p++) {
    const byte = key.charCodeAt(i);
    out[p] = byte;
    c = table[(c ^ byte) & 0xff]! ^ (c >>> 8);
  }
  out.writeUInt32LE(~c >>> 0, at + 12);
  return p;
}

/**
 * One record, encoded: header, key and value. Up to {@link RECORD_COPY_MAX} bytes of value, one
 * buffer holding a copy; past that, the header and key, then a view of `value` itself (which the
 * caller must not change before the write: BlobStore.put's contract).
 */
export function encodeRecord(kind: RecordKind, key: string, value: Uint8Array | undefined): Buffer[] {
  const valueLength = value?.length ?? 0;
  const copied = valueLength <= RECORD_COPY_MAX;
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + key.length + (copied ? valueLength : 0));
  const keyEnd = writeHead(out, 0, kind, key, valueLength, value === undefined ? 0 : crc32(value));
  if (value === undefined) return [out];
  if (copied) {
    out.set(value, keyEnd);
    return [out];
  }
  return [out, Buffer.from(value.buffer, value.byteOffset, value.byteLength)];
}

/** The length of a tombstone record of `key` (header and key, no value). */
export const tombstoneBytes = (key: string): number => RECORD_HEADER_BYTES + key.length;

/**
 * Tombstone records of `keys`, in order, in one buffer: the records {@link encodeRecord} makes for
 * them one by one, without a buffer each (deleteMany).
 */
export function encodeTombstones(keys: readonly string[]): Buffer {
  let length = 0;
  for (const key of keys) length += tombstoneBytes(key);
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (const key of keys) at = writeHead(out, at, KIND_TOMBSTONE, key, 0, 0);
  return out;
}

/** `keys` cut into runs whose tombstones take at most `maxBytes` each (a run holds one key at least). */
export function tombstoneChunks(keys: readonly string[], maxBytes: number): (readonly string[])[] {
  const chunks: (readonly string[])[] = [];
  let from = 0;
  let bytes = 0;
  for (let i = 0; i < keys.length; i++) {
    const size = tombstoneBytes(keys[i] as string);
    if (i > from && bytes + size > maxBytes) {
      chunks.push(keys.slice(from, i));
      from = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (keys.length > 0) chunks.push(from === 0 ? keys : keys.slice(from));
  return chunks;
}

/** The header of a batch of `count` records whose bytes are `parts` (in order), written when the segment was durable up to `durableEnd`. */
export function encodeBatchHeader(parts: readonly Uint8Array[], count: number, durableEnd: number): Buffer {
  const out = Buffer.alloc(BATCH_HEADER_BYTES);
  BATCH_MAGIC.copy(out, 0);
  let length = 0;
  let bodyCrc = 0;
  for (const part of parts) {
    length += part.length;
    bodyCrc = crc32(part, bodyCrc);
  }
  out.writeUInt32LE(length, 8);
  out.writeUInt32LE(count, 12);
  out.writeUInt32LE(bodyCrc, 16);
  out.writeUInt32LE(durableEnd, 20);
  out.writeUInt32LE(crc32(out.subarray(8, 24)), 4);
  return out;
}

/** A record found in a segment's bytes. Offsets are into that buffer (= file offsets). */
export interface ParsedRecord {
  readonly kind: RecordKind;
  readonly key: string;
  /** Where the record starts (its header), and its whole length. */
  readonly offset: number;
  readonly length: number;
  readonly valueLength: number;
  /** Whether the value's CRC matches (always true for the records of a batch whose CRCs match). */
  readonly valueOk: boolean;
}

/**
 * The record whose header starts at `p` and that ends by `end`, if its header (and key) check;
 * `checkValue` also verifies the value's CRC (not needed inside a batch whose body CRC matched).
 */
export function parseRecord(buf: Buffer, p: number, end: number, checkValue: boolean): ParsedRecord | undefined {
  if (p + RECORD_HEADER_BYTES > end || buf[p] !== RECORD_MAGIC) return undefined;
  const kind = buf[p + 1];
  const keyLength = buf.readUInt16LE(p + 2);
  const valueLength = buf.readUInt32LE(p + 4);
  if ((kind !== KIND_PUT && kind !== KIND_TOMBSTONE) || keyLength === 0 || keyLength > MAX_RECORD_KEY) return undefined;
  if (kind === KIND_TOMBSTONE && valueLength !== 0) return undefined;
  const keyStart = p + RECORD_HEADER_BYTES;
  const valueStart = keyStart + keyLength;
  if (valueStart + valueLength > end) return undefined;
  const headerCrc = crc32Range(buf, keyStart, valueStart, crc32Range(buf, p, p + 12));
  if (headerCrc !== buf.readUInt32LE(p + 12)) return undefined;
  const valueOk = !checkValue || crc32(buf.subarray(valueStart, valueStart + valueLength)) === buf.readUInt32LE(p + 8);
  return { kind, key: buf.toString("latin1", keyStart, valueStart), offset: p, length: RECORD_HEADER_BYTES + keyLength + valueLength, valueLength, valueOk };
}

/** Whether `head` (a record's header and key, as read back) and `value` are the intact record of `key`. */
export function recordMatches(head: Buffer, value: Uint8Array, key: string): boolean {
  if (head.length !== RECORD_HEADER_BYTES + key.length || head[0] !== RECORD_MAGIC || head[1] !== KIND_PUT) return false;
  if (head.readUInt16LE(2) !== key.length || head.readUInt32LE(4) !== value.length) return false;
  if (head.toString("latin1", RECORD_HEADER_BYTES) !== key) return false;
  if (crc32(head.subarray(RECORD_HEADER_BYTES), crc32(head.subarray(0, 12))) !== head.readUInt32LE(12)) return false;
  return crc32(value) === head.readUInt32LE(8);
}

/** A batch that checks: its end, its records, and the durable end it was written at (0: unknown). */
export interface ParsedBatch {
  readonly end: number;
  readonly durableEnd: number;
  readonly records: readonly ParsedRecord[];
}

/** The batch at `p` if it checks in full, else what is wrong with it. */
export function parseBatch(buf: Buffer, p: number): ParsedBatch | string {
  if (p + BATCH_HEADER_BYTES > buf.length) return "the file ends inside a batch header";
  if (!hasBatchMagic(buf, p)) return "no batch starts there";
  if (crc32Range(buf, p + 8, p + 24) !== buf.readUInt32LE(p + 4)) return "a batch header's checksum does not match";
  const start = p + BATCH_HEADER_BYTES;
  const end = start + buf.readUInt32LE(p + 8);
  if (end > buf.length) return "the file ends inside a batch";
  if (crc32(buf.subarray(start, end)) !== buf.readUInt32LE(p + 16)) return "a batch's checksum does not match";
  const count = buf.readUInt32LE(p + 12);
  const records: ParsedRecord[] = [];
  let q = start;
  for (let i = 0; i < count; i++) {
    const record = parseRecord(buf, q, end, false);
    if (record === undefined) return "a batch's records do not parse";
    records.push(record);
    q += record.length;
  }
  return q === end ? { end, durableEnd: buf.readUInt32LE(p + 20), records } : "a batch's records do not fill it";
}

/** Whether a batch header that checks starts at `p` (its body is not checked). */
export function isBatchHeader(buf: Buffer, p: number): boolean {
  return p + BATCH_HEADER_BYTES <= buf.length && hasBatchMagic(buf, p) && crc32Range(buf, p + 8, p + 24) === buf.readUInt32LE(p + 4);
}

const hasBatchMagic = (buf: Buffer, p: number): boolean => buf[p] === BATCH_MAGIC[0] && buf[p + 1] === BATCH_MAGIC[1] && buf[p + 2] === BATCH_MAGIC[2] && buf[p + 3] === BATCH_MAGIC[3];

/** The offset of the first batch at or after `from` that checks in full, or -1. */
export function findNextBatch(buf: Buffer, from: number): number {
  for (let p = buf.indexOf(BATCH_MAGIC, from); p !== -1; p = buf.indexOf(BATCH_MAGIC, p + 1)) {
    if (typeof parseBatch(buf, p) !== "string") return p;
  }
  return -1;
}
