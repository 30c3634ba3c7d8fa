import type { Registry } from "prom-client";
import type { ReflectorStats } from "./core";
import type { Instruments } from "./instruments";

/** What the exporter reads when scraped: the running counts and the current state. */
export interface MetricsSource {
  readonly instruments: Instruments;
  stats(): ReflectorStats;
}

/** Options of {@link ReflectorMetrics}. */
export interface ReflectorMetricsOptions {
  /** Add prom-client's process and Node.js metrics (CPU, memory, handles, event loop lag, GC). */
  readonly process: boolean;
}

/** Upper bounds of the storage append histogram, in seconds: a memory store's microseconds up to a struggling disk or database. */
const APPEND_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The Prometheus metrics of one reflector, in a registry of its own (never prom-client's global
 * one, so two reflectors in one process do not clash). Counters are copied from the
 * {@link Instruments} at scrape time; only the append histogram is fed as it happens (once per
 * group commit, not per message), from its creation on.
 */
export class ReflectorMetrics {
  /** The registry; an embedding app may merge it into its own with `Registry.merge`. */
  readonly registry: Registry;

  private constructor(prom: typeof import("prom-client"), source: MetricsSource, options: ReflectorMetricsOptions) {
    const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = prom;
    this.registry = new Registry();
    const { instruments } = source;
    const registers = [this.registry];
    // stats() walks nothing (sizes of maps), so each gauge reading it on its own is cheap.
    const gauge = (name: string, help: string, read: (s: ReflectorStats) => number | undefined): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const value = read(source.stats());
          if (value !== undefined) this.set(value);
        },
      });
    };
    const counter = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    const labelled = (name: string, help: string, label: string, read: () => ReadonlyMap<string | number, number>): void => {
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          for (const [key, n] of read()) this.inc({ [label]: String(key) }, n);
        },
      });
    };
    gauge("lockstep_connections_open", "Open WebSocket connections, joined or not.", (s) => s.connections);
    gauge("lockstep_sessions_live", "Sessions in memory: with clients, or idle until dropped.", (s) => s.sessions);
    gauge("lockstep_sessions_stored", "Sessions in storage, counted at start and after each retention pass plus those created since.", (s) => s.stored);
    counter("lockstep_connections_refused_total", "WebSocket upgrades refused by the connection caps or a penalty (HTTP 429/503).", () => source.stats().refused);
    counter("lockstep_frames_received_total", "Frames received from clients.", () => instruments.framesReceived);
    counter("lockstep_received_bytes_total", "Bytes of the frames received from clients.", () => instruments.bytesReceived);
    counter("lockstep_sent_bytes_total", "Bytes of the frames sent to clients (a frame to N members counts N times).", () => instruments.bytesSent);
    counter("lockstep_entries_relayed_total", "Client messages stamped, stored and relayed.", () => instruments.entriesRelayed);
    counter("lockstep_sessions_created_total", "Sessions created (not loaded from storage).", () => instruments.sessionsCreated);
    labelled("lockstep_joins_total", "Joins admitted: kind new (a new view) or resumed (a view that was still in the stream).", "kind", () =>
      new Map([
        ["new", instruments.joins],
        ["resumed", instruments.resumes],
      ]),
    );
    counter("lockstep_cluster_redirects_total", "Joins sent to the session's owner node: redirected, or forwarded in proxy mode (a cluster).", () => instruments.redirects);
    counter("lockstep_cluster_claims_total", "Stored sessions this node took over or claimed (a cluster).", () => instruments.claims);
    labelled("lockstep_joins_rejected_total", "Joins refused, by the name of their close code (AuthFailed, TokenRejected, RateLimited…).", "reason", () => instruments.rejectedJoins);
    labelled("lockstep_closes_total", "Closed client sockets by WebSocket close code (4007 ServerShutdown, 1006 cut off…; PROTOCOL.md lists the 4000s).", "code", () => instruments.closes);
    const append = new Histogram({
      name: "lockstep_storage_append_seconds",
      help: "Time to make one batch of stamped entries durable (a group commit): entries are relayed only after it.",
      buckets: APPEND_BUCKETS,
      registers,
    });
    instruments.observeAppend = (seconds) => append.observe(seconds);
    if (options.process) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Loads prom-client and builds the metrics. Loaded on demand, at the first scrape: a reflector
   * nobody scrapes never pays for the library (a few MB of RSS) or its collectors.
   */
  static async create(source: MetricsSource, options: ReflectorMetricsOptions): Promise<ReflectorMetrics> {
    return new ReflectorMetrics(await import("prom-client"), source, options);
  }

  /** The `Content-Type` of {@link text}: Prometheus text exposition format 0.0.4. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
