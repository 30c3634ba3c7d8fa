/**
 * `@lockstep/client`: replicated deterministic models for multi-user apps. Multisynq/Croquet
 * compatible: `import * as Multisynq from "@lockstep/client"`.
 * @packageDocumentation
 */
export { Model } from "./model";
export type { ModelClass, ModelHandler, FutureProxy } from "./model";
export { View } from "./view";
export type { EventSpec, ViewFutureProxy } from "./view";
export type { Handling } from "./view-domain";
export { Session, DEFAULT_REFLECTOR_URL } from "./session";
export type { JoinOptions, LockstepSession } from "./session";
export { Constants } from "./constants";
export { App } from "./app";
export type { MessageLevel } from "./session-ui";
export type { WidgetDockOptions } from "./app-dock";
export type { QRCanvasOptions, QRErrorCorrection } from "./app-qr";
export type { ShowMessageOptions } from "./app-messages";
export { UsageError, JoinError, SessionError, ReplayError } from "./errors";
export type { ReplayReason } from "./errors";
export type { AppToken } from "./join";
export { DecryptionError } from "./crypto";
export type { TypeSpec } from "./registry";
export type { SocketFactory, SocketLike } from "./connection";
export type { SessionIdentity } from "./identity";
export { persist, session, global, withKey, DEFAULT_PERSIST_DELAY_MS } from "./persist";
export type { PersistOptions, PersistSpec, KeyStrategy } from "./persist";
