import { DEFAULT_LIMITS, type Limits } from "@lockstep/protocol";
import { loadAppAuth } from "./app-auth";
import { LOG_LEVELS, createConsoleLogger, silentLogger, type LogLevel } from "./logger";
import { DEFAULT_CAPS, DEFAULT_HOST, DEFAULT_PORT, type ReflectorCaps } from "./options";
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
  /** Grace period of a dropped view, in ms (`--view-grace-ms`), or `undefined` for the default. */
  readonly viewGraceMs: number | undefined;
  /** Resource caps given on the command line (`--max-connections` …); the rest keep their defaults. */
  readonly caps: Partial<ReflectorCaps>;
  /** Protocol limits given on the command line (`--max-frame-bytes` …); the rest keep their defaults. */
  readonly limits: Partial<Limits>;
  /** Take client addresses from `X-Forwarded-For` (`--trust-proxy`). */
  readonly trustProxy: boolean;
  /** Shared secret of HS256 app tokens (`--auth-secret`), or `undefined`. */
  readonly authSecret: string | undefined;
  /** File holding that secret (`--auth-secret-file`), or `undefined`. */
  readonly authSecretFile: string | undefined;
  /** File holding the JSON Web Key Set of RS256/ES256… app tokens (`--auth-jwks`), or `undefined`. */
  readonly authJwksFile: string | undefined;
  /** Required `iss` claim of app tokens (`--auth-issuer`), or `undefined`. */
  readonly authIssuer: string | undefined;
  /** Required `aud` claim of app tokens (`--auth-audience`), or `undefined`. */
  readonly authAudience: string | undefined;
}

/** Where the CLI stores sessions unless told otherwise (relative to the working directory). */
export const DEFAULT_DATA_DIR = "lockstep-data";

/** What {@link parseArgs} made of the arguments. */
export type ParsedArgs =
  | { readonly kind: "run"; readonly settings: CliSettings }
  | { readonly kind: "help" }
  | { readonly kind: "error"; readonly message: string };

/** An integer flag that sets one cap or one protocol limit. */
type NumericFlag = {
  readonly flag: string;
  readonly min: number;
  readonly max?: number;
  readonly unit: "bytes" | "ms" | "";
  readonly description: string;
} & ({ readonly target: "caps"; readonly key: keyof ReflectorCaps } | { readonly target: "limits"; readonly key: keyof Limits });

// Node timers silently turn longer delays into 1 ms.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The `--max-…` flags, in the order `--help` lists them. */
const NUMERIC_FLAGS: readonly NumericFlag[] = [
  { flag: "--max-connections", target: "caps", key: "maxConnections", min: 1, unit: "", description: "open WebSockets in total, HTTP 503 beyond" },
  { flag: "--max-connections-per-address", target: "caps", key: "maxConnectionsPerAddress", min: 1, unit: "", description: "open WebSockets per client address, HTTP 429 beyond" },
  { flag: "--join-timeout-ms", target: "caps", key: "joinTimeoutMs", min: 1, max: MAX_TIMER_MS, unit: "ms", description: "time to send the Join before the socket is closed with 4009" },
  { flag: "--max-buffered-bytes", target: "caps", key: "maxBufferedBytes", min: 1, unit: "bytes", description: "unsent bytes per connection before it is closed with 4011" },
  { flag: "--max-log-bytes", target: "caps", key: "maxLogBytes", min: 1, unit: "bytes", description: "a session's log since its last snapshot; beyond, 4015" },
  { flag: "--max-log-memory-bytes", target: "caps", key: "maxLogMemoryBytes", min: 1, unit: "bytes", description: "of that log, the newest bytes kept in memory" },
  { flag: "--new-sessions-per-minute", target: "caps", key: "newSessionsPerMinute", min: 1, unit: "", description: "sessions created per minute in total; beyond, joins get 4016" },
  { flag: "--new-sessions-per-address-per-minute", target: "caps", key: "newSessionsPerAddressPerMinute", min: 1, unit: "", description: "sessions created per minute per client address; beyond, 4005" },
  { flag: "--max-frame-bytes", target: "limits", key: "maxFrameBytes", min: 2, unit: "bytes", description: "largest frame a client may send" },
  { flag: "--max-snapshot-bytes", target: "limits", key: "maxSnapshotBytes", min: 1, unit: "bytes", description: "largest snapshot upload" },
  { flag: "--max-persist-bytes", target: "limits", key: "maxPersistBytes", min: 1, unit: "bytes", description: "largest persisted-data upload" },
  { flag: "--max-payload-bytes", target: "limits", key: "maxPayloadBytes", min: 1, unit: "bytes", description: "largest payload of one message" },
  { flag: "--max-messages-per-second", target: "limits", key: "maxMessagesPerSecond", min: 1, unit: "", description: "sustained frames per second per connection; beyond, 4005" },
  { flag: "--message-burst", target: "limits", key: "messageBurst", min: 0, unit: "", description: "frames allowed in a burst on top of that" },
  { flag: "--max-bytes-per-second", target: "limits", key: "maxBytesPerSecond", min: 1, unit: "bytes", description: "sustained bytes per second per connection; beyond, 4005" },
  { flag: "--byte-burst", target: "limits", key: "byteBurst", min: 0, unit: "bytes", description: "bytes allowed in a burst on top of that" },
  { flag: "--max-pings-per-second", target: "limits", key: "maxPingsPerSecond", min: 1, unit: "", description: "sustained Ping frames per second per connection; beyond, 4005" },
  { flag: "--ping-burst", target: "limits", key: "pingBurst", min: 0, unit: "", description: "Pings allowed in a burst on top of that" },
];

const NUMERIC_BY_FLAG: ReadonlyMap<string, NumericFlag> = new Map(NUMERIC_FLAGS.map((f) => [f.flag, f]));

/** Flags that take a value, besides the numeric ones and the --auth-* ones. */
const VALUE_FLAGS: ReadonlySet<string> = new Set(["--port", "--host", "--tps", "--log-level", "--data-dir", "--snapshot-messages", "--view-grace-ms", "--postgres"]);
const AUTH_FLAGS: ReadonlySet<string> = new Set(["--auth-secret", "--auth-secret-file", "--auth-jwks", "--auth-issuer", "--auth-audience"]);

function defaultOf(f: NumericFlag): number {
  return f.target === "caps" ? DEFAULT_CAPS[f.key] : DEFAULT_LIMITS[f.key];
}

function formatAmount(n: number, unit: NumericFlag["unit"]): string {
  if (unit === "bytes") {
    if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
    if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
    return `${n} bytes`;
  }
  return unit === "ms" ? `${n} ms` : String(n);
}

/** One `--help` line (or two, when the flag is too long to share a line with its description). */
function usageLine(flag: string, description: string): string {
  const column = 21;
  const head = `  ${flag}`;
  return head.length < column - 1 ? `${head.padEnd(column)}${description}` : `${head}\n${" ".repeat(column)}${description}`;
}

const LIMIT_USAGE = NUMERIC_FLAGS.map((f) => usageLine(`${f.flag} N`, `${f.description} (default ${formatAmount(defaultOf(f), f.unit)})`)).join("\n");

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
  --view-grace-ms N  how long a client whose connection dropped keeps its view (default 10000;
                     0: its view-exit is stamped at once)
  --trust-proxy      take client addresses (for per-address caps and logs) from the last
                     X-Forwarded-For entry; only behind a reverse proxy that sets it
  -h, --help         show this help

Limits (integers; sizes in bytes):
${LIMIT_USAGE}

App tokens (JWT): with a secret or keys, a Join needs a valid token (else close 4013/4014)
  --auth-secret S    shared secret of HS256/384/512 tokens (at least 32 bytes); visible to other
                     users of this machine in the process list, so prefer --auth-secret-file
  --auth-secret-file F
                     read the shared secret from file F (a trailing line break is ignored)
  --auth-jwks FILE   public keys of RS256/PS256/ES256/ES384/EdDSA tokens, a JSON Web Key Set file
  --auth-issuer I    accept only tokens whose iss claim is I
  --auth-audience A  accept only tokens whose aud claim is (or lists) A

Persisted data (see \`lockstep-reflector persist --help\`):
  persist slots | list <slot> | export <slot> [--version N] | rollback <slot> --to N

GET /health answers {"status":"ok",...}. SIGINT or SIGTERM shuts down cleanly.`;

/**
 * Parses command-line arguments (without `node` and the script). Accepts `--flag value` and
 * `--flag=value`. Pure: never prints or exits (and reads no files: see {@link loadAppAuth}).
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
  let viewGraceMs: number | undefined;
  const caps: { -readonly [K in keyof ReflectorCaps]?: number } = {};
  const limits: { -readonly [K in keyof Limits]?: number } = {};
  let trustProxy = false;
  const auth = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { kind: "help" };
    if (arg === "--memory") {
      dataDir = undefined;
      storageFlags.add("--memory");
      continue;
    }
    if (arg === "--trust-proxy") {
      trustProxy = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (flag === "--trust-proxy" || flag === "--memory") return { kind: "error", message: `${flag} takes no value, got ${JSON.stringify(arg)}` };
    const numeric = NUMERIC_BY_FLAG.get(flag);
    if (numeric === undefined && !VALUE_FLAGS.has(flag) && !AUTH_FLAGS.has(flag)) {
      return { kind: "error", message: `unknown argument ${JSON.stringify(arg)}` };
    }
    let value: string | undefined;
    if (flag !== arg) {
      value = arg.slice(eq + 1);
    } else {
      value = argv[++i];
      if (value === undefined) return { kind: "error", message: `${flag} needs a value` };
    }
    if (numeric !== undefined) {
      const max = numeric.max ?? Number.MAX_SAFE_INTEGER;
      const n = parseInteger(value);
      if (n === undefined || n < numeric.min || n > max) {
        return { kind: "error", message: `${flag} must be an integer in ${numeric.min}..${max}, got ${JSON.stringify(value)}` };
      }
      if (numeric.target === "caps") caps[numeric.key] = n;
      else limits[numeric.key] = n;
      continue;
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
      case "--view-grace-ms": {
        const n = parseInteger(value);
        if (n === undefined || n < 0 || n > MAX_TIMER_MS) return { kind: "error", message: `--view-grace-ms must be an integer in 0..${MAX_TIMER_MS}, got ${JSON.stringify(value)}` };
        viewGraceMs = n;
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
      default:
        // The --auth-* flags; what they name is read and checked by loadAppAuth when the reflector starts.
        if (value.length === 0) return { kind: "error", message: `${flag} must not be empty` };
        auth.set(flag, value);
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
  const logBytes = caps.maxLogBytes ?? DEFAULT_CAPS.maxLogBytes;
  const logMemoryBytes = caps.maxLogMemoryBytes ?? DEFAULT_CAPS.maxLogMemoryBytes;
  if (logMemoryBytes > logBytes) {
    return { kind: "error", message: `--max-log-memory-bytes (${logMemoryBytes}) must not exceed --max-log-bytes (${logBytes}): the in-memory part is part of the log` };
  }
  if (auth.has("--auth-secret") && auth.has("--auth-secret-file")) {
    return { kind: "error", message: "--auth-secret and --auth-secret-file both give the app token secret: pick one" };
  }
  if ((auth.has("--auth-issuer") || auth.has("--auth-audience")) && !auth.has("--auth-secret") && !auth.has("--auth-secret-file") && !auth.has("--auth-jwks")) {
    return { kind: "error", message: "--auth-issuer and --auth-audience need keys to verify app tokens with: add --auth-secret-file or --auth-jwks" };
  }
  return {
    kind: "run",
    settings: {
      port,
      host,
      tps,
      logLevel,
      dataDir,
      postgres,
      snapshotMessages,
      viewGraceMs,
      caps,
      limits,
      trustProxy,
      authSecret: auth.get("--auth-secret"),
      authSecretFile: auth.get("--auth-secret-file"),
      authJwksFile: auth.get("--auth-jwks"),
      authIssuer: auth.get("--auth-issuer"),
      authAudience: auth.get("--auth-audience"),
    },
  };
}

/** A decimal integer up to Number.MAX_SAFE_INTEGER (no sign, exponent or separators), else `undefined`. */
function parseInteger(text: string): number | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
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
  const { port, host, tps, logLevel, dataDir, postgres, snapshotMessages, viewGraceMs, caps, limits, trustProxy } = parsed.settings;
  let reflector: Reflector;
  let storage: BlobStore | undefined;
  try {
    const { authSecret, authSecretFile, authJwksFile, authIssuer, authAudience } = parsed.settings;
    // Read before connecting to a store, so a bad key file fails fast and leaves nothing to close.
    const appAuth = await loadAppAuth({ secret: authSecret, secretFile: authSecretFile, jwksFile: authJwksFile, issuer: authIssuer, audience: authAudience });
    storage = postgres !== undefined ? await createPostgresStore({ connectionString: postgres }) : undefined;
    reflector = await startReflector({
      port,
      host,
      tps,
      caps,
      limits,
      trustProxy,
      ...(appAuth !== undefined ? { appAuth } : {}),
      ...(dataDir !== undefined ? { dataDir } : {}),
      ...(storage !== undefined ? { storage } : {}),
      ...(snapshotMessages !== undefined ? { snapshots: { everyMessages: snapshotMessages } } : {}),
      ...(viewGraceMs !== undefined ? { viewGraceMs } : {}),
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
