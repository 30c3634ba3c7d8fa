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

/** Options of {@link createConsoleLogger}. */
export interface ConsoleLoggerOptions {
  /** Receives each line, without its newline. Default: `process.stdout`. */
  readonly write?: (line: string) => void;
  /** Wall-clock time for the `ts` field, in ms since the epoch. Default: `Date.now`. */
  readonly now?: () => number;
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
  const threshold = LOG_LEVELS.indexOf(level);
  const emit = (lineLevel: Exclude<LogLevel, "silent">, event: string, fields: LogFields = {}): void => {
    if (LOG_LEVELS.indexOf(lineLevel) < threshold) return;
    try {
      write(formatLine(new Date(now()).toISOString(), lineLevel, event, fields));
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

function formatLine(ts: string, level: string, event: string, fields: LogFields): string {
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
