/**
 * Storage failed: an invalid key, an I/O error, corrupt stored data, or a call that breaks the
 * storage contract (e.g. appending out of order). The message says what went wrong and what to do;
 * the underlying error, if any, is chained as `cause`.
 */
export class StorageError extends Error {
  override readonly name = "StorageError";
  /** The storage key involved, when there is one (e.g. the corrupt blob's key). */
  readonly key: string | undefined;

  constructor(message: string, options?: { cause?: unknown; key?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.key = options?.key;
  }
}
