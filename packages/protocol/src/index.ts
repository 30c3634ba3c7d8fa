/**
 * `@lockstep/protocol`: the Lockstep wire format, shared by the client and the reflector.
 * See `PROTOCOL.md` in this package for the frame layouts.
 * @packageDocumentation
 */
export { PROTOCOL_VERSION, MessageType, CloseCode, PersistOutcome, closeCodeName } from "./codes";
export type { MessageTypeCode, CloseCodeValue, PersistOutcomeValue } from "./codes";
export { DEFAULT_LIMITS, DEFAULT_TPS, maxJoinFrameBytes } from "./limits";
export type { Limits } from "./limits";
export { LockstepError, ProtocolError, isCloseCode } from "./errors";
export type { LockstepErrorOptions } from "./errors";
export { isValidId, toBase64Url } from "./ids";
export { equalBytes } from "./bytes";
export { realTimers, unrefTimer, every } from "./timers";
export type { Timers, TimerHandle } from "./timers";
export { Writer, Reader, varUintSize } from "./encoding";
export { encodeEntries, decodeEntries } from "./entries";
export { encodeJoinAuth, decodeJoinAuth, JOIN_AUTH_VERSION, ACCESS_TOKEN_BYTES, MAX_CHECK_BYTES, MAX_APP_TOKEN_BYTES, MAX_APP_NAME_BYTES } from "./auth";
export type { JoinAuth, JoinAuthInput } from "./auth";
export {
  encodeClientMessage,
  decodeClientMessage,
  encodeServerMessage,
  decodeServerMessage,
  encodeRelay,
  encodeSend,
  encodeTick,
} from "./codec";
export { encodeSendBatch, sendBatchBytes, MAX_SEND_BATCH } from "./send-batch";
export { FrameSlab } from "./frame-slab";
export type {
  ClientMessage,
  JoinMessage,
  SendMessage,
  SendBatchMessage,
  LeaveMessage,
  PingMessage,
  ServerMessage,
  SyncMessage,
  StreamEntry,
  RelayEntry,
  ViewJoinEntry,
  ViewExitEntry,
  SnapshotRequestEntry,
  SnapshotVoteMessage,
  SnapshotUploadMessage,
  PersistUploadMessage,
  PersistLoadMessage,
  SnapshotChunkMessage,
  PersistChunkMessage,
  PersistAckMessage,
  PersistedEntry,
  PersistDataEntry,
  UploadRequestMessage,
  DivergenceMessage,
  TickMessage,
  PongMessage,
  ErrorMessage,
  RedirectMessage,
} from "./messages";
