import { loadAppAuth } from "./app-auth";
import { parseArgs, type CliSettings, type Environment } from "./cli-args";
import { USAGE } from "./cli-flags";
import { createConsoleLogger, formatLogLine, silentLogger, type LogFields, type LogFormat, type Logger } from "./logger";
import { startReflector, type Reflector } from "./reflector";
import { runPersistCommand } from "./persist-cli";
import { createPostgresStore, type BlobStore } from "./storage/index";
import { createClusterStore } from "./cluster/pg-cluster-store";
import type { ClusterStore } from "./cluster/types";
import { readTlsFiles } from "./tls";

export { parseArgs } from "./cli-args";
export { DEFAULT_DATA_DIR, DEFAULT_DRAIN_TIMEOUT_MS, USAGE, envName } from "./cli-flags";
export type { CliSettings, Environment, ParsedArgs } from "./cli-args";

/** The process around the CLI, injectable so `main` can be tested without a child process. */
export interface CliIo {
  /** Writes one line to stdout. */
  out(line: string): void;
  /** Writes one line to stderr. */
  err(line: string): void;
  /** Ends the process with `code`: once nothing else needs to run, or at once if `now`. */
  exit(code: number, now?: boolean): void;
  /** Calls `handler` on SIGINT and SIGTERM; returns a function that removes it. */
  onSignal(handler: (signal: string) => void): () => void;
  /** Calls `handler` on SIGHUP (the TLS files are read again); returns a function that removes it. */
  onReload?(handler: () => void): () => void;
  /** The environment the `LOCKSTEP_…` variables are read from. Default: none. */
  readonly env?: Environment;
  /** Whether stdout is a terminal (the default log format is then pretty, else JSON). Default false. */
  readonly isTTY?: boolean;
}

const nodeIo: CliIo = {
  out: (line) => void process.stdout.write(line + "\n"),
  err: (line) => void process.stderr.write(line + "\n"),
  exit: (code, now) => {
    if (now) process.exit(code);
    process.exitCode = code;
    // Normally the event loop is empty by now and the process ends by itself; if some handle
    // lingers, this unref'd timer still ends it (and does not keep it alive otherwise).
    setTimeout(() => process.exit(code), 2000).unref();
  },
  onSignal: (handler) => {
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
    return () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    };
  },
  onReload: (handler) => {
    process.on("SIGHUP", handler);
    return () => void process.off("SIGHUP", handler);
  },
  env: process.env,
  isTTY: process.stdout.isTTY === true,
};

/**
 * Runs the `lockstep-reflector` command: parses `argv` over the `LOCKSTEP_…` environment, starts
 * a reflector and logs (JSON lines unless pretty) a `ready` event with its URL — `{"event":"ready",
 * "fields":{"url":"ws://HOST:PORT/",…,"message":"Lockstep reflector listening on ws://HOST:PORT/"}}`
 * — whatever the log level. On SIGINT or SIGTERM it drains and exits 0; a second signal, or a drain
 * longer than `--drain-timeout-ms`, exits 1 at once. Bad arguments exit 2 and a failed start 1,
 * with an error line on stderr. Resolves once the reflector is listening (or startup failed).
 */
export async function main(argv: readonly string[], io: CliIo = nodeIo): Promise<void> {
  if (argv[0] === "persist") {
    io.exit(await runPersistCommand(argv.slice(1), io));
    return;
  }
  const parsed = parseArgs(argv, io.env ?? {});
  if (parsed.kind === "help") {
    io.out(USAGE);
    io.exit(0);
    return;
  }
  if (parsed.kind === "error") {
    // A person at a terminal gets the usage; a service manager's log gets one JSON line.
    if (io.isTTY) io.err(`lockstep-reflector: ${parsed.message}\n\n${USAGE}`);
    else io.err(formatLogLine("json", Date.now(), "error", "usage.error", { message: parsed.message, help: "lockstep-reflector --help" }));
    io.exit(2);
    return;
  }
  const settings = parsed.settings;
  const format: LogFormat = settings.logFormat ?? (io.isTTY ? "pretty" : "json");
  /** The CLI's own lines: in the reflector's format, on stdout, whatever the log level. */
  const say = (level: "info" | "error", event: string, fields: LogFields): void => {
    const line = formatLogLine(format, Date.now(), level, event, fields);
    if (level === "error") io.err(line);
    else io.out(line);
  };
  const logger: Logger = settings.logLevel === "silent" ? silentLogger : createConsoleLogger(settings.logLevel, { format, write: io.out });
  let reflector: Reflector;
  try {
    reflector = await start(settings, logger);
  } catch (error) {
    say("error", "start.failed", { message: `lockstep-reflector: ${error instanceof Error ? error.message : String(error)}` });
    io.exit(1);
    return;
  }
  let stopping = false;
  const removeReload =
    settings.tlsCert !== undefined && settings.tlsKey !== undefined ? io.onReload?.(() => reloadTls(reflector, settings, logger)) : undefined;
  const removeSignalHandler = io.onSignal((signal) => {
    if (stopping) {
      say("error", "shutdown.forced", { signal, message: `second ${signal}: exiting without waiting for the drain` });
      io.exit(1, true);
      return;
    }
    stopping = true;
    logger.info("signal", { signal });
    const deadline = setTimeout(() => {
      say("error", "shutdown.timeout", { drainTimeoutMs: settings.drainTimeoutMs, message: `the drain took longer than ${settings.drainTimeoutMs} ms: exiting` });
      io.exit(1, true);
    }, settings.drainTimeoutMs);
    // The deadline alone must not keep a finished process alive.
    deadline.unref?.();
    reflector.close().then(
      () => {
        clearTimeout(deadline);
        removeSignalHandler();
        removeReload?.();
        io.exit(0);
      },
      (error: unknown) => {
        clearTimeout(deadline);
        say("error", "shutdown.failed", { message: `lockstep-reflector: shutdown failed: ${error instanceof Error ? error.message : String(error)}` });
        removeSignalHandler();
        removeReload?.();
        io.exit(1);
      },
    );
  });
  say("info", "ready", { url: reflector.url, metrics: reflector.metricsUrl, pid: process.pid, message: `Lockstep reflector listening on ${reflector.url}` });
}

/** Reads the files the settings name, opens the store and starts the reflector. */
async function start(settings: CliSettings, logger: Logger): Promise<Reflector> {
  const { port, host, tps, dataDir, postgres, snapshotMessages, viewGraceMs, caps, limits, trustProxy } = settings;
  const { authSecret, authSecretFile, authJwksFile, authIssuer, authAudience, tlsCert, tlsKey } = settings;
  let storage: BlobStore | undefined;
  let clusterStore: ClusterStore | undefined;
  try {
    // Files first, before connecting to a store, so a bad key file fails fast and leaves nothing to close.
    const appAuth = await loadAppAuth({ secret: authSecret, secretFile: authSecretFile, jwksFile: authJwksFile, issuer: authIssuer, audience: authAudience });
    const tls = tlsCert !== undefined && tlsKey !== undefined ? await readTlsFiles(tlsCert, tlsKey) : undefined;
    storage = postgres !== undefined ? await createPostgresStore({ connectionString: postgres }) : undefined;
    if (settings.cluster !== undefined && postgres !== undefined) {
      const { nodeUrl, leaseMs, renewMs, proxy } = settings.cluster;
      clusterStore = await createClusterStore({ connectionString: postgres, nodeUrl, leaseMs, renewMs, onError: (event, fields) => logger.warn(event, fields) });
      logger.info("cluster.joined", { node: clusterStore.node.nodeId, url: nodeUrl, leaseMs, renewMs, proxy });
    }
    return await startReflector({
      ...(clusterStore !== undefined ? { cluster: { store: clusterStore, proxy: settings.cluster?.proxy ?? false } } : {}),
      port,
      host,
      tps,
      caps,
      limits,
      trustProxy,
      // One reflector per CLI process: the process metrics are its own.
      metrics: settings.metrics ? { process: true, ...(settings.metricsPort !== undefined ? { port: settings.metricsPort } : {}), ...(settings.metricsHost !== undefined ? { host: settings.metricsHost } : {}) } : false,
      ...(tls !== undefined ? { tls } : {}),
      ...(appAuth !== undefined ? { appAuth } : {}),
      ...(dataDir !== undefined ? { dataDir } : {}),
      ...(storage !== undefined ? { storage } : {}),
      ...(snapshotMessages !== undefined ? { snapshots: { everyMessages: snapshotMessages } } : {}),
      ...(viewGraceMs !== undefined ? { viewGraceMs } : {}),
      logger,
    });
  } catch (error) {
    // startReflector closes the stores when it fails to listen, but not when it rejects an option.
    await clusterStore?.close().catch(() => undefined);
    await storage?.close().catch(() => undefined);
    throw error;
  }
}

/** SIGHUP: serve the certificate files as they are now (a renewal); on a bad pair keep the current one. */
function reloadTls(reflector: Reflector, settings: CliSettings, logger: Logger): void {
  readTlsFiles(settings.tlsCert!, settings.tlsKey!).then(
    (tls) => {
      try {
        reflector.reloadTls(tls);
      } catch (error) {
        logger.error("tls.reload_failed", { error, message: "kept the certificate served so far" });
      }
    },
    (error: unknown) => logger.error("tls.reload_failed", { error, message: "kept the certificate served so far" }),
  );
}
