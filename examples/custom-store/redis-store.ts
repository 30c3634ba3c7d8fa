import { StorageError, checkKey, checkPrefix, type BlobStore } from "@lockstep/reflector";

/**
 * One write command of {@link RedisLike.multi}, in the array form Redis clients take for
 * `MULTI … EXEC` (ioredis: `redis.multi([["set", key, value], …]).exec()`).
 */
export type RedisCommand =
  | readonly ["set", string, Uint8Array]
  | readonly ["del", string, ...string[]]
  | readonly ["zadd", string, 0, string]
  | readonly ["zrem", string, string, ...string[]];

/**
 * The few Redis commands {@link createRedisStore} needs, so the store works over any client (or
 * a fake in tests) without depending on one. Wrap your client to fit; see README.md.
 */
export interface RedisLike {
  /** `GET key` as raw bytes (ioredis: `getBuffer`), or `null` if the key is missing. */
  getBuffer(key: string): Promise<Uint8Array | null>;
  /** `ZRANGEBYLEX key min max`: members of a sorted set whose scores are all 0, in byte order. */
  zrangebylex(key: string, min: string, max: string): Promise<string[]>;
  /** Runs `commands` in one `MULTI … EXEC` transaction: all of them or none, seen at once. */
  multi(commands: readonly RedisCommand[]): Promise<void>;
}

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /** Prepended to every Redis key the store uses, so one Redis can hold several stores. Default `"lockstep:"`. */
  readonly namespace?: string;
}

/**
 * A {@link BlobStore} in Redis: each value is a string key, and a sorted set with every member at
 * score 0 indexes the keys, so `list(prefix)` is one `ZRANGEBYLEX` already in byte order (which,
 * for the ASCII keys the contract allows, is the UTF-16 order it promises). A put or delete changes
 * the value and the index in one transaction, so `list` never disagrees with `get`.
 *
 * Durability is Redis's: a put is durable once resolved only with `appendonly yes` and
 * `appendfsync always`. With the defaults, a crash can lose the last second of writes.
 *
 * `close()` waits for operations in flight but leaves the client open: it is yours to quit.
 *
 * @example
 * ```ts
 * const storage = createRedisStore(wrapIoredis(new Redis()));
 * const reflector = await startReflector({ storage });
 * ```
 */
export function createRedisStore(client: RedisLike, options: RedisStoreOptions = {}): BlobStore {
  return new RedisStore(client, options.namespace ?? "lockstep:");
}

class RedisStore implements BlobStore {
  readonly #client: RedisLike;
  readonly #values: string;
  readonly #index: string;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(client: RedisLike, namespace: string) {
    this.#client = client;
    this.#values = `${namespace}v:`;
    this.#index = `${namespace}keys`;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#track("read", key, async () => {
      checkKey(key);
      const value = await this.#client.getBuffer(this.#values + key);
      // A plain copy: clients hand out Buffers, which may share pooled memory.
      return value === null ? undefined : new Uint8Array(value);
    });
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.#track("write", key, async () => {
      checkKey(key);
      if (!(value instanceof Uint8Array)) throw new StorageError(`put ${JSON.stringify(key)}: value must be a Uint8Array`, { key });
      await this.#client.multi([
        ["set", this.#values + key, value.slice()],
        ["zadd", this.#index, 0, key],
      ]);
    });
  }

  delete(key: string): Promise<void> {
    return this.#track("delete", key, async () => {
      checkKey(key);
      await this.#client.multi([
        ["del", this.#values + key],
        ["zrem", this.#index, key],
      ]);
    });
  }

  /** Optional in the contract: one transaction for every key (a snapshot trims a thousand at once). */
  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#track("delete", keys[0] ?? "", async () => {
      for (const key of keys) checkKey(key);
      if (keys.length === 0) return;
      await this.#client.multi([
        ["del", ...(keys.map((key) => this.#values + key) as [string, ...string[]])],
        ["zrem", this.#index, ...(keys as [string, ...string[]])],
      ]);
    });
  }

  list(prefix: string): Promise<string[]> {
    return this.#track("list", prefix, async () => {
      checkPrefix(prefix);
      if (prefix === "") return this.#client.zrangebylex(this.#index, "-", "+");
      // `[p` includes p; `(q` excludes q, the smallest string above every string starting with p.
      const above = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
      return this.#client.zrangebylex(this.#index, `[${prefix}`, `(${above}`);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
  }

  #track<T>(verb: string, key: string, operation: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new StorageError("the Redis store was closed; create a new one with createRedisStore()"));
    const promise = operation().catch((cause: unknown) => {
      if (cause instanceof StorageError) throw cause;
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new StorageError(`cannot ${verb} ${JSON.stringify(key)} in Redis: ${reason}; check that Redis is reachable, then retry`, { cause, key });
    });
    this.#inFlight.add(promise);
    const forget = (): void => void this.#inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }
}
