/**
 * The debug flags Multisynq 1.x defines (its `MultisynqDebugOption`), in its order. Each turns on
 * console output of one part of a session; `write` and `offline` change behaviour instead.
 */
export const DEBUG_FLAGS = [
  "session",
  "messages",
  "sends",
  "snapshot",
  "data",
  "hashing",
  "subscribe",
  "publish",
  "events",
  "classes",
  "ticks",
  "write",
  "offline",
] as const;

/** One of {@link DEBUG_FLAGS}. */
export type DebugFlag = (typeof DEBUG_FLAGS)[number];

/**
 * A session's debug flags as fields, read once where a session is built: a call site on a hot path
 * tests one boolean and builds no string unless its flag is on.
 *
 * @example
 * ```ts
 * if (debug.messages) debug.log(`received #${entry.seq}`, data);
 * ```
 */
export class DebugLog {
  readonly session: boolean;
  readonly messages: boolean;
  readonly sends: boolean;
  readonly snapshot: boolean;
  /** The Data API: what it stores and fetches (sizes, times, ids). */
  readonly data: boolean;
  readonly hashing: boolean;
  readonly subscribe: boolean;
  readonly publish: boolean;
  readonly events: boolean;
  readonly classes: boolean;
  readonly ticks: boolean;
  readonly write: boolean;
  readonly offline: boolean;
  /** Every flag that is on, unknown ones included. */
  readonly flags: ReadonlySet<string>;

  constructor(flags: ReadonlySet<string>) {
    this.flags = flags;
    this.session = flags.has("session");
    this.messages = flags.has("messages");
    this.sends = flags.has("sends");
    this.snapshot = flags.has("snapshot");
    this.data = flags.has("data");
    this.hashing = flags.has("hashing");
    this.subscribe = flags.has("subscribe");
    this.publish = flags.has("publish");
    this.events = flags.has("events");
    this.classes = flags.has("classes");
    this.ticks = flags.has("ticks");
    this.write = flags.has("write");
    this.offline = flags.has("offline");
  }

  /**
   * debug=data: the hook of the Data API (`session.data.store`/`fetch`). One line per operation,
   * e.g. `[Lockstep] Data store: 12.0KB in 35 ms (id …)`; nothing (and nothing built) when the flag is off.
   */
  logData(operation: string, detail: { readonly bytes?: number; readonly ms?: number; readonly id?: string } = {}): void {
    if (!this.data) return;
    const size = detail.bytes === undefined ? "" : ` ${detail.bytes < 1024 ? `${detail.bytes}B` : `${(detail.bytes / 1024).toFixed(1)}KB`}`;
    const time = detail.ms === undefined ? "" : ` in ${Math.round(detail.ms)} ms`;
    const id = detail.id === undefined ? "" : ` (id ${detail.id})`;
    this.log(`Data ${operation}:${size}${time}${id}`);
  }

  /** Prints `[Lockstep] <text>` and the details as the console shows objects (inspectable, not stringified). */
  log(text: string, ...details: unknown[]): void {
    console.log(`[Lockstep] ${text}`, ...details);
  }
}

/** A {@link DebugLog} with every flag off. */
export const NO_DEBUG = new DebugLog(new Set());

const logs = new WeakMap<ReadonlySet<string>, DebugLog>();

/** The one {@link DebugLog} of a session's flags (every part of a session reads the same set). */
export function debugLogOf(flags: ReadonlySet<string>): DebugLog {
  let log = logs.get(flags);
  if (log === undefined) logs.set(flags, (log = new DebugLog(flags)));
  return log;
}
