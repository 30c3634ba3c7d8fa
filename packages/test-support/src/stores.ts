import type { BlobStore } from "@lockstep/reflector";

/**
 * `store` with a `close()` that keeps it open: a test's store outlives the reflectors it restarts
 * on it (a reflector closes its store when it closes).
 */
export function keepOpen(store: BlobStore): BlobStore {
  return {
    location: store.location,
    get: (key) => store.get(key),
    put: (key, value) => store.put(key, value),
    delete: (key) => store.delete(key),
    list: (prefix) => store.list(prefix),
    close: async () => undefined,
  };
}
