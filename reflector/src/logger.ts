/** Fields of one structured log line. Values are JSON-serialised; byte arrays are reduced to their length. */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * Where the reflector reports what it does. Each call is one event, named with a dotted lower-case
 * name (`"session.created"`), plus structured fields. Implementations must not throw.
 *
 * The reflector never passes payload contents, only ids, sizes, counts and codes.
 */
export interface Logger {
  /** Normal operation: listening, sessions created and dropped, views joining and exiting. */
  info(event: string, fields?: LogFields): void;
  /** A client misbehaved or vanished (protocol errors, rate limits, heartbeat timeouts). */
  warn(event: string, fields?: LogFields): void;
  /** A reflector fault that needs a look; the affected socket was closed, others are unharmed. */
  error(event: string, fields?: LogFields): void;
}

/** Lowest level a console logger writes: `"info"` writes everything, `"silent"` nothing. */
export type LogLevel = "info" | "warn" | "error" | "silent";

/** Every {@link LogLevel}, lowest first. */
export const LOG_LEVELS: readonly LogLevel[] = ["info", "warn", "error", "silent"];

/** A logger that drops everything (for tests and embedding). */
export const silentLogger: Logger = Object.freeze({
  info(): void {},
  warn(): void {},
  error(): void {},
});

/**
 * How a console logger writes a line: `"json"`, one JSON object per line (for log collectors; the
 * default), or `"pretty"`, `HH:MM:SS.mmm LEVEL event key=value …` for a person at a terminal.
 */
export type LogFormat = "json" | "pretty";

/** Every {@link LogFormat}. */
export const LOG_FORMATS: readonly LogFormat[] = ["json", "pretty"];

/** Options of {@link createConsoleLogger}. */
export interface ConsoleLoggerOptions {
  /** Receives each line, without its newline. Default: `process.stdout`. */
  readonly write?: (line: string) => void;
  /** Wall-clock time for the `ts` field, in ms since the epoch. Default: `Date.now`. */
  readonly now?: () => number;
  /** Line format. Default `"json"`. */
  readonly format?: LogFormat;
}

/**
 * A logger that writes one JSON object per line: `{"ts":"…","level":"info","event":"…","fields":{…}}`.
 * Lines below `level` are dropped.
 *
 * @example
 * ```ts
 * const logger = createConsoleLogger("warn");
 * logger.warn("rate.limited", { sessionId, viewId });
 * ```
 */
export function createConsoleLogger(level: LogLevel = "info", options: ConsoleLoggerOptions = {}): Logger {
  const write = options.write ?? ((line: string) => void process.stdout.write(line + "\n"));
  const now = options.now ?? Date.now;
  const format = options.format ?? "json";
  const threshold = LOG_LEVELS.indexOf(level);
  const emit = (lineLevel: Exclude<LogLevel, "silent">, event: string, fields: LogFields = {}): void => {
    if (LOG_LEVELS.indexOf(lineLevel) < threshold) return;
    try {
      write(formatLogLine(format, now(), lineLevel, event, fields));
    } catch {
      // A logger must never take the reflector down (e.g. EPIPE on a closed stdout).
    }
  };
  return {
    info: (event, fields) => emit("info", event, fields),
    warn: (event, fields) => emit("warn", event, fields),
    error: (event, fields) => emit("error", event, fields),
  };
}

/**
 * One log line (without its newline) as a console logger writes it; for programs around the
 * reflector (its CLI) whose own lines must look like the reflector's.
 */
export function formatLogLine(format: LogFormat, at: number, level: Exclude<LogLevel, "silent">, event: string, fields: LogFields = {}): string {
  const ts = new Date(at).toISOString();
  return format === "pretty" ? prettyLine(ts, level, event, fields) : jsonLine(ts, level, event, fields);
}

function jsonLine(ts: string, level: string, event: string, fields: LogFields): string {
  try {
    return JSON.stringify({ ts, level, event, fields }, replacer);
  } catch (cause) {
    // Cycles and throwing getters end up here; keep the event, lose the fields.
    return JSON.stringify({ ts, level, event, fields: { unserializable: String(cause) } });
  }
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? { name: value.name, message: value.message } : { name: value.name, message: value.message, code };
  }
  // Never log bytes: they may be (encrypted) payloads. Their size is enough to debug with.
  if (ArrayBuffer.isView(value)) return { bytes: value.byteLength };
  if (value instanceof ArrayBuffer) return { bytes: value.byteLength };
  return value;
}

/** `12:03:04.005 WARN  rate.limited sessionId=… viewId=…`: a `message` field comes first, unquoted. */
function prettyLine(ts: string, level: string, event: string, fields: LogFields): string {
  let line = `${ts.slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${event}`;
  const message = fields["message"];
  if (typeof message === "string") line += `  ${message}`;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || (key === "message" && typeof message === "string")) continue;
    line += ` ${key}=${prettyValue(value)}`;
  }
  return line;
}

function prettyValue(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  try {
    return JSON.stringify(value, replacer) ?? String(value);
  } catch {
    return "[unserializable]";
  }
}
