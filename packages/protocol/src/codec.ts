import { CloseCode, MessageType, PROTOCOL_VERSION } from "./codes";
import { encodeSendBatch, readSendBatch } from "./send-batch";
import { Reader, Writer, varUintSize, writeVarUintAt } from "./encoding";
import type { FrameSlab } from "./frame-slab";
import { entrySizeEstimate, readEntryBody, writeEntryBody } from "./entries";
import { ProtocolError } from "./errors";
import { isValidId } from "./ids";
import { DEFAULT_LIMITS, type Limits } from "./limits";
import type { ClientMessage, DivergenceMessage, JoinMessage, ServerMessage } from "./messages";
import { readSyncBody, syncSizeEstimate, writeSyncBody } from "./sync";

/** Longest hash a vote or divergence report may carry. */
const MAX_HASH_BYTES = 64;

function header(w: Writer, type: number): void {
  w.u8(PROTOCOL_VERSION);
  w.u8(type);
}

function openFrame(frame: Uint8Array): { reader: Reader; type: number } {
  if (frame.length < 2) throw new ProtocolError(`frame of ${frame.length} bytes is shorter than its 2-byte header`);
  const version = frame[0]!;
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `protocol version ${version} is not supported (this peer speaks ${PROTOCOL_VERSION})`,
      CloseCode.VersionMismatch,
    );
  }
  return { reader: new Reader(frame, 2), type: frame[1]! };
}

/** Encodes a client → reflector frame. */
export function encodeClientMessage(msg: ClientMessage): Uint8Array {
  switch (msg.type) {
    case MessageType.Join: {
      const w = new Writer(128 + msg.viewData.length + msg.auth.length);
      header(w, msg.type);
      w.string(msg.sessionId);
      w.string(msg.persistentId);
      w.string(msg.viewId);
      w.varUint(msg.tps);
      w.bytes(msg.auth);
      w.bytes(msg.viewData);
      w.varUint(msg.resumeSeq ?? 0);
      return w.finish();
    }
    case MessageType.Send:
      return encodeSend(msg.payload);
    case MessageType.SendBatch:
      return encodeSendBatch(msg.payloads);
    case MessageType.Leave: {
      return Uint8Array.of(PROTOCOL_VERSION, MessageType.Leave);
    }
    case MessageType.Ping: {
      const w = new Writer(12);
      header(w, msg.type);
      w.varUint(msg.id);
      return w.finish();
    }
    case MessageType.SnapshotVote: {
      const w = new Writer(16 + msg.hash.length);
      header(w, msg.type);
      w.varUint(msg.seq);
      w.bytes(msg.hash);
      return w.finish();
    }
    case MessageType.SnapshotUpload: {
      const w = new Writer(32 + msg.hash.length + msg.snapshot.length);
      header(w, msg.type);
      w.varUint(msg.seq);
      w.bytes(msg.hash);
      w.bytes(msg.snapshot);
      return w.finish();
    }
    case MessageType.PersistUpload: {
      const w = new Writer(64 + msg.slot.length * 3 + msg.token.length + msg.hash.length + msg.blob.length);
      header(w, msg.type);
      writePersistHeader(w, msg);
      w.bytes(msg.blob);
      return w.finish();
    }
    case MessageType.PersistLoad: {
      const w = new Writer(32 + msg.slot.length * 3 + msg.token.length);
      header(w, msg.type);
      w.string(msg.slot);
      w.bytes(msg.token);
      w.varUint(msg.requestSeq);
      return w.finish();
    }
    case MessageType.SnapshotChunk: {
      const w = new Writer(48 + msg.hash.length + msg.data.length);
      header(w, msg.type);
      w.varUint(msg.seq);
      w.bytes(msg.hash);
      writeChunk(w, msg);
      return w.finish();
    }
    case MessageType.PersistChunk: {
      const w = new Writer(80 + msg.slot.length * 3 + msg.token.length + msg.hash.length + msg.data.length);
      header(w, msg.type);
      writePersistHeader(w, msg);
      writeChunk(w, msg);
      return w.finish();
    }
  }
}

/** The fields PersistUpload and PersistChunk share: slot, token, seq, hash, size. */
function writePersistHeader(w: Writer, h: { slot: string; token: Uint8Array; seq: number; hash: Uint8Array; size: number }): void {
  w.string(h.slot);
  w.bytes(h.token);
  w.varUint(h.seq);
  w.bytes(h.hash);
  w.varUint(h.size);
}

function readPersistHeader(r: Reader, limits: Limits): { slot: string; token: Uint8Array; seq: number; hash: Uint8Array; size: number } {
  return { slot: readSlot(r, limits), token: r.bytes(MAX_HASH_BYTES), seq: r.varUint(), hash: r.bytes(MAX_HASH_BYTES), size: r.varUint() };
}

/** A chunk's place in its upload and its data (SnapshotChunk, PersistChunk). */
function writeChunk(w: Writer, c: { total: number; offset: number; data: Uint8Array }): void {
  w.varUint(c.total);
  w.varUint(c.offset);
  w.bytes(c.data);
}

/** Encodes a `Send` frame with one allocation of exactly the right size (hot path). */
export function encodeSend(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + varUintSize(payload.length) + payload.length);
  out[0] = PROTOCOL_VERSION;
  out[1] = MessageType.Send;
  let pos = writeVarUintAt(out, 2, payload.length);
  out.set(payload, pos);
  pos += payload.length;
  return out;
}

/**
 * Decodes and validates a client → reflector frame against `limits`.
 * @throws {ProtocolError} with the close code to disconnect the sender with.
 */
export function decodeClientMessage(frame: Uint8Array, limits: Limits = DEFAULT_LIMITS): ClientMessage {
  // No frame is larger than maxFrameBytes: big snapshots and persisted data travel in chunks.
  if (frame.length > limits.maxFrameBytes) {
    throw new ProtocolError(`frame of ${frame.length} bytes exceeds limit ${limits.maxFrameBytes}; send large uploads in chunks`, CloseCode.TooLarge);
  }
  const { reader: r, type } = openFrame(frame);
  let msg: ClientMessage;
  switch (type) {
    case MessageType.Join:
      msg = decodeJoin(r, limits);
      break;
    case MessageType.Send: {
      const length = r.varUint();
      if (length > limits.maxPayloadBytes) {
        throw new ProtocolError(`payload of ${length} bytes exceeds limit ${limits.maxPayloadBytes}`, CloseCode.TooLarge);
      }
      if (length !== r.remaining) throw new ProtocolError(`send payload says ${length} bytes, frame has ${r.remaining}`);
      msg = { type, payload: frame.subarray(r.offset) };
      return msg;
    }
    case MessageType.SendBatch:
      msg = readSendBatch(r, limits);
      break;
    case MessageType.Leave:
      msg = { type };
      break;
    case MessageType.Ping:
      msg = { type, id: r.varUint() };
      break;
    case MessageType.SnapshotVote:
      msg = { type, seq: r.varUint(), hash: r.bytes(MAX_HASH_BYTES) };
      break;
    case MessageType.SnapshotUpload: {
      const seq = r.varUint();
      const hash = r.bytes(MAX_HASH_BYTES);
      // Read unbounded and check after, so an oversized snapshot closes with TooLarge (as a Send payload does), not ProtocolError.
      const snapshot = r.bytes();
      if (snapshot.length > limits.maxSnapshotBytes) {
        throw new ProtocolError(`snapshot of ${snapshot.length} bytes exceeds limit ${limits.maxSnapshotBytes}`, CloseCode.TooLarge);
      }
      msg = { type, seq, hash, snapshot };
      break;
    }
    case MessageType.PersistUpload: {
      const fields = readPersistHeader(r, limits);
      const blob = r.bytes();
      if (blob.length > limits.maxPersistBytes) {
        throw new ProtocolError(`persisted data of ${blob.length} bytes exceeds limit ${limits.maxPersistBytes}`, CloseCode.TooLarge);
      }
      msg = { type, ...fields, blob };
      break;
    }
    case MessageType.PersistLoad:
      msg = { type, slot: readSlot(r, limits), token: r.bytes(MAX_HASH_BYTES), requestSeq: r.varUint() };
      break;
    case MessageType.SnapshotChunk: {
      const seq = r.varUint();
      const hash = r.bytes(MAX_HASH_BYTES);
      const { total, offset, data } = readChunk(r, limits, limits.maxSnapshotBytes, "snapshot");
      msg = { type, seq, hash, total, offset, data };
      break;
    }
    case MessageType.PersistChunk: {
      const fields = readPersistHeader(r, limits);
      msg = { type, ...fields, ...readChunk(r, limits, limits.maxPersistBytes, "persisted data") };
      break;
    }
    default:
      throw new ProtocolError(`unknown client frame type 0x${type.toString(16).padStart(2, "0")}`);
  }
  r.end();
  return msg;
}

/** The place and bytes of an upload chunk, checked against the upload's cap (`max`) and the chunk size limit. */
function readChunk(r: Reader, limits: Limits, max: number, what: string): { total: number; offset: number; data: Uint8Array } {
  const total = r.varUint();
  const offset = r.varUint();
  const data = r.bytes();
  if (total > max) throw new ProtocolError(`${what} of ${total} bytes exceeds limit ${max}`, CloseCode.TooLarge);
  if (data.length > limits.maxChunkBytes) {
    throw new ProtocolError(`upload chunk of ${data.length} bytes exceeds limit ${limits.maxChunkBytes}`, CloseCode.TooLarge);
  }
  if (data.length === 0 || offset + data.length > total) {
    throw new ProtocolError(`upload chunk of ${data.length} bytes at offset ${offset} does not fit an upload of ${total} bytes`);
  }
  return { total, offset, data };
}

/** A persistence slot name: an id, like sessionId and persistentId. */
function readSlot(r: Reader, limits: Limits): string {
  const slot = r.string(limits.maxIdLength * 4);
  if (!isValidId(slot, limits.maxIdLength)) throw new ProtocolError(`persistence slot ${JSON.stringify(slot.slice(0, 80))} is not a base64url id`);
  return slot;
}

function decodeJoin(r: Reader, limits: Limits): JoinMessage {
  // Fields are read unbounded (maxFrameBytes already bounds them) so that an overlong id closes with
  // BadJoin and an oversized auth or viewData with TooLarge, not with a generic ProtocolError.
  const sessionId = r.string();
  const persistentId = r.string();
  const viewId = r.string();
  const tps = r.varUint();
  const auth = r.bytes();
  const viewData = r.bytes();
  const resumeSeq = r.varUint();
  if (auth.length > limits.maxAuthBytes) {
    throw new ProtocolError(`join auth of ${auth.length} bytes exceeds limit ${limits.maxAuthBytes}`, CloseCode.TooLarge);
  }
  if (viewData.length > limits.maxViewDataBytes) {
    throw new ProtocolError(`join viewData of ${viewData.length} bytes exceeds limit ${limits.maxViewDataBytes}`, CloseCode.TooLarge);
  }
  for (const [field, id] of [["sessionId", sessionId], ["persistentId", persistentId], ["viewId", viewId]] as const) {
    if (!isValidId(id, limits.maxIdLength)) {
      throw new ProtocolError(`join ${field} ${JSON.stringify(id.slice(0, 80))} is not a base64url id`, CloseCode.BadJoin);
    }
  }
  if (tps < limits.minTps || tps > limits.maxTps) {
    throw new ProtocolError(`join tps ${tps} is outside ${limits.minTps}..${limits.maxTps}`, CloseCode.BadJoin);
  }
  return { type: MessageType.Join, sessionId, persistentId, viewId, tps, auth, viewData, resumeSeq };
}

/** Encodes a reflector → client frame. */
export function encodeServerMessage(msg: ServerMessage): Uint8Array {
  switch (msg.type) {
    case MessageType.Relay:
      return encodeRelay(msg.seq, msg.time, msg.payload);
    case MessageType.ViewJoin:
    case MessageType.ViewExit:
    case MessageType.SnapshotRequest:
    case MessageType.Persisted:
    case MessageType.PersistData: {
      const w = new Writer(8 + entrySizeEstimate(msg));
      header(w, msg.type);
      writeEntryBody(w, msg);
      return w.finish();
    }
    case MessageType.UploadRequest: {
      const w = new Writer(12);
      header(w, msg.type);
      w.varUint(msg.seq);
      return w.finish();
    }
    case MessageType.Divergence: {
      const split = msg.split ?? false;
      if (split && msg.hash.length > 0) throw new RangeError("a split Divergence has no majority: leave its hash empty");
      const w = new Writer(16 + msg.hash.length);
      header(w, msg.type);
      w.varUint(msg.seq);
      w.bytes(msg.hash);
      w.u8(split ? 1 : 0);
      return w.finish();
    }
    case MessageType.PersistAck: {
      const w = new Writer(32 + msg.slot.length * 3 + msg.message.length * 3);
      header(w, msg.type);
      w.string(msg.slot);
      w.varUint(msg.seq);
      w.u8(msg.outcome);
      w.varUint(msg.version);
      w.string(msg.message);
      return w.finish();
    }
    case MessageType.Sync: {
      const w = new Writer(syncSizeEstimate(msg));
      header(w, msg.type);
      writeSyncBody(w, msg);
      return w.finish();
    }
    case MessageType.Tick:
      return encodeTick(msg.time);
    case MessageType.Pong: {
      const w = new Writer(20);
      header(w, msg.type);
      w.varUint(msg.id);
      w.varUint(msg.time);
      return w.finish();
    }
    case MessageType.Error: {
      const w = new Writer(16 + msg.message.length * 3);
      header(w, msg.type);
      w.varUint(msg.code);
      w.string(msg.message);
      return w.finish();
    }
    case MessageType.Redirect: {
      const w = new Writer(8 + msg.url.length * 3);
      header(w, msg.type);
      w.string(msg.url);
      return w.finish();
    }
  }
}

/**
 * Encodes a `Relay` frame of exactly the right size, taken from `slab` if given (see FrameSlab).
 * The reflector encodes each relayed message once and sends the same bytes to every client (hot path).
 */
export function encodeRelay(seq: number, time: number, payload: Uint8Array, slab?: FrameSlab): Uint8Array {
  const size = 2 + varUintSize(seq) + varUintSize(time) + varUintSize(payload.length) + payload.length;
  const out = slab === undefined ? new Uint8Array(size) : slab.take(size);
  out[0] = PROTOCOL_VERSION;
  out[1] = MessageType.Relay;
  let pos = writeVarUintAt(out, 2, seq);
  pos = writeVarUintAt(out, pos, time);
  pos = writeVarUintAt(out, pos, payload.length);
  out.set(payload, pos);
  return out;
}

/** Encodes a `Tick` frame. */
export function encodeTick(time: number): Uint8Array {
  const out = new Uint8Array(2 + varUintSize(time));
  out[0] = PROTOCOL_VERSION;
  out[1] = MessageType.Tick;
  writeVarUintAt(out, 2, time);
  return out;
}

/** A Divergence body: seq, hash, then `split`, which must be 0 or 1 (and 1 only with an empty hash). */
function readDivergence(r: Reader): DivergenceMessage {
  const seq = r.varUint();
  const hash = r.bytes(MAX_HASH_BYTES);
  const split = r.u8();
  if (split > 1) throw new ProtocolError(`Divergence split is ${split}; it must be 0 or 1`);
  if (split === 1 && hash.length > 0) throw new ProtocolError(`split Divergence carries a ${hash.length}-byte hash; a split has no majority hash`);
  return { type: MessageType.Divergence, seq, hash, split: split === 1 };
}

/**
 * Decodes a reflector → client frame. Byte fields are views into `frame` (no copies).
 * @throws {ProtocolError} on any malformed frame.
 */
export function decodeServerMessage(frame: Uint8Array): ServerMessage {
  const { reader: r, type } = openFrame(frame);
  let msg: ServerMessage;
  switch (type) {
    case MessageType.Relay:
    case MessageType.ViewJoin:
    case MessageType.ViewExit:
    case MessageType.SnapshotRequest:
    case MessageType.Persisted:
    case MessageType.PersistData:
      msg = readEntryBody(r, type);
      break;
    case MessageType.PersistAck:
      msg = { type, slot: r.string(), seq: r.varUint(), outcome: r.u8(), version: r.varUint(), message: r.string() };
      break;
    case MessageType.UploadRequest:
      msg = { type, seq: r.varUint() };
      break;
    case MessageType.Divergence:
      msg = readDivergence(r);
      break;
    case MessageType.Sync:
      msg = readSyncBody(r);
      break;
    case MessageType.Tick:
      msg = { type, time: r.varUint() };
      break;
    case MessageType.Pong:
      msg = { type, id: r.varUint(), time: r.varUint() };
      break;
    case MessageType.Error:
      msg = { type, code: r.varUint(), message: r.string() };
      break;
    case MessageType.Redirect:
      msg = { type, url: r.string() };
      break;
    default:
      throw new ProtocolError(`unknown server frame type 0x${type.toString(16).padStart(2, "0")}`);
  }
  r.end();
  return msg;
}
