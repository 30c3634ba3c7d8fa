/**
 * The reflector's storage subsystem: {@link SessionStore} owns layout, atomicity, retention and the
 * per-session message log, and {@link PersistStore} the versions of persisted data, on top of a
 * byte-level {@link BlobStore} adapter (memory, filesystem or PostgreSQL).
 * @packageDocumentation
 */
export type { BlobStore } from "./blob-store";
export { MAX_KEY_LENGTH, MAX_SEGMENT_LENGTH } from "./blob-store";
export { checkKey, checkPrefix } from "./blob-store";
export { StorageError, SessionDamagedError, isDamaged, findDamage } from "./errors";
export { checkWritable } from "./writable";
export { createMemoryStore } from "./memory-store";
export { createFsStore } from "./fs-store";
export { createPostgresStore, DEFAULT_POSTGRES_TABLE, DEFAULT_POSTGRES_CONNECT_TIMEOUT_MS } from "./pg-store";
export type { PostgresStoreOptions } from "./pg-store";
export { SessionStore, DEFAULT_RETENTION_MS } from "./session-store";
export type { StoredSession, SessionStoreOptions } from "./session-store";
export type { SessionRecovery } from "./log";
export type { StoredSessionMeta, StoredSnapshot } from "./records";
export { PersistStore, DEFAULT_PERSIST_VERSIONS } from "./persist-store";
export { DataStore, DATA_BLOB_ID } from "./data-store";
export type { DataStoreLimits, DataUsage, DataRefusal } from "./data-store";
export type { PersistVersion, PersistVersionInfo, PersistRecord, PersistStoreOptions } from "./persist-store";
