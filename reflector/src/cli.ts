import { DEFAULT_LIMITS } from "@lockstep/protocol";
import { LOG_LEVELS, createConsoleLogger, silentLogger, type LogLevel } from "./logger";
import { DEFAULT_HOST, DEFAULT_PORT } from "./options";
import { startReflector, type Reflector } from "./reflector";
import { runPersistCommand } from "./persist-cli";
import { createPostgresStore, type BlobStore } from "./storage/index";

/** Settings the command line can give. */
export interface CliSettings {
  readonly port: number;
  readonly host: string;
  /** Tick rate forced on every session, or `undefined` to let each session's first joiner choose. */
  readonly tps: number | undefined;
  readonly logLevel: LogLevel;
  /**
   * Directory of the filesystem store, or `undefined` to keep sessions in memory only (`--memory`)
   * or in PostgreSQL (`--postgres`).
   */
  readonly dataDir: string | undefined;
  /** PostgreSQL connection URL to store sessions in (`--postgres`), or `undefined`. */
  readonly postgres: string | undefined;
  /** Entries between snapshots, or `undefined` for the default. */
  readonly snapshotMessages: number | undefined;
}

/** Where the CLI stores sessions unless told otherwise (relative to the working directory). */
export const DEFAULT_DATA_DIR = "lockstep-data";

/** What {@link parseArgs} made of the arguments. */
export type ParsedArgs =
  | { readonly kind: "run"; readonly settings: CliSettings }
  | { readonly kind: "help" }
  | { readonly kind: "error"; readonly message: string };

/** The `--help` text. */
export const USAGE = `Usage: lockstep-reflector [options]

Runs a Lockstep reflector: a WebSocket server that orders, time-stamps and relays session messages.

Options:
  --port N           TCP port (default ${DEFAULT_PORT}; 0 picks a free one)
  --host H           interface to listen on (default ${DEFAULT_HOST}; 0.0.0.0 for all)
  --tps N            force N ticks per second on every session (${DEFAULT_LIMITS.minTps}..${DEFAULT_LIMITS.maxTps};
                     default: each session's first joiner chooses)
  --log-level L      info | warn | error | silent (default info); logs are JSON lines on stdout
  --data-dir D       store sessions (snapshots, message logs) under D (default ./${"lockstep-data"});
                     sessions survive clients leaving and reflector restarts, even kill -9
  --memory           keep sessions in memory only (lost when the reflector stops)
  --postgres URL     store sessions in PostgreSQL instead, e.g. postgres://user:pass@host:5432/db
                     (table lockstep_blobs, created if missing); not with --memory or --data-dir
  --snapshot-messages N
                     ask clients for a snapshot every N messages (default 1000)
  -h, --help         show this help

Persisted data (see \`lockstep-reflector persist --help\`):
  persist slots | list <slot> | export <slot> [--version N] | rollback <slot> --to N

GET /health answers {"status":"ok",...}. SIGINT or SIGTERM shuts down cleanly.`;

/**
 * Parses command-line arguments (without `node` and the script). Accepts `--flag value` and
 * `--flag=value`. Pure: never prints or exits.
 */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  let port = DEFAULT_PORT;
  let host = DEFAULT_HOST;
  let tps: number | undefined;
  let logLevel: LogLevel = "info";
  let dataDir: string | undefined = DEFAULT_DATA_DIR;
  let postgres: string | undefined;
  // Where sessions go is one choice: remember which flags made it, to refuse contradictions.
  const storageFlags = new Set<string>();
  let snapshotMessages: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { kind: "help" };
    if (arg === "--memory") {
      dataDir = undefined;
      storageFlags.add("--memory");
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (flag !== "--port" && flag !== "--host" && flag !== "--tps" && flag !== "--log-level" && flag !== "--data-dir" && flag !== "--snapshot-messages" && flag !== "--postgres") {
      return { kind: "error", message: `unknown argument ${JSON.stringify(arg)}` };
    }
    let value: string | undefined;
    if (flag !== arg) {
      value = arg.slice(eq + 1);
    } else {
      value = argv[++i];
      if (value === undefined) return { kind: "error", message: `${flag} needs a value` };
    }
    switch (flag) {
      case "--port": {
        const n = parseInteger(value);
        if (n === undefined || n > 65535) return { kind: "error", message: `--port must be an integer in 0..65535, got ${JSON.stringify(value)}` };
        port = n;
        break;
      }
      case "--host":
        if (value.length === 0) return { kind: "error", message: "--host must not be empty" };
        host = value;
        break;
      case "--tps": {
        const n = parseInteger(value);
        if (n === undefined || n < DEFAULT_LIMITS.minTps || n > DEFAULT_LIMITS.maxTps) {
          return { kind: "error", message: `--tps must be an integer in ${DEFAULT_LIMITS.minTps}..${DEFAULT_LIMITS.maxTps}, got ${JSON.stringify(value)}` };
        }
        tps = n;
        break;
      }
      case "--log-level":
        if (!(LOG_LEVELS as readonly string[]).includes(value)) {
          return { kind: "error", message: `--log-level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(value)}` };
        }
        logLevel = value as LogLevel;
        break;
      case "--snapshot-messages": {
        const n = parseInteger(value);
        if (n === undefined || n < 1) return { kind: "error", message: `--snapshot-messages must be a positive integer, got ${JSON.stringify(value)}` };
        snapshotMessages = n;
        break;
      }
      case "--data-dir":
        if (value.length === 0) return { kind: "error", message: "--data-dir must not be empty" };
        dataDir = value;
        storageFlags.add("--data-dir");
        break;
      case "--postgres":
        if (!/^postgres(ql)?:\/\/./.test(value)) {
          return { kind: "error", message: `--postgres must be a connection URL like postgres://user:password@host:5432/database, got ${JSON.stringify(value)}` };
        }
        postgres = value;
        storageFlags.add("--postgres");
        break;
    }
  }
  if (postgres !== undefined) {
    if (storageFlags.size > 1) {
      const others = [...storageFlags].filter((f) => f !== "--postgres").join(" and ");
      return { kind: "error", message: `--postgres cannot be combined with ${others}: sessions are stored in one place, so pick one` };
    }
    dataDir = undefined;
  }
  return { kind: "run", settings: { port, host, tps, logLevel, dataDir, postgres, snapshotMessages } };
}

function parseInteger(text: string): number | undefined {
  return /^\d{1,9}$/.test(text) ? Number(text) : undefined;
}

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
};

/**
 * Runs the `lockstep-reflector` command: parses `argv`, starts a reflector, prints
 * `Lockstep reflector listening on ws://HOST:PORT/` and shuts down cleanly (exit 0) on SIGINT or
 * SIGTERM; a second signal exits at once with 1. Bad arguments print the usage to stderr and exit 2;
 * a failed start exits 1. Resolves once the reflector is listening (or startup failed).
 */
export async function main(argv: readonly string[], io: CliIo = nodeIo): Promise<void> {
  if (argv[0] === "persist") {
    io.exit(await runPersistCommand(argv.slice(1), io));
    return;
  }
  const parsed = parseArgs(argv);
  if (parsed.kind === "help") {
    io.out(USAGE);
    io.exit(0);
    return;
  }
  if (parsed.kind === "error") {
    io.err(`lockstep-reflector: ${parsed.message}\n\n${USAGE}`);
    io.exit(2);
    return;
  }
  const { port, host, tps, logLevel, dataDir, postgres, snapshotMessages } = parsed.settings;
  let reflector: Reflector;
  let storage: BlobStore | undefined;
  try {
    storage = postgres !== undefined ? await createPostgresStore({ connectionString: postgres }) : undefined;
    reflector = await startReflector({
      port,
      host,
      tps,
      ...(dataDir !== undefined ? { dataDir } : {}),
      ...(storage !== undefined ? { storage } : {}),
      ...(snapshotMessages !== undefined ? { snapshots: { everyMessages: snapshotMessages } } : {}),
      logger: logLevel === "silent" ? silentLogger : createConsoleLogger(logLevel),
    });
  } catch (error) {
    // startReflector closes the store when it fails to listen, but not when it rejects an option.
    await storage?.close().catch(() => undefined);
    io.err(`lockstep-reflector: ${error instanceof Error ? error.message : String(error)}`);
    io.exit(1);
    return;
  }
  let stopping = false;
  const removeSignalHandler = io.onSignal(() => {
    if (stopping) {
      io.exit(1, true);
      return;
    }
    stopping = true;
    reflector.close().then(
      () => {
        removeSignalHandler();
        io.exit(0);
      },
      (error: unknown) => {
        io.err(`lockstep-reflector: shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        removeSignalHandler();
        io.exit(1);
      },
    );
  });
  io.out(`Lockstep reflector listening on ${reflector.url}`);
}
