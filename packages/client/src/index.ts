/**
 * `@lockstep/client`: replicated deterministic models for multi-user apps. Multisynq/Croquet
 * compatible: `import * as Multisynq from "@lockstep/client"`.
 * @packageDocumentation
 */
export { Model } from "./kernel/model";
export type { ModelClass, ModelHandler, FutureProxy } from "./kernel/model";
export { View } from "./view/view";
export type { EventSpec, ViewFutureProxy, PublishOptions } from "./view/view";
export type { Handling } from "./view/domain";
export { Session, DEFAULT_REFLECTOR_URL, startSession } from "./session";
export type { JoinOptions, LockstepSession } from "./session";
export type { SessionStatus } from "./session/status";
export { Constants } from "./kernel/constants";
export { VERSION } from "./kernel/version";
export { Messenger, LockstepMessenger } from "./view/messenger";
export type { MessengerHandler, MessengerSource } from "./view/messenger";
export type { CroquetViewRealm, CroquetVM, CroquetController } from "./view/realm-compat";
export { App } from "./app/index";
export type { MessageLevel } from "./session/ui";
export type { WidgetDockOptions, QRCanvasOptions, QRErrorCorrection, ShowMessageOptions } from "./app/index";
export { UsageError, JoinError, SessionError, ReplayError } from "./errors";
export type { ReplayReason } from "./errors";
export { LockstepError, CloseCode, closeCodeName, type CloseCodeValue } from "@lockstep/protocol";
export type { AppToken } from "./session/join";
export { DecryptionError } from "./session/crypto";
export { Data, DataHandle, DataError } from "./data/index";
export type { DataStoreOptions } from "./data/index";
export type { TypeSpec } from "./kernel/registry";
export type { SocketFactory, SocketLike } from "./session/connection";
export type { Timers, TimerHandle } from "@lockstep/protocol";
export type { SessionIdentity } from "./kernel/identity";
export { persist, session, global, withKey, DEFAULT_PERSIST_DELAY_MS } from "./kernel/persist-spec";
export type { PersistOptions, PersistSpec, KeyStrategy } from "./kernel/persist-spec";
