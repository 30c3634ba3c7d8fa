import { parseArgs as tokenize } from "node:util";
import { DEFAULT_LIMITS, type Limits } from "@lockstep/protocol";
import { ALL_FLAGS, BOOLEAN_FLAGS, DEFAULT_DATA_DIR, DEFAULT_DRAIN_TIMEOUT_MS, MAX_TIMER_MS, NUMERIC_BY_FLAG, envName } from "./cli-flags";
import { DEFAULT_LEASE_MS, DEFAULT_RENEW_MS } from "./cluster/pg-cluster-options";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "./logger";
import { DEFAULT_CAPS, DEFAULT_HOST, DEFAULT_PORT, type ReflectorCaps } from "./options";

/** Settings the command line (or the environment) can give. */
export interface CliSettings {
  readonly port: number;
  readonly host: string;
  /** Tick rate forced on every session, or `undefined` to let each session's first joiner choose. */
  readonly tps: number | undefined;
  readonly logLevel: LogLevel;
  /** `--log-format`, or `undefined`: pretty when stdout is a terminal, else JSON. */
  readonly logFormat: LogFormat | undefined;
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
  /** PEM certificate file to serve `wss://` with (`--tls-cert`, always with `tlsKey`), or `undefined`. */
  readonly tlsCert: string | undefined;
  /** Its PEM private key file (`--tls-key`), or `undefined`. */
  readonly tlsKey: string | undefined;
  /** Whether `/metrics` is served (`--no-metrics` turns it off). */
  readonly metrics: boolean;
  /** Port of a listener of its own for `/metrics` (`--metrics-port`), or `undefined` for the main port. */
  readonly metricsPort: number | undefined;
  /** Interface of that listener (`--metrics-host`), or `undefined` for `host`. */
  readonly metricsHost: string | undefined;
  /** How long a shutdown on SIGTERM/SIGINT may take before the process exits with 1 anyway, in ms. */
  readonly drainTimeoutMs: number;
  /** Run as a node of a cluster on `postgres` (`--cluster`), or `undefined`. */
  readonly cluster: ClusterSettings | undefined;
}

/** The `--cluster` settings. */
export interface ClusterSettings {
  /** The URL other nodes redirect this node's clients to (`--node-url`). */
  readonly nodeUrl: string;
  readonly leaseMs: number;
  readonly renewMs: number;
  /** Forward instead of redirecting (`--proxy`). */
  readonly proxy: boolean;
}

/** What {@link parseArgs} made of the arguments. */
export type ParsedArgs =
  | { readonly kind: "run"; readonly settings: CliSettings }
  | { readonly kind: "help" }
  | { readonly kind: "error"; readonly message: string };

/** The environment as the CLI reads it (`process.env`). */
export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Flags that make one choice together: when the command line gives any of them, the environment's
 * values for all of them are ignored (`--memory` on the command line wins over a
 * `LOCKSTEP_DATA_DIR` in the service's environment, rather than contradicting it).
 */
const CHOICES: readonly (readonly string[])[] = [
  ["--memory", "--data-dir", "--postgres"],
  ["--auth-secret", "--auth-secret-file"],
  ["--no-metrics", "--metrics-port", "--metrics-host"],
];

const TRUE_WORDS: ReadonlySet<string> = new Set(["1", "true", "yes", "on"]);
const FALSE_WORDS: ReadonlySet<string> = new Set(["0", "false", "no", "off"]);

/** One value given for a flag, by the command line or the environment. */
interface Given {
  /** The flag it sets, e.g. `"--port"`. */
  readonly flag: string;
  /** Its value; `true` for a switch that is on. */
  readonly value: string | true;
  /** Where it came from, for error messages: the flag, or the variable's name. */
  readonly source: string;
}

/** The values the environment gives, in {@link ALL_FLAGS} order; an error message for an unusable one. */
function fromEnvironment(env: Environment): Given[] | string {
  const given: Given[] = [];
  for (const flag of ALL_FLAGS) {
    const name = envName(flag);
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    if (!BOOLEAN_FLAGS.includes(flag)) {
      given.push({ flag, value: raw, source: name });
      continue;
    }
    const word = raw.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) given.push({ flag, value: true, source: name });
    else if (!FALSE_WORDS.has(word)) return `${name} is a switch: set it to 1, true, yes or on (or 0, false, no, off), got ${JSON.stringify(raw)}`;
  }
  return given;
}

/**
 * The values the command line gives, in its order, tokenized by `node:util` parseArgs (`--flag
 * value` and `--flag=value`); `"help"` if it asks for help anywhere; an error message.
 */
function fromCommandLine(argv: readonly string[]): Given[] | "help" | string {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = { help: { type: "boolean", short: "h" } };
  for (const flag of ALL_FLAGS) options[flag.slice(2)] = { type: BOOLEAN_FLAGS.includes(flag) ? "boolean" : "string" };
  // Not strict: unknown options and stray words come back as tokens, so the messages can be ours.
  const { tokens } = tokenize({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === "option" && t.name === "help")) return "help";
  const given: Given[] = [];
  for (const token of tokens) {
    if (token.kind !== "option" || !(token.name in options)) return `unknown argument ${JSON.stringify(argv[token.index])}`;
    const flag = `--${token.name}`;
    if (token.rawName !== flag) return `unknown argument ${JSON.stringify(argv[token.index])}`;
    if (BOOLEAN_FLAGS.includes(flag)) {
      if (token.value !== undefined) return `${flag} takes no value, got ${JSON.stringify(argv[token.index])}`;
      given.push({ flag, value: true, source: flag });
      continue;
    }
    if (token.value === undefined) return `${flag} needs a value`;
    given.push({ flag, value: token.value, source: flag });
  }
  return given;
}

/**
 * Parses command-line arguments (without `node` and the script) over the environment `env`
 * (`LOCKSTEP_PORT` …, see {@link envName}): a flag given on the command line overrides its
 * variable. Accepts `--flag value` and `--flag=value`. Pure: never prints or exits (and reads no
 * files: see `loadAppAuth` and `readTlsFiles`).
 */
export function parseArgs(argv: readonly string[], env: Environment = {}): ParsedArgs {
  const command = fromCommandLine(argv);
  if (command === "help") return { kind: "help" };
  if (typeof command === "string") return { kind: "error", message: command };
  const environment = fromEnvironment(env);
  if (typeof environment === "string") return { kind: "error", message: environment };
  const onCommandLine = new Set(command.map((g) => g.flag));
  const overridden = (flag: string): boolean => onCommandLine.has(flag) || CHOICES.some((c) => c.includes(flag) && c.some((f) => onCommandLine.has(f)));
  return settingsFrom([...environment.filter((g) => !overridden(g.flag)), ...command]);
}

/** Validates the values given (the environment's first, so that the command line's win) into settings. */
function settingsFrom(given: readonly Given[]): ParsedArgs {
  let port = DEFAULT_PORT;
  let host = DEFAULT_HOST;
  let tps: number | undefined;
  let logLevel: LogLevel = "info";
  let logFormat: LogFormat | undefined;
  let dataDir: string | undefined = DEFAULT_DATA_DIR;
  let postgres: string | undefined;
  // Where sessions go is one choice: remember which flags made it, to refuse contradictions.
  const storageSources = new Map<string, string>();
  let snapshotMessages: number | undefined;
  let viewGraceMs: number | undefined;
  let drainTimeoutMs = DEFAULT_DRAIN_TIMEOUT_MS;
  let metricsPort: number | undefined;
  let leaseMs = DEFAULT_LEASE_MS;
  let renewMs = DEFAULT_RENEW_MS;
  const caps: { -readonly [K in keyof ReflectorCaps]?: number } = {};
  const limits: { -readonly [K in keyof Limits]?: number } = {};
  const switches = new Set<string>();
  // Flags whose value is taken as given (files, URLs, names), and where each came from.
  const text = new Map<string, string>();
  const sources = new Map<string, string>();
  for (const { flag, value, source } of given) {
    sources.set(flag, source);
    const error = (what: string): ParsedArgs => ({ kind: "error", message: `${source} ${what}, got ${JSON.stringify(value)}` });
    if (value === true) {
      switches.add(flag);
      if (flag === "--memory") {
        dataDir = undefined;
        storageSources.set(flag, source);
      }
      continue;
    }
    const numeric = NUMERIC_BY_FLAG.get(flag);
    if (numeric !== undefined) {
      const max = numeric.max ?? Number.MAX_SAFE_INTEGER;
      const n = parseInteger(value);
      if (n === undefined || n < numeric.min || n > max) return error(`must be an integer in ${numeric.min}..${max}`);
      if (numeric.target === "caps") caps[numeric.key] = n;
      else limits[numeric.key] = n;
      continue;
    }
    switch (flag) {
      case "--port":
      case "--metrics-port": {
        const n = parseInteger(value);
        if (n === undefined || n > 65535) return error("must be an integer in 0..65535");
        if (flag === "--port") port = n;
        else metricsPort = n;
        break;
      }
      case "--host":
        if (value.length === 0) return { kind: "error", message: `${source} must not be empty` };
        host = value;
        break;
      case "--tps": {
        const n = parseInteger(value);
        if (n === undefined || n < DEFAULT_LIMITS.minTps || n > DEFAULT_LIMITS.maxTps) return error(`must be an integer in ${DEFAULT_LIMITS.minTps}..${DEFAULT_LIMITS.maxTps}`);
        tps = n;
        break;
      }
      case "--log-level":
        if (!(LOG_LEVELS as readonly string[]).includes(value)) return error(`must be one of ${LOG_LEVELS.join(", ")}`);
        logLevel = value as LogLevel;
        break;
      case "--log-format":
        if (!(LOG_FORMATS as readonly string[]).includes(value)) return error(`must be one of ${LOG_FORMATS.join(", ")}`);
        logFormat = value as LogFormat;
        break;
      case "--snapshot-messages": {
        const n = parseInteger(value);
        if (n === undefined || n < 1) return error("must be a positive integer");
        snapshotMessages = n;
        break;
      }
      case "--lease-ms":
      case "--renew-ms": {
        const n = parseInteger(value);
        if (n === undefined || n < 100 || n > 600_000) return error("must be an integer of ms in 100..600000");
        if (flag === "--lease-ms") leaseMs = n;
        else renewMs = n;
        break;
      }
      case "--node-url":
        if (!/^wss?:\/\/[^/\s]+/.test(value)) return error("must be the ws:// or wss:// URL clients reach this node at, like ws://10.0.0.5:8787/");
        text.set(flag, value);
        break;
      case "--view-grace-ms":
      case "--drain-timeout-ms": {
        const n = parseInteger(value);
        const min = flag === "--view-grace-ms" ? 0 : 1;
        if (n === undefined || n < min || n > MAX_TIMER_MS) return error(`must be an integer in ${min}..${MAX_TIMER_MS}`);
        if (flag === "--view-grace-ms") viewGraceMs = n;
        else drainTimeoutMs = n;
        break;
      }
      case "--data-dir":
        if (value.length === 0) return { kind: "error", message: `${source} must not be empty` };
        dataDir = value;
        storageSources.set(flag, source);
        break;
      case "--postgres":
        // The URL may hold a password: never repeat it in a message.
        if (!/^postgres(ql)?:\/\/./.test(value)) return { kind: "error", message: `${source} must be a connection URL like postgres://user:password@host:5432/database, got ${JSON.stringify(value.replace(/:[^:@/]*@/, ":…@"))}` };
        postgres = value;
        storageSources.set(flag, source);
        break;
      default:
        // --tls-*, --metrics-host and --auth-*: files and names, read and checked when the reflector starts.
        if (value.length === 0) return { kind: "error", message: `${source} must not be empty` };
        text.set(flag, value);
        break;
    }
  }
  const src = (flag: string): string => sources.get(flag) ?? flag;
  if (postgres !== undefined) {
    if (storageSources.size > 1) {
      const others = [...storageSources].filter(([f]) => f !== "--postgres").map(([, s]) => s).join(" and ");
      return { kind: "error", message: `${src("--postgres")} cannot be combined with ${others}: sessions are stored in one place, so pick one` };
    }
    dataDir = undefined;
  }
  const cluster = clusterSettings(switches, text, sources, postgres, leaseMs, renewMs);
  if (typeof cluster === "string") return { kind: "error", message: cluster };
  const logBytes = caps.maxLogBytes ?? DEFAULT_CAPS.maxLogBytes;
  const logMemoryBytes = caps.maxLogMemoryBytes ?? DEFAULT_CAPS.maxLogMemoryBytes;
  if (logMemoryBytes > logBytes) {
    return { kind: "error", message: `${src("--max-log-memory-bytes")} (${logMemoryBytes}) must not exceed ${src("--max-log-bytes")} (${logBytes}): the in-memory part is part of the log` };
  }
  if (text.has("--auth-secret") && text.has("--auth-secret-file")) {
    return { kind: "error", message: `${src("--auth-secret")} and ${src("--auth-secret-file")} both give the app token secret: pick one` };
  }
  if ((text.has("--auth-issuer") || text.has("--auth-audience")) && !text.has("--auth-secret") && !text.has("--auth-secret-file") && !text.has("--auth-jwks")) {
    return { kind: "error", message: "--auth-issuer and --auth-audience need keys to verify app tokens with: add --auth-secret-file or --auth-jwks" };
  }
  if (text.has("--tls-cert") !== text.has("--tls-key")) {
    const missing = text.has("--tls-cert") ? "--tls-key" : "--tls-cert";
    return { kind: "error", message: `${src(text.has("--tls-cert") ? "--tls-cert" : "--tls-key")} needs ${missing} (or ${envName(missing)}) too: a certificate and its key go together` };
  }
  const metrics = !switches.has("--no-metrics");
  if (!metrics && (metricsPort !== undefined || text.has("--metrics-host"))) {
    return { kind: "error", message: `${src("--no-metrics")} contradicts ${src(metricsPort !== undefined ? "--metrics-port" : "--metrics-host")}: pick one` };
  }
  if (text.has("--metrics-host") && metricsPort === undefined) {
    return { kind: "error", message: `${src("--metrics-host")} needs --metrics-port: it names the interface of the separate metrics listener` };
  }
  return {
    kind: "run",
    settings: {
      port,
      host,
      tps,
      logLevel,
      logFormat,
      dataDir,
      postgres,
      snapshotMessages,
      viewGraceMs,
      caps,
      limits,
      trustProxy: switches.has("--trust-proxy"),
      authSecret: text.get("--auth-secret"),
      authSecretFile: text.get("--auth-secret-file"),
      authJwksFile: text.get("--auth-jwks"),
      authIssuer: text.get("--auth-issuer"),
      authAudience: text.get("--auth-audience"),
      tlsCert: text.get("--tls-cert"),
      tlsKey: text.get("--tls-key"),
      metrics,
      metricsPort,
      metricsHost: text.get("--metrics-host"),
      drainTimeoutMs,
      cluster,
    },
  };
}

/** The `--cluster` settings, `undefined` without `--cluster`, or what is wrong with them. */
function clusterSettings(
  switches: ReadonlySet<string>,
  text: ReadonlyMap<string, string>,
  sources: ReadonlyMap<string, string>,
  postgres: string | undefined,
  leaseMs: number,
  renewMs: number,
): ClusterSettings | undefined | string {
  const src = (flag: string): string => sources.get(flag) ?? flag;
  const nodeUrl = text.get("--node-url");
  if (!switches.has("--cluster")) {
    const stray = ["--node-url", "--lease-ms", "--renew-ms", "--proxy"].find((f) => sources.has(f));
    return stray === undefined ? undefined : `${src(stray)} is for cluster nodes: add --cluster (with --postgres and --node-url)`;
  }
  if (postgres === undefined) return `${src("--cluster")} needs --postgres: the nodes of a cluster share one PostgreSQL database`;
  if (nodeUrl === undefined) return `${src("--cluster")} needs --node-url: the ws:// URL other nodes send this node's clients to`;
  if (renewMs * 2 > leaseMs) return `${src("--renew-ms")} (${renewMs}) must be at most half of ${src("--lease-ms")} (${leaseMs}): a lease must survive a missed renewal`;
  return { nodeUrl, leaseMs, renewMs, proxy: switches.has("--proxy") };
}

/** A decimal integer up to Number.MAX_SAFE_INTEGER (no sign, exponent or separators), else `undefined`. */
function parseInteger(text: string): number | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}
