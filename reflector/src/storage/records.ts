import { MessageType, Reader, Writer, decodeEntries, encodeEntries, type StreamEntry } from "@lockstep/protocol";
import { SessionDamagedError, StorageError } from "./errors";

/**
 * Encoders and decoders of the records {@link SessionStore} keeps in a {@link BlobStore}. Each
 * decoder validates its input and throws a {@link SessionDamagedError} naming the key, so corrupt
 * data is reported, never used. Log segments are the exception: {@link decodeSegmentPrefix} returns
 * what is sound, so that the log can recover from a damaged tail (see `log.ts`).
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
  /**
   * The view ids joined in the stream at `seq` (a ViewJoin without a later ViewExit), in first-join
   * order. Stored as `[]` when not given. `undefined` when read back from a format-1 record, which
   * predates views: then the views live at `seq` are unknown.
   */
  readonly views?: readonly string[];
}

const META_FORMAT = 1;
const SNAPSHOT_TAG = 0x53; // "S"
/** Format 1: seq, time, bytes. Format 2 (written since): seq, time, the live views, bytes. */
const SNAPSHOT_FORMAT = 2;
const SNAPSHOT_FORMAT_WITHOUT_VIEWS = 1;
const CLOCK_TAG = 0x43; // "C"
const CLOCK_FORMAT = 1;
const SEGMENT_TAG = 0x4c; // "L"
const SEGMENT_FORMAT = 1;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

const SESSION_KEY = /^sessions\/([^/]+)\//;
const PERSIST_KEY = /^persist\/([^/]+)\//;

/**
 * The {@link SessionDamagedError} for a bad stored record under `key`, saying what the operator can
 * do about it: damaged data never heals by retrying, so the message is for whoever runs the reflector.
 */
export function corrupt(key: string, problem: string, cause?: unknown): SessionDamagedError {
  const session = SESSION_KEY.exec(key)?.[1];
  const slot = PERSIST_KEY.exec(key)?.[1];
  const remedy =
    session !== undefined
      ? `Session ${session} cannot be loaded until this is repaired: restore its keys (sessions/${session}/) from a backup, or delete them and activity/${session} to drop the session`
      : slot !== undefined
        ? `Restore it from a backup, or delete this key to drop that version (\`lockstep-reflector persist list ${slot}\` shows the versions kept, \`persist rollback\` makes an older one the newest)`
        : "Restore it from a backup, or delete it";
  return new SessionDamagedError(`stored record ${JSON.stringify(key)} is corrupt: ${problem}. ${remedy}.`, { key, cause, sessionId: session });
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

/**
 * Encodes a snapshot record (always format 2): tag, format, seq, time, the view count and each view
 * id as a length-prefixed UTF-8 string, then the opaque bytes (to the end of the record).
 */
export function encodeSnapshot(snapshot: StoredSnapshot): Uint8Array {
  const views = snapshot.views ?? [];
  const w = new Writer(snapshot.bytes.length + 24 + views.reduce((n, view) => n + 4 + view.length * 3, 0));
  w.u8(SNAPSHOT_TAG);
  w.u8(SNAPSHOT_FORMAT);
  w.varUint(snapshot.seq);
  w.varUint(snapshot.time);
  w.varUint(views.length);
  for (const view of views) w.string(view);
  w.raw(snapshot.bytes);
  return w.finish();
}

/**
 * Decodes {@link encodeSnapshot}'s output stored under `key`, and format 1 records (without views,
 * so `views` is `undefined`). `bytes` is a view into `record`.
 */
export function decodeSnapshot(key: string, record: Uint8Array): StoredSnapshot {
  const r = new Reader(record);
  const header = field(key, "its header is truncated", () => {
    if (r.u8() !== SNAPSHOT_TAG) throw corrupt(key, "it is not a snapshot record");
    const format = r.u8();
    if (format !== SNAPSHOT_FORMAT && format !== SNAPSHOT_FORMAT_WITHOUT_VIEWS) {
      throw corrupt(key, `unknown snapshot format ${format} (this reflector reads formats ${SNAPSHOT_FORMAT_WITHOUT_VIEWS} and ${SNAPSHOT_FORMAT})`);
    }
    return { format, seq: r.varUint(), time: r.varUint() };
  });
  const { seq, time } = header;
  if (header.format === SNAPSHOT_FORMAT_WITHOUT_VIEWS) return { seq, time, bytes: record.subarray(r.offset) };
  const views = field(key, "its list of live views is truncated or not UTF-8", () => {
    const count = r.varUint();
    // Each id takes at least its length byte: a larger count is damage, and must not size an array.
    if (count > r.remaining) throw corrupt(key, `it claims ${count} live views in ${r.remaining} bytes`);
    const list: string[] = [];
    for (let i = 0; i < count; i++) list.push(r.string());
    if (new Set(list).size !== list.length) throw corrupt(key, "its list of live views names a view twice");
    return list;
  });
  return { seq, time, views, bytes: record.subarray(r.offset) };
}

/** Encodes a clock record (the session's time watermark): tag, format, varUint time. */
export function encodeClock(time: number): Uint8Array {
  const w = new Writer(10);
  w.u8(CLOCK_TAG);
  w.u8(CLOCK_FORMAT);
  w.varUint(time);
  return w.finish();
}

/** Decodes {@link encodeClock}'s output stored under `key`: the time watermark. */
export function decodeClock(key: string, record: Uint8Array): number {
  return field(key, "it is truncated or has trailing bytes", () => {
    const r = new Reader(record);
    if (r.u8() !== CLOCK_TAG) throw corrupt(key, "it is not a clock record");
    const format = r.u8();
    if (format !== CLOCK_FORMAT) throw corrupt(key, `unknown clock format ${format} (this reflector reads format ${CLOCK_FORMAT})`);
    const time = r.varUint();
    r.end();
    return time;
  });
}

/** Runs a decoding step, turning a read past the end (a ProtocolError) into corruption of `key` described by `problem`. */
function field<T>(key: string, problem: string, read: () => T): T {
  try {
    return read();
  } catch (cause) {
    if (cause instanceof StorageError) throw cause;
    throw corrupt(key, problem, cause);
  }
}

/** Encodes one log segment: tag, format, then the entries as `encodeEntries` writes them. */
export function encodeSegment(entries: readonly StreamEntry[]): Uint8Array {
  const out = encodeEntries(entries, 2);
  out[0] = SEGMENT_TAG;
  out[1] = SEGMENT_FORMAT;
  return out;
}

/** A log segment as far as it could be read: its entries up to the first damaged one, and what was wrong. */
export interface SegmentPrefix {
  /** The entries that decode, in stored order (seqs are not checked here). */
  readonly entries: StreamEntry[];
  /** Why the rest could not be read, or `undefined` if the whole segment is sound. */
  readonly problem: string | undefined;
}

/**
 * Decodes {@link encodeSegment}'s output stored under `key` as far as it is sound: every entry up to
 * the first one that does not decode, so a damaged segment still yields its valid prefix.
 * @throws {SessionDamagedError} if it is a segment of a format this reflector does not read: that
 *   may be a newer reflector's data, which must not be taken for damage and cut short.
 */
export function decodeSegmentPrefix(key: string, record: Uint8Array): SegmentPrefix {
  if (record.length === 0) return { entries: [], problem: "it is empty" };
  if (record[0] !== SEGMENT_TAG) return { entries: [], problem: "it is not a log segment" };
  if (record.length === 1) return { entries: [], problem: "it is truncated after its tag" };
  if (record[1] !== SEGMENT_FORMAT) {
    throw corrupt(key, `unknown log segment format ${String(record[1])} (this reflector reads format ${SEGMENT_FORMAT}); if a newer reflector wrote it, run that one`);
  }
  const body = record.subarray(2);
  try {
    const entries = decodeEntries(body);
    return { entries, problem: entries.length === 0 ? "it holds no entries" : undefined };
  } catch {
    // Slow path, only for damaged segments: find where the damage starts.
    return decodeEntryByEntry(body);
  }
}

type Field = "uint" | "bytes";

/**
 * The fields after the type byte of each entry type the log stores, as the protocol writes them
 * (`writeEntryBody`: strings are length-prefixed bytes too). Only used to find where one entry ends
 * in a damaged segment; the protocol's own decoder then validates that entry, so a mistake here can
 * only make recovery stop early, never accept a bad entry. These are also the only types appends
 * accept ({@link isStoredEntryType}), so the log never holds a type this table does not frame.
 */
const ENTRY_FIELDS: ReadonlyMap<number, readonly Field[]> = new Map<number, readonly Field[]>([
  [MessageType.Relay, ["uint", "uint", "bytes"]],
  [MessageType.ViewJoin, ["uint", "uint", "bytes", "bytes"]],
  [MessageType.ViewExit, ["uint", "uint", "bytes"]],
  [MessageType.SnapshotRequest, ["uint", "uint"]],
  [MessageType.Persisted, ["uint", "uint", "bytes", "uint", "uint", "bytes"]],
  [MessageType.PersistData, ["uint", "uint", "bytes", "uint", "bytes"]],
]);

/** Whether the log stores entries of `type`. */
export function isStoredEntryType(type: number): boolean {
  return ENTRY_FIELDS.has(type);
}

function decodeEntryByEntry(body: Uint8Array): SegmentPrefix {
  const r = new Reader(body);
  let count: number;
  try {
    count = r.varUint();
  } catch {
    return { entries: [], problem: "its entry count is truncated" };
  }
  const entries: StreamEntry[] = [];
  for (let i = 0; i < count; i++) {
    const start = r.offset;
    try {
      skipEntry(r);
      entries.push(decodeOneEntry(body.subarray(start, r.offset)));
    } catch (cause) {
      return { entries, problem: `entry ${i} of the ${count} it claims does not decode (${cause instanceof Error ? cause.message : String(cause)})` };
    }
  }
  if (entries.length === 0) return { entries, problem: "it holds no entries" };
  if (r.remaining > 0) return { entries, problem: `${r.remaining} unexpected bytes follow its ${count} entries` };
  // Every entry decoded on its own, so the segment should have as a whole: report it rather than trust either.
  return { entries, problem: "its entries decode one by one but not as a whole" };
}

/** Moves `r` past one entry (type byte and fields); throws if it runs past the end or the type is unknown. */
function skipEntry(r: Reader): void {
  const type = r.u8();
  const fields = ENTRY_FIELDS.get(type);
  if (fields === undefined) throw new StorageError(`unknown entry type 0x${type.toString(16).padStart(2, "0")}`);
  for (const field of fields) {
    if (field === "uint") r.varUint();
    else r.bytes();
  }
}

/** Decodes exactly one entry (type byte and body) with the protocol's decoder. */
function decodeOneEntry(bytes: Uint8Array): StreamEntry {
  const list = new Uint8Array(bytes.length + 1);
  list[0] = 1; // varUint entry count
  list.set(bytes, 1);
  return decodeEntries(list)[0] as StreamEntry;
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
