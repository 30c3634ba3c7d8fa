import { StorageError } from "./errors";

/**
 * Byte-level key/value store: the whole contract an adapter (memory, filesystem, an external
 * engine) must meet. Adapters only move bytes; layout, retention and the message log live in
 * {@link SessionStore}. Every adapter passes the shared conformance suite
 * (`runBlobStoreConformance` in `@lockstep/test-support`).
 *
 * Keys are `/`-separated segments of `[A-Za-z0-9._-]` (no empty, `.` or `..` segment, no leading or
 * trailing `/`, at most {@link MAX_KEY_LENGTH} characters and {@link MAX_SEGMENT_LENGTH} per
 * segment). A key may be both a value and a prefix of other keys (`a/b` and `a/b/c` coexist).
 * Invalid keys are rejected with a {@link StorageError}.
 *
 * @example
 * ```ts
 * const store = await createFsStore("/var/lib/lockstep");
 * await store.put("sessions/abc/meta", bytes);
 * const keys = await store.list("sessions/abc/"); // ["sessions/abc/meta"]
 * await store.close();
 * ```
 */
export interface BlobStore {
  /** The value stored under `key`, as a fresh copy the caller may mutate; `undefined` if none. */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * Stores `value` under `key`. The store may read `value` until the returned promise settles (the
   * filesystem adapter writes a large value from it, not from a copy): do not change it before, as
   * with a buffer handed to a socket or file write. Atomic: a concurrent or later reader sees the old value
   * or the new one, never a mix. Durable once resolved (the filesystem adapter appends it to its
   * log and resolves once an fdatasync covering it returned; PostgreSQL once the upsert committed).
   */
  put(key: string, value: Uint8Array): Promise<void>;
  /** Removes `key`; no error if it is missing. Durable once resolved. */
  delete(key: string): Promise<void>;
  /**
   * Removes `keys` (no error for missing ones), as if deleted one by one in the order given, in
   * one operation: durable once resolved; a crash before then may have removed a prefix of them,
   * never a later key without the earlier ones. Optional: without it, {@link SessionStore} calls
   * `delete` per key. A snapshot trims every log segment since the last one (a thousand at 2,000
   * messages/s): one operation is one record batch on the filesystem adapter and one statement on
   * PostgreSQL, where a thousand deletes were a thousand promises and, there, round trips.
   */
  deleteMany?(keys: readonly string[]): Promise<void>;
  /** Every key starting with `prefix` (any string, e.g. `"a/b/"` or `"a/b"`), sorted ascending by UTF-16 code unit. */
  list(prefix: string): Promise<string[]>;
  /** Waits for operations in flight, then releases resources. Later calls fail with a {@link StorageError}. */
  close(): Promise<void>;
  /**
   * Where the bytes live, for messages to an operator: the directory of the filesystem adapter,
   * the table and server of the PostgreSQL one. Optional; never parsed.
   */
  readonly location?: string;
  /**
   * Set by stores whose writes, issued without waiting for each other, land in issue order: each
   * resolves only once every one issued before it did, and when one fails, every one issued before
   * the failure was reported that has not resolved fails too (nothing lands after a hole). The
   * session store then writes a session's next log segment before the previous one is durable.
   * Optional: without it, a session's appends wait for each other.
   */
  readonly orderedWrites?: boolean;
}

/** Longest key accepted, in characters. */
export const MAX_KEY_LENGTH = 1024;
/** Longest key segment accepted, in characters (keeps filesystem names under 255 bytes). */
export const MAX_SEGMENT_LENGTH = 120;

const SEGMENT = /^[A-Za-z0-9._-]+$/;
const PREFIX_CHARS = /^[A-Za-z0-9._/-]*$/;

function segmentProblem(segment: string): string | undefined {
  if (segment.length === 0) return "has an empty segment";
  if (segment === "." || segment === "..") return `has a "${segment}" segment`;
  if (segment.length > MAX_SEGMENT_LENGTH) return `has a segment longer than ${MAX_SEGMENT_LENGTH} characters`;
  if (!SEGMENT.test(segment)) return "has a character outside [A-Za-z0-9._-/]";
  return undefined;
}

/** Whether `c` (a char code) may be in a key segment: [A-Za-z0-9._-]. */
const isSegmentChar = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 46 || c === 95 || c === 45;

/**
 * Throws a {@link StorageError} unless `key` is a valid storage key. One pass over its characters
 * and no allocation when it is valid: every put and get checks its key (a log segment's each batch).
 */
export function checkKey(key: string): void {
  if (typeof key !== "string" || key.length === 0) throw invalid(key, "is empty");
  if (key.length > MAX_KEY_LENGTH) throw invalid(key, `is longer than ${MAX_KEY_LENGTH} characters`);
  let start = 0;
  for (let i = 0; i <= key.length; i++) {
    const c = i < key.length ? key.charCodeAt(i) : 47;
    if (c !== 47) {
      if (!isSegmentChar(c)) break;
      continue;
    }
    const n = i - start;
    const dots = key.charCodeAt(start) === 46 && (n === 1 || (n === 2 && key.charCodeAt(start + 1) === 46));
    if (n === 0 || n > MAX_SEGMENT_LENGTH || dots) break;
    if (i === key.length) return;
    start = i + 1;
  }
  // Invalid: say why.
  if (key.startsWith("/")) throw invalid(key, "is absolute (starts with '/')");
  for (const segment of key.split("/")) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw invalid(key, problem);
  }
}

/**
 * Throws a {@link StorageError} unless `prefix` could start a valid key: key characters only, and
 * every segment before the last `/` valid. The text after the last `/` may be a partial segment.
 * @returns the complete segments (before the last `/`) and the partial rest.
 */
export function checkPrefix(prefix: string): { dirs: string[]; partial: string } {
  if (typeof prefix !== "string") throw invalid(String(prefix), "is not a string", "prefix");
  if (prefix.length > MAX_KEY_LENGTH) throw invalid(prefix, `is longer than ${MAX_KEY_LENGTH} characters`, "prefix");
  if (prefix.startsWith("/")) throw invalid(prefix, "is absolute (starts with '/')", "prefix");
  if (!PREFIX_CHARS.test(prefix)) throw invalid(prefix, "has a character outside [A-Za-z0-9._-/]", "prefix");
  const parts = prefix.split("/");
  const partial = parts.pop() ?? "";
  for (const segment of parts) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw invalid(prefix, problem, "prefix");
  }
  return { dirs: parts, partial };
}

function invalid(key: string, problem: string, what = "key"): StorageError {
  return new StorageError(
    `invalid storage ${what} ${JSON.stringify(key)}: it ${problem}. Use '/'-separated segments of [A-Za-z0-9._-], without '.' or '..' segments.`,
    { key },
  );
}
