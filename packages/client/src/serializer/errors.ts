import { LockstepError } from "@lockstep/protocol";

/**
 * A value in the graph cannot be serialized. `path` says where, starting at `root`:
 * `.prop` / `["odd key"]` for properties, `[i]` for array elements, `.get(key)` for Map values,
 * `<key>[i]` for the i-th Map key, `<set>[i]` for the i-th Set entry and `<data>` for the data a
 * custom type's `write()` returned.
 *
 * @example
 * ```ts
 * try {
 *   serialize({ when: new Date() }, { classOf: () => undefined });
 * } catch (e) {
 *   if (e instanceof SerializationError) console.log(e.path); // "root.when"
 * }
 * ```
 */
export class SerializationError extends LockstepError {
  override readonly name = "SerializationError";
  /** Property path from the root to the offending value, e.g. `root.players.get("ann").onClick`. */
  readonly path: string;

  constructor(message: string, path: string, options?: { cause?: unknown }) {
    super(message, options);
    this.path = path;
  }
}

/**
 * Bytes could not be turned back into a graph: truncated, corrupted or adversarial input, a wrong
 * format version, an unknown class id, or a failing `resolveRef` / custom `read()` (as `cause`).
 */
export class DeserializationError extends LockstepError {
  override readonly name = "DeserializationError";
  /** Byte offset where decoding failed, or −1 when not tied to a position. */
  readonly offset: number;

  constructor(message: string, offset = -1, options?: { cause?: unknown }) {
    super(offset >= 0 ? `${message} (at byte ${offset})` : message, options);
    this.offset = offset;
  }
}

/**
 * Internal: thrown where the writer meets something it cannot write, then caught by each enclosing
 * container, which adds its path segment; `serialize()` turns it into a {@link SerializationError}.
 * Collecting the path while unwinding keeps the happy path free of any path bookkeeping.
 */
export class Unserializable extends LockstepError {
  // Never reaches the app (serialize() converts it), so its name stays the generic one it had.
  override readonly name = "Error";
  /** Path segments, innermost first. */
  readonly segments: string[] = [];

  /**
   * @param what - e.g. `a function`; the message reads `cannot serialize ${what} at ${path}${tail}`.
   * @param tail - advice appended after the path, e.g. ` (Date is not serializable: store a number)`.
   */
  constructor(
    readonly what: string,
    readonly tail: string,
    options?: { cause?: unknown },
  ) {
    super(what, options);
  }

  /** The public error, with `prefix` (the path to where writing of this part started) in front. */
  toPublic(prefix: string): SerializationError {
    let path = prefix;
    for (let i = this.segments.length - 1; i >= 0; i--) path += this.segments[i];
    return new SerializationError(`cannot serialize ${this.what} at ${path}${this.tail}`, path, { cause: this.cause });
  }
}

/** Adds `segment` to an {@link Unserializable} passing through a container; returns `error`. */
export function withSegment(error: unknown, segment: string): unknown {
  if (error instanceof Unserializable) error.segments.push(segment);
  return error;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `.name` for identifier keys, `["odd key"]` otherwise. */
export function propSegment(key: string): string {
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** `.get(key)` for primitive keys; `.get(<key>[i])` for object keys (the i-th key of the Map). */
export function mapValueSegment(key: unknown, index: number): string {
  return `.get(${describeKey(key, index)})`;
}

function describeKey(key: unknown, index: number): string {
  switch (typeof key) {
    case "string":
      return JSON.stringify(key);
    case "number":
      return Object.is(key, -0) ? "-0" : String(key);
    case "bigint":
      return `${key}n`;
    case "boolean":
    case "undefined":
      return String(key);
    default:
      return key === null ? "null" : `<key>[${index}]`;
  }
}
