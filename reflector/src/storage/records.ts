import { Reader, Writer, decodeEntries, encodeEntries, type StreamEntry } from "@lockstep/protocol";
import { StorageError } from "./errors";

/**
 * Encoders and decoders of the records {@link SessionStore} keeps in a {@link BlobStore}. Each
 * decoder validates its input and throws a {@link StorageError} naming the key, so corrupt data is
 * reported, never used.
 */

/** What the session's first client registered, stored once at creation. */
export interface StoredSessionMeta {
  readonly sessionId: string;
  readonly persistentId: string;
  /** Ticks per second the session was created with. */
  readonly tps: number;
  /** Admission data registered by the session's first client: checks joiners' access tokens. */
  readonly verifier: Uint8Array;
  /** Admission data registered by the session's first client: the encrypted password check. */
  readonly check: Uint8Array;
  /** Wall-clock ms at creation (from the injected clock). */
  readonly createdAt: number;
}

/** The latest snapshot: the state right after entry `seq`, at session time `time`; `bytes` are opaque (encrypted). */
export interface StoredSnapshot {
  readonly seq: number;
  readonly time: number;
  readonly bytes: Uint8Array;
}

const META_FORMAT = 1;
const SNAPSHOT_TAG = 0x53; // "S"
const SNAPSHOT_FORMAT = 1;
const SEGMENT_TAG = 0x4c; // "L"
const SEGMENT_FORMAT = 1;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Throws a {@link StorageError} for a bad stored record, saying what to do about it. */
export function corrupt(key: string, problem: string, cause?: unknown): StorageError {
  return new StorageError(
    `stored record ${JSON.stringify(key)} is corrupt: ${problem}. Restore it from a backup, or delete the session's keys to drop the session.`,
    { key, cause },
  );
}

/** Whether `n` is a non-negative safe integer (seqs, times, wall-clock ms). */
export function isCount(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

/** Encodes a session's meta record: JSON, byte fields as base64. */
export function encodeMeta(meta: StoredSessionMeta): Uint8Array {
  const json = {
    format: META_FORMAT,
    sessionId: meta.sessionId,
    persistentId: meta.persistentId,
    tps: meta.tps,
    verifier: Buffer.from(meta.verifier).toString("base64"),
    check: Buffer.from(meta.check).toString("base64"),
    createdAt: meta.createdAt,
  };
  return encoder.encode(JSON.stringify(json));
}

/** Decodes {@link encodeMeta}'s output stored under `key`, checking it belongs to `sessionId`. */
export function decodeMeta(key: string, bytes: Uint8Array, sessionId: string): StoredSessionMeta {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes));
  } catch (cause) {
    throw corrupt(key, "it is not valid UTF-8 JSON", cause);
  }
  if (typeof json !== "object" || json === null) throw corrupt(key, "it is not a JSON object");
  const r = json as Record<string, unknown>;
  if (r["format"] !== META_FORMAT) throw corrupt(key, `unknown format ${JSON.stringify(r["format"])} (this reflector reads format ${META_FORMAT})`);
  if (r["sessionId"] !== sessionId) throw corrupt(key, `it names session ${JSON.stringify(r["sessionId"])}`);
  const persistentId = r["persistentId"];
  if (typeof persistentId !== "string") throw corrupt(key, "persistentId is not a string");
  const tps = r["tps"];
  if (typeof tps !== "number" || !Number.isFinite(tps) || tps <= 0) throw corrupt(key, "tps is not a positive number");
  const createdAt = r["createdAt"];
  if (!isCount(createdAt)) throw corrupt(key, "createdAt is not a non-negative integer");
  return { sessionId, persistentId, tps, verifier: base64Field(key, r, "verifier"), check: base64Field(key, r, "check"), createdAt };
}

function base64Field(key: string, r: Record<string, unknown>, name: string): Uint8Array {
  const value = r[name];
  if (typeof value !== "string" || !BASE64.test(value)) throw corrupt(key, `${name} is not base64`);
  return new Uint8Array(Buffer.from(value, "base64"));
}

/** Encodes a snapshot record: tag, format, seq, time, then the opaque bytes. */
export function encodeSnapshot(snapshot: StoredSnapshot): Uint8Array {
  const w = new Writer(snapshot.bytes.length + 24);
  w.u8(SNAPSHOT_TAG);
  w.u8(SNAPSHOT_FORMAT);
  w.varUint(snapshot.seq);
  w.varUint(snapshot.time);
  w.raw(snapshot.bytes);
  return w.finish();
}

/** Decodes {@link encodeSnapshot}'s output stored under `key`. `bytes` is a view into `record`. */
export function decodeSnapshot(key: string, record: Uint8Array): StoredSnapshot {
  try {
    const r = new Reader(record);
    if (r.u8() !== SNAPSHOT_TAG) throw corrupt(key, "it is not a snapshot record");
    const format = r.u8();
    if (format !== SNAPSHOT_FORMAT) throw corrupt(key, `unknown snapshot format ${format} (this reflector reads format ${SNAPSHOT_FORMAT})`);
    const seq = r.varUint();
    const time = r.varUint();
    return { seq, time, bytes: record.subarray(r.offset) };
  } catch (cause) {
    if (cause instanceof StorageError) throw cause;
    throw corrupt(key, "its header is truncated", cause);
  }
}

/** Encodes one log segment: tag, format, then the entries as `encodeEntries` writes them. */
export function encodeSegment(entries: readonly StreamEntry[]): Uint8Array {
  const body = encodeEntries(entries);
  const out = new Uint8Array(body.length + 2);
  out[0] = SEGMENT_TAG;
  out[1] = SEGMENT_FORMAT;
  out.set(body, 2);
  return out;
}

/** Decodes {@link encodeSegment}'s output stored under `key`; at least one entry. */
export function decodeSegment(key: string, record: Uint8Array): StreamEntry[] {
  if (record[0] !== SEGMENT_TAG) throw corrupt(key, "it is not a log segment");
  if (record[1] !== SEGMENT_FORMAT) throw corrupt(key, `unknown log segment format ${String(record[1])} (this reflector reads format ${SEGMENT_FORMAT})`);
  let entries: StreamEntry[];
  try {
    entries = decodeEntries(record.subarray(2));
  } catch (cause) {
    throw corrupt(key, `its entries do not decode (${cause instanceof Error ? cause.message : String(cause)})`, cause);
  }
  if (entries.length === 0) throw corrupt(key, "it holds no entries");
  return entries;
}

/** Encodes a last-activity record: wall-clock ms as decimal ASCII. */
export function encodeActivity(ms: number): Uint8Array {
  return encoder.encode(String(ms));
}

/** Decodes {@link encodeActivity}'s output, or `undefined` if it is not a valid time. */
export function decodeActivity(bytes: Uint8Array): number | undefined {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return undefined;
  }
  if (!/^[0-9]{1,16}$/.test(text)) return undefined;
  const ms = Number(text);
  return Number.isSafeInteger(ms) ? ms : undefined;
}
