import { MessageType } from "./codes";
import { Reader, Writer } from "./encoding";
import { ProtocolError } from "./errors";
import type { StreamEntry } from "./messages";

/** Writes an entry's body (without type byte): seq, time, then its own fields. */
export function writeEntryBody(w: Writer, e: StreamEntry): void {
  w.varUint(e.seq);
  w.varUint(e.time);
  switch (e.type) {
    case MessageType.Relay:
      w.bytes(e.payload);
      break;
    case MessageType.ViewJoin:
      w.string(e.viewId);
      w.bytes(e.viewData);
      break;
    case MessageType.ViewExit:
      w.string(e.viewId);
      break;
    case MessageType.SnapshotRequest:
      break;
    case MessageType.Persisted:
      w.string(e.slot);
      w.varUint(e.upTo);
      w.varUint(e.size);
      w.bytes(e.hash);
      break;
    case MessageType.PersistData:
      w.string(e.slot);
      w.varUint(e.requestSeq);
      w.bytes(e.blob);
      break;
  }
}

/** Reads an entry body of the given type. */
export function readEntryBody(r: Reader, type: number): StreamEntry {
  const seq = r.varUint();
  const time = r.varUint();
  switch (type) {
    case MessageType.Relay:
      return { type, seq, time, payload: r.bytes() };
    case MessageType.ViewJoin:
      return { type, seq, time, viewId: r.string(), viewData: r.bytes() };
    case MessageType.ViewExit:
      return { type, seq, time, viewId: r.string() };
    case MessageType.SnapshotRequest:
      return { type, seq, time };
    case MessageType.Persisted:
      return { type, seq, time, slot: r.string(), upTo: r.varUint(), size: r.varUint(), hash: r.bytes(64) };
    case MessageType.PersistData:
      return { type, seq, time, slot: r.string(), requestSeq: r.varUint(), blob: r.bytes() };
    default:
      throw new ProtocolError(`unknown stream entry type 0x${type.toString(16).padStart(2, "0")}`);
  }
}

/** Bytes an entry takes at least, to bound counts read from untrusted input. */
const MIN_ENTRY_BYTES = 3;

/** A rough size of an entry's encoding, to pre-size buffers. */
export function entrySizeEstimate(e: StreamEntry): number {
  switch (e.type) {
    case MessageType.Relay:
      return 24 + e.payload.length;
    case MessageType.ViewJoin:
      return 24 + e.viewData.length;
    case MessageType.PersistData:
      return 96 + e.blob.length;
    default:
      return 96;
  }
}

/** Writes `count` then each entry as type byte + body (the list inside a Sync frame). */
export function writeEntryList(w: Writer, entries: readonly StreamEntry[]): void {
  w.varUint(entries.length);
  for (const e of entries) {
    w.u8(e.type);
    writeEntryBody(w, e);
  }
}

/** Reads what {@link writeEntryList} wrote. */
export function readEntryList(r: Reader): StreamEntry[] {
  const count = r.varUint();
  // A count the remaining bytes cannot hold is a lie, not a reason to allocate.
  if (count > r.remaining / MIN_ENTRY_BYTES) throw new ProtocolError(`entry list claims ${count} entries in ${r.remaining} bytes`);
  const entries: StreamEntry[] = new Array(count);
  for (let i = 0; i < count; i++) entries[i] = readEntryBody(r, r.u8());
  return entries;
}

/**
 * Encodes a list of stream entries on its own (e.g. a reflector's stored message log). `reserve`
 * leading bytes (zero) come first, for the caller's own header: one buffer, no copy to prepend one.
 */
export function encodeEntries(entries: readonly StreamEntry[], reserve = 0): Uint8Array {
  let estimate = 8 + reserve;
  for (const e of entries) estimate += entrySizeEstimate(e);
  const w = new Writer(estimate);
  for (let i = 0; i < reserve; i++) w.u8(0);
  writeEntryList(w, entries);
  return w.finish();
}

/**
 * Decodes {@link encodeEntries}' output. Byte fields are views into `bytes`.
 * @throws {ProtocolError} if malformed.
 */
export function decodeEntries(bytes: Uint8Array): StreamEntry[] {
  const r = new Reader(bytes);
  const entries = readEntryList(r);
  r.end();
  return entries;
}
