import { checkKey, checkPrefix, type BlobStore } from "./blob-store";
import { StorageError } from "./errors";

/**
 * A {@link BlobStore} in memory, for tests and throwaway reflectors. Values are copied on the way
 * in and out, so callers can never alias the stored bytes.
 *
 * @example
 * ```ts
 * const sessions = new SessionStore(createMemoryStore());
 * ```
 */
export function createMemoryStore(): BlobStore {
  return new MemoryStore();
}

class MemoryStore implements BlobStore {
  /** Writes apply at once, in call order, and only fail on a closed store. */
  readonly orderedWrites = true;
  readonly location = "memory";
  readonly #values = new Map<string, Uint8Array>();
  #closed = false;

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#checkOpen();
    checkKey(key);
    return this.#values.get(key)?.slice();
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#checkOpen();
    checkKey(key);
    if (!(value instanceof Uint8Array)) throw new StorageError(`put ${JSON.stringify(key)}: value must be a Uint8Array`, { key });
    this.#values.set(key, value.slice());
  }

  async delete(key: string): Promise<void> {
    this.#checkOpen();
    checkKey(key);
    this.#values.delete(key);
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    this.#checkOpen();
    // Every key is checked before any is removed: a bad key leaves the store as it was.
    for (const key of keys) checkKey(key);
    for (const key of keys) this.#values.delete(key);
  }

  async list(prefix: string): Promise<string[]> {
    this.#checkOpen();
    checkPrefix(prefix);
    const keys: string[] = [];
    for (const key of this.#values.keys()) if (key.startsWith(prefix)) keys.push(key);
    // The default sort compares UTF-16 code units, which is the order the contract promises.
    return keys.sort();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #checkOpen(): void {
    if (this.#closed) throw new StorageError("the memory store is closed; create a new one with createMemoryStore()");
  }
}
