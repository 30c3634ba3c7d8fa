/**
 * `@lockstep/reflector`: the Lockstep WebSocket server. It orders, time-stamps and relays each
 * session's messages and never sees plaintext.
 * @packageDocumentation
 */
export { startReflector } from "./reflector";
export type { Reflector, ReflectorStats } from "./reflector";
/** In-process transports and tests: a reflector core without a listener (see `createReflectorCore`). */
export { createReflectorCore } from "./core";
export type { ReflectorCore, Admission, ShutdownHooks } from "./core";
export type { PeerSocket, PeerSocketListener, PeerInfo } from "./peer-socket";
export type { ReflectorOptions, ReflectorCaps, MetricsOptions } from "./options";
export type { TlsOptions } from "./tls";
export { DEFAULT_CAPS } from "./options";
export { ReflectorError } from "./errors";
export { LockstepError, CloseCode, closeCodeName, type CloseCodeValue } from "@lockstep/protocol";
export { createAppAuth, loadAppAuth } from "./app-auth";
export type { AppAuthOptions, AppAuthVerifier, AppAuthFiles } from "./app-auth";
export { silentLogger, createConsoleLogger } from "./logger";
export type { Logger, LogLevel, LogFormat, LogFields, ConsoleLoggerOptions } from "./logger";
export type { Clock } from "./clock";
export type { SnapshotPolicy } from "./session";
export { createMemoryStore, createFsStore, StorageError, PersistStore, DEFAULT_PERSIST_VERSIONS } from "./storage/index";
export { SessionDamagedError, isDamaged, checkWritable } from "./storage/index";
export type { PersistVersion, PersistVersionInfo, PersistStoreOptions } from "./storage/index";
export type { BlobStore } from "./storage/index";
export { createPostgresStore, checkKey, checkPrefix } from "./storage/index";
export type { PostgresStoreOptions } from "./storage/index";
/** A cluster: several reflector nodes on one PostgreSQL (DEPLOYMENT.md, "A cluster"). */
export { createClusterStore, PgClusterStore, DEFAULT_CLUSTER_PREFIX, DEFAULT_LEASE_MS, DEFAULT_RENEW_MS } from "./cluster/pg-cluster-store";
export type { ClusterStoreOptions } from "./cluster/pg-cluster-store";
export { checkClusterLogs } from "./cluster/pg-cluster-audit";
export type { ClusterAudit, AuditedSession } from "./cluster/pg-cluster-audit";
export { FencedError, isFenced } from "./cluster/types";
export type { ClusterStore, SessionStorage, NodeInfo, Claim } from "./cluster/types";
export type { ClusterOptions } from "./options";
