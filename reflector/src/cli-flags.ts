import { DEFAULT_LIMITS, type Limits } from "@lockstep/protocol";
import { DEFAULT_LEASE_MS, DEFAULT_RENEW_MS } from "./cluster/pg-cluster-options";
import { DEFAULT_CAPS, DEFAULT_HOST, DEFAULT_PORT, type ReflectorCaps } from "./options";

// The CLI's flags, their environment variables and the --help text; parsing is in cli-args.ts.

/** Where the CLI stores sessions unless told otherwise (relative to the working directory). */
export const DEFAULT_DATA_DIR = "lockstep-data";
/** Default of `--drain-timeout-ms`. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

/** An integer flag that sets one cap or one protocol limit. */
export type NumericFlag = {
  readonly flag: string;
  readonly min: number;
  readonly max?: number;
  readonly unit: "bytes" | "ms" | "";
  readonly description: string;
} & ({ readonly target: "caps"; readonly key: keyof ReflectorCaps } | { readonly target: "limits"; readonly key: keyof Limits });

// Node timers silently turn longer delays into 1 ms.
export const MAX_TIMER_MS = 2 ** 31 - 1;

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
  { flag: "--max-data-bytes", target: "caps", key: "maxDataBytes", min: 1, unit: "bytes", description: "largest Data API blob; bigger uploads get HTTP 413" },
  { flag: "--max-data-bytes-per-session", target: "caps", key: "maxDataBytesPerSession", min: 1, unit: "bytes", description: "Data API bytes one session may store; beyond, 413" },
  { flag: "--max-data-blobs-per-session", target: "caps", key: "maxDataBlobsPerSession", min: 1, unit: "", description: "Data API blobs one session may store; beyond, 413" },
  { flag: "--read-bytes-per-turn", target: "caps", key: "readBytesPerTurn", min: 1, unit: "bytes", description: "message bytes read from one connection per event-loop turn" },
  { flag: "--read-bytes-per-turn-total", target: "caps", key: "readBytesPerTurnTotal", min: 1, unit: "bytes", description: "message bytes read from all connections per turn" },
  { flag: "--data-upload-timeout-ms", target: "caps", key: "dataUploadTimeoutMs", min: 1, max: MAX_TIMER_MS, unit: "ms", description: "time a Data API upload may take; then 408" },
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

export const NUMERIC_BY_FLAG: ReadonlyMap<string, NumericFlag> = new Map(NUMERIC_FLAGS.map((f) => [f.flag, f]));

/** Switches: flags without a value. */
export const BOOLEAN_FLAGS: readonly string[] = ["--memory", "--trust-proxy", "--no-metrics", "--cluster", "--proxy"];
/** Flags that take a value, besides the numeric ones and the --auth-* ones. */
const VALUE_FLAGS: readonly string[] = [
  "--port",
  "--host",
  "--tps",
  "--log-level",
  "--log-format",
  "--data-dir",
  "--postgres",
  "--snapshot-messages",
  "--view-grace-ms",
  "--drain-timeout-ms",
  "--tls-cert",
  "--tls-key",
  "--metrics-port",
  "--metrics-host",
  "--node-url",
  "--lease-ms",
  "--renew-ms",
];
const AUTH_FLAGS: readonly string[] = ["--auth-secret", "--auth-secret-file", "--auth-jwks", "--auth-issuer", "--auth-audience"];

/**
 * Every flag, in the order the environment is read (so error messages come in a stable order).
 * `--help` is not among them: it has no variable.
 */
export const ALL_FLAGS: readonly string[] = [...VALUE_FLAGS, ...BOOLEAN_FLAGS, ...NUMERIC_FLAGS.map((f) => f.flag), ...AUTH_FLAGS];

/**
 * The environment variable of a flag: `LOCKSTEP_` and the flag's name in capitals with `-` as `_`
 * (`--max-log-bytes` → `LOCKSTEP_MAX_LOG_BYTES`).
 */
export function envName(flag: string): string {
  return `LOCKSTEP_${flag.replace(/^--/, "").toUpperCase().replace(/-/g, "_")}`;
}

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

/** Words laid out in lines of at most `width` characters, each indented by two spaces. */
function wrapped(words: readonly string[], width = 96): string {
  const lines: string[] = [];
  let line = " ";
  for (const word of words) {
    if (line.length + 1 + word.length > width) {
      lines.push(line);
      line = " ";
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines.join("\n");
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
  --log-level L      info | warn | error | silent (default info)
  --log-format F     json (one JSON object per line) | pretty (for reading); default: pretty when
                     stdout is a terminal, else json
  --data-dir D       store sessions (snapshots, message logs) under D (default ./${DEFAULT_DATA_DIR});
                     sessions survive clients leaving and reflector restarts, even kill -9
  --memory           keep sessions in memory only (lost when the reflector stops)
  --postgres URL     store sessions in PostgreSQL instead, e.g. postgres://user:pass@host:5432/db
                     (table lockstep_blobs, created if missing); not with --memory or --data-dir;
                     prefer LOCKSTEP_POSTGRES: the process list shows arguments
  --snapshot-messages N
                     ask clients for a snapshot every N messages (default 1000)
  --view-grace-ms N  how long a client whose connection dropped keeps its view (default 10000;
                     0: its view-exit is stamped at once)
  --trust-proxy      take client addresses (for per-address caps and logs) from the last
                     X-Forwarded-For entry; only behind a reverse proxy that sets it
  --drain-timeout-ms N
                     on SIGTERM or SIGINT the reflector stops accepting, writes what it stamped,
                     tells clients to reconnect (4007) and exits 0; if that takes longer than N ms
                     (default ${DEFAULT_DRAIN_TIMEOUT_MS}), or at a second signal, it exits 1 at once
  -h, --help         show this help

TLS (wss:// and https:// on the same port; or leave TLS to a reverse proxy):
  --tls-cert FILE    certificate chain, PEM (with --tls-key); SIGHUP re-reads both files
  --tls-key FILE     the certificate's private key, PEM

A cluster (several nodes on one PostgreSQL; see DEPLOYMENT.md):
  --cluster          run as one node of a cluster: needs --postgres (every node the same
                     database) and --node-url; one node at a time owns a session, the others
                     redirect its clients there (4017); SIGTERM hands this node's sessions over
  --node-url URL     the ws:// or wss:// URL other nodes send this node's clients to
  --lease-ms N       how long this node's lease lasts unrenewed before others take its sessions
                     (default ${DEFAULT_LEASE_MS}); a killed process frees them at once
  --renew-ms N       how often the lease is renewed (default ${DEFAULT_RENEW_MS}; at most --lease-ms / 2)
  --proxy            forward clients of sessions owned elsewhere to the owner instead of
                     redirecting them (nodes behind one public address); run them with --trust-proxy

Metrics (Prometheus text format at GET /metrics, on --port unless --metrics-port is given):
  --metrics-port N   serve /metrics (and /health) on a plain-HTTP listener of its own instead
  --metrics-host H   interface of that listener (default: --host), e.g. 127.0.0.1 or a private one
  --no-metrics       serve no /metrics

Limits (integers; sizes in bytes):
${LIMIT_USAGE}

App tokens (JWT): with a secret or keys, a Join needs a valid token (else close 4013/4014)
  --auth-secret S    shared secret of HS256/384/512 tokens (at least 32 bytes); visible to other
                     users of this machine in the process list, so prefer --auth-secret-file
                     or LOCKSTEP_AUTH_SECRET
  --auth-secret-file F
                     read the shared secret from file F (a trailing line break is ignored)
  --auth-jwks FILE   public keys of RS256/PS256/ES256/ES384/EdDSA tokens, a JSON Web Key Set file
  --auth-issuer I    accept only tokens whose iss claim is I
  --auth-audience A  accept only tokens whose aud claim is (or lists) A

Environment: every option can also come from a variable, LOCKSTEP_ and the option's name in
capitals with - as _ (--max-log-bytes: LOCKSTEP_MAX_LOG_BYTES). The command line wins; an empty
variable counts as unset; switches take 1, true, yes, on or 0, false, no, off:
${wrapped(ALL_FLAGS.map(envName))}

Persisted data (see \`lockstep-reflector persist --help\`):
  persist slots | list <slot> | export <slot> [--version N] | rollback <slot> --to N

GET /health answers {"status":"ok",...}. Logs go to stdout, one line per event.`;
