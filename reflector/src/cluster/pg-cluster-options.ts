/*
 * The options of a cluster store (createClusterStore in pg-cluster-store.ts), checked before
 * anything connects.
 */
import { StorageError } from "../storage/errors";
import { DEFAULT_RETENTION_MS } from "../storage/session-store";
import { checkPrefix, DEFAULT_CLUSTER_PREFIX } from "./pg-cluster-sql";

/** Default {@link ClusterStoreOptions.leaseMs}: a node's lease lasts 5 s past its last renewal. */
export const DEFAULT_LEASE_MS = 5000;
/** Default {@link ClusterStoreOptions.renewMs}: a node renews its lease every second. */
export const DEFAULT_RENEW_MS = 1000;
/** Default {@link ClusterStoreOptions.connectionTimeoutMillis}. */
export const DEFAULT_CLUSTER_CONNECT_TIMEOUT_MS = 10_000;
/** Background events of a cluster store (renewal failures, lease lost and regained), for the logger. */
export type ClusterEventSink = (event: string, fields: Readonly<Record<string, unknown>>) => void;

/** Options of {@link createClusterStore}. */
export interface ClusterStoreOptions {
  /** Where PostgreSQL is, e.g. `postgres://lockstep@db:5432/lockstep`; without it the `PG*` environment variables apply. */
  readonly connectionString?: string;
  /** This node's WebSocket URL (`ws://` or `wss://`), which other nodes redirect clients to. */
  readonly nodeUrl: string;
  /** Prefix of the cluster's five table names: a plain identifier, at most 54 characters. Default `"lockstep_"`. */
  readonly prefix?: string;
  /** How long a lease lasts past its last renewal (ms, by the database's clock). Default {@link DEFAULT_LEASE_MS}. */
  readonly leaseMs?: number;
  /** How often the lease is renewed (ms); must be below `leaseMs / 2`. Default {@link DEFAULT_RENEW_MS}. */
  readonly renewMs?: number;
  /** Sessions inactive for longer than this (ms, wall clock) are collected. Default 30 days. */
  readonly retentionMs?: number;
  /** Wall clock in ms for last activity and retention. Default `Date.now`. */
  readonly now?: () => number;
  /** How long to wait for a new connection (ms). Default {@link DEFAULT_CLUSTER_CONNECT_TIMEOUT_MS}. */
  readonly connectionTimeoutMillis?: number;
  /** Receives background events: `cluster.lease.lost`, `cluster.lease.regained`, `cluster.lease.renewal_failed`, …. */
  readonly onError?: ClusterEventSink;
}

/** Options checked, with their defaults filled in. */
export interface Settings {
  readonly nodeUrl: string;
  readonly prefix: string;
  readonly leaseMs: number;
  readonly renewMs: number;
  readonly retentionMs: number;
  readonly now: () => number;
  readonly connectTimeout: number;
  readonly report: ClusterEventSink;
}

/** Checks {@link ClusterStoreOptions} before anything connects. */
export function checkOptions(options: ClusterStoreOptions): Settings {
  const nodeUrl = options.nodeUrl;
  let parsed: URL | undefined;
  try {
    parsed = new URL(nodeUrl);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== "ws:" && parsed.protocol !== "wss:")) {
    throw new StorageError(`invalid nodeUrl ${JSON.stringify(nodeUrl)}: give the ws:// or wss:// URL clients reach this node at, e.g. ws://10.0.0.5:8787/`);
  }
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const renewMs = options.renewMs ?? DEFAULT_RENEW_MS;
  if (!(Number.isInteger(leaseMs) && leaseMs >= 100 && leaseMs <= 600_000)) {
    throw new StorageError(`leaseMs must be an integer from 100 to 600000 ms, got ${String(leaseMs)}`);
  }
  if (!(Number.isInteger(renewMs) && renewMs >= 10 && renewMs < leaseMs / 2)) {
    throw new StorageError(`renewMs must be an integer of at least 10 ms and below leaseMs / 2 (${leaseMs / 2}), got ${String(renewMs)}: a lease must survive a missed renewal`);
  }
  const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
  if (!(retentionMs >= 0)) throw new StorageError(`retentionMs must be a non-negative number of ms, got ${String(retentionMs)}`);
  const connectTimeout = options.connectionTimeoutMillis ?? DEFAULT_CLUSTER_CONNECT_TIMEOUT_MS;
  if (!(Number.isInteger(connectTimeout) && connectTimeout >= 0)) {
    throw new StorageError(`connectionTimeoutMillis must be a non-negative integer of ms, got ${String(connectTimeout)}`);
  }
  const sink = options.onError;
  const report: ClusterEventSink = (event, fields) => {
    try {
      sink?.(event, fields);
    } catch {
      // A logger must never take the lease loop down.
    }
  };
  return { nodeUrl, prefix: checkPrefix(options.prefix ?? DEFAULT_CLUSTER_PREFIX), leaseMs, renewMs, retentionMs, now: options.now ?? Date.now, connectTimeout, report };
}

