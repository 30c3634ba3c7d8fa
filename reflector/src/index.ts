/**
 * `@lockstep/reflector`: the Lockstep WebSocket server. It orders, time-stamps and relays each
 * session's messages and never sees plaintext.
 * @packageDocumentation
 */
export { startReflector } from "./reflector";
export type { Reflector, ReflectorStats } from "./reflector";
export type { ReflectorOptions } from "./options";
export { ReflectorError } from "./errors";
export { silentLogger, createConsoleLogger } from "./logger";
export type { Logger, LogLevel, LogFields, ConsoleLoggerOptions } from "./logger";
export type { Clock } from "./clock";
export type { SnapshotPolicy } from "./session";
export { createMemoryStore, createFsStore, StorageError } from "./storage/index";
export type { BlobStore } from "./storage/index";
