import { MessageType } from "./codes";
import { Reader, Writer } from "./encoding";
import { entrySizeEstimate, readEntryList, writeEntryList } from "./entries";
import { ProtocolError } from "./errors";
import type { SyncMessage } from "./messages";

/** Sync `flags` bit 0: the reflector continues the client's view from its Join's resumeSeq. */
const RESUMED = 0x01;
/** Every flag bit this version defines; a Sync with any other bit set is malformed. */
const KNOWN_FLAGS = RESUMED;

/** A buffer size that holds `msg` without growing (the entries' sizes are estimates). */
export function syncSizeEstimate(msg: SyncMessage): number {
  let estimate = 64 + msg.snapshot.length + msg.persisted.length + msg.auth.length;
  for (const e of msg.entries) estimate += entrySizeEstimate(e);
  return estimate;
}

/**
 * Writes a Sync body (after the frame header).
 * @throws {RangeError} for a resumed Sync with a snapshot or persisted data: it would be refused.
 */
export function writeSyncBody(w: Writer, msg: SyncMessage): void {
  const resumed = msg.resumed ?? false;
  if (resumed && (msg.snapshot.length > 0 || msg.persisted.length > 0)) {
    throw new RangeError("a resumed Sync continues the client's replica: leave its snapshot and persisted empty");
  }
  w.string(msg.sessionId);
  w.string(msg.viewId);
  w.varUint(msg.time);
  w.varUint(msg.seq);
  w.bytes(msg.snapshot);
  w.bytes(msg.persisted);
  w.bytes(msg.auth);
  w.u8(resumed ? RESUMED : 0);
  writeEntryList(w, msg.entries);
}

/**
 * Reads what {@link writeSyncBody} wrote.
 * @throws {ProtocolError} on unknown flag bits, or a resumed Sync that carries a snapshot or persisted data.
 */
export function readSyncBody(r: Reader): SyncMessage {
  const sessionId = r.string();
  const viewId = r.string();
  const time = r.varUint();
  const seq = r.varUint();
  const snapshot = r.bytes();
  const persisted = r.bytes();
  const auth = r.bytes();
  const flags = r.u8();
  // Checked before the entries are read, so a malformed Sync allocates nothing for them.
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new ProtocolError(`Sync flags 0x${flags.toString(16).padStart(2, "0")} set undefined bits; only bit 0 (resumed) is defined`);
  }
  const resumed = (flags & RESUMED) !== 0;
  if (resumed && (snapshot.length > 0 || persisted.length > 0)) {
    throw new ProtocolError(
      `resumed Sync carries a ${snapshot.length}-byte snapshot and ${persisted.length} bytes of persisted data; a resumed Sync carries neither`,
    );
  }
  const entries = readEntryList(r);
  return { type: MessageType.Sync, sessionId, viewId, time, seq, snapshot, persisted, auth, resumed, entries };
}
