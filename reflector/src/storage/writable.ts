import { equalBytes } from "@lockstep/protocol";
import { randomBytes } from "node:crypto";
import type { BlobStore } from "./blob-store";
import { StorageError } from "./errors";

/** Where probe keys live: outside `sessions/`, `activity/` and `persist/`, so no scan ever reads them. */
const PROBE_PREFIX = "lockstep/probe-";

/**
 * Proves that `store` can be written: puts a random probe key (`lockstep/probe-<hex>`), reads it
 * back and compares, then deletes it. A reflector calls this before it accepts clients, so a
 * read-only directory, a full disk or a database user without INSERT stops it at start with a
 * clear message, instead of failing the first session that writes (and every one after).
 *
 * A crash between the put and the delete leaves one small probe key behind; nothing reads it.
 *
 * @example
 * ```ts
 * const store = await createFsStore("/var/lib/lockstep");
 * await checkWritable(store); // StorageError: the storage at /var/lib/lockstep is not writable (EROFS): …
 * ```
 * @throws {StorageError} saying where the storage is, the error code if there is one, and what to do.
 */
export async function checkWritable(store: BlobStore): Promise<void> {
  const key = PROBE_PREFIX + randomBytes(8).toString("hex");
  const value = new Uint8Array(randomBytes(16));
  try {
    await store.put(key, value);
    const back = await store.get(key);
    if (back === undefined || !equalBytes(back, value)) {
      throw new StorageError(`a value put under ${JSON.stringify(key)} read back ${back === undefined ? "as missing" : "different"}; the adapter does not keep what it stores`, { key });
    }
    await store.delete(key);
    if ((await store.get(key)) !== undefined) {
      throw new StorageError(`${JSON.stringify(key)} is still there after delete(); the adapter does not delete`, { key });
    }
  } catch (cause) {
    const code = codeIn(cause);
    const where = store.location === undefined ? "the storage" : `the storage at ${store.location}`;
    const text = cause instanceof Error ? cause.message : String(cause);
    throw new StorageError(`${where} is not writable${code === undefined ? "" : ` (${code})`}: ${text}`, { cause, key });
  }
}

/** The first string `code` (an errno name such as EROFS, or an SQLSTATE) along the cause chain. */
function codeIn(error: unknown): string | undefined {
  for (let e = error, depth = 0; typeof e === "object" && e !== null && depth < 16; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}
