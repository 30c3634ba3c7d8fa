/*
 * Storage layout of Data API blobs (keys in the BlobStore; <id> is the session's wire id):
 *
 *   sessions/<id>/data/<blob>.<size>   The opaque (client-encrypted) bytes of one blob; <blob> is
 *                                      the id the client chose ([A-Za-z0-9_-], 16–64 characters),
 *                                      <size> its length in decimal, so usage is counted from a
 *                                      listing without reading a blob. Written once, never changed.
 *
 * Blobs live under their session's prefix, so retention deletes them with the session (SessionStore
 * removes every key under sessions/<id>/), and SessionStore.create() clears leftovers of a deleted
 * session before the id is used again. Who may read and write is decided against the session's meta
 * (its verifier): see {@link DataStore.authorize}.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { BlobStore } from "./blob-store";
import { checkSessionId } from "./checks";
import { StorageError } from "./errors";
import { KeyedQueue } from "./keyed-queue";
import { decodeMeta } from "./records";

/** What one session has stored. */
export interface DataUsage {
  readonly blobs: number;
  readonly bytes: number;
}

/** Bounds of a {@link DataStore}: each refusal names the bound it hit. */
export interface DataStoreLimits {
  /** Largest blob, in bytes. */
  readonly maxBlobBytes: number;
  /** Bytes of all blobs of one session. */
  readonly maxSessionBytes: number;
  /** Blobs of one session. */
  readonly maxSessionBlobs: number;
}

/** Why {@link DataStore.put} did not store a blob. */
export type DataRefusal =
  | { readonly reason: "exists" }
  | { readonly reason: "too-large"; readonly limit: number }
  | { readonly reason: "quota-bytes"; readonly limit: number; readonly used: number }
  | { readonly reason: "quota-blobs"; readonly limit: number };

/** The blob ids a client may choose: URL- and key-safe, long enough to be unguessable when random. */
export const DATA_BLOB_ID = /^[A-Za-z0-9_-]{16,64}$/;

const dataPrefix = (id: string): string => `sessions/${id}/data/`;
const metaKey = (id: string): string => `sessions/${id}/meta`;
const blobName = /^([A-Za-z0-9_-]{16,64})\.([0-9]{1,15})$/;

/**
 * Data API blobs of every session, with the bounds on what one session may store. Like
 * {@link SessionStore} it owns the layout; the {@link BlobStore} only moves bytes.
 *
 * @example
 * ```ts
 * const data = new DataStore(blobs, { maxBlobBytes: 1 << 24, maxSessionBytes: 1 << 28, maxSessionBlobs: 1000 });
 * if (await data.authorize(sessionId, token)) await data.put(sessionId, blobId, bytes);
 * const bytes = await data.get(sessionId, blobId);
 * ```
 */
export class DataStore {
  readonly #store: BlobStore;
  readonly #limits: DataStoreLimits;
  /** Serializes the quota check and the write of each session's uploads. */
  readonly #sessions = new KeyedQueue();

  readonly #verifierOf: (sessionId: string) => Promise<Uint8Array | undefined>;

  /**
   * `verifierOf`: where a session's verifier is read from when it is not in `store`'s session
   * layout (a cluster keeps sessions in tables of its own). Default: the session's meta in `store`.
   */
  constructor(store: BlobStore, limits: DataStoreLimits, verifierOf?: (sessionId: string) => Promise<Uint8Array | undefined>) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new StorageError(`DataStore: ${name} must be a positive integer, got ${String(value)}`);
    }
    this.#store = store;
    this.#limits = { ...limits };
    this.#verifierOf = verifierOf ?? (async (id) => {
      const bytes = await this.#store.get(metaKey(id));
      return bytes === undefined ? undefined : decodeMeta(metaKey(id), bytes, id).verifier;
    });
  }

  /** The bounds it enforces. */
  get limits(): DataStoreLimits {
    return this.#limits;
  }

  /**
   * Whether `token` proves the key of stored session `sessionId`: SHA-256(token) equals the
   * verifier its first client registered (the same proof a Join gives). `false` when the session
   * is not stored.
   */
  async authorize(sessionId: string, token: Uint8Array): Promise<boolean> {
    const verifier = await this.#verifierOf(checkSessionId(sessionId));
    if (verifier === undefined) return false;
    const digest = createHash("sha256").update(token).digest();
    return verifier.length === digest.length && timingSafeEqual(verifier, digest);
  }

  /** What session `sessionId` stores now. */
  async usage(sessionId: string): Promise<DataUsage> {
    let blobs = 0;
    let bytes = 0;
    for (const entry of await this.#entries(checkSessionId(sessionId))) {
      blobs++;
      bytes += entry.size;
    }
    return { blobs, bytes };
  }

  /**
   * Stores `bytes` as blob `blobId` of session `sessionId`, durably, unless that would exceed a
   * bound or the blob exists (blobs are immutable: a second upload under an id never replaces the first).
   * @returns `undefined` once stored, else why not.
   */
  async put(sessionId: string, blobId: string, bytes: Uint8Array): Promise<DataRefusal | undefined> {
    const id = checkSessionId(sessionId);
    checkBlobId(blobId);
    if (bytes.length > this.#limits.maxBlobBytes) return { reason: "too-large", limit: this.#limits.maxBlobBytes };
    return this.#sessions.run(id, async () => {
      const entries = await this.#entries(id);
      if (entries.some((e) => e.blob === blobId)) return { reason: "exists" } as const;
      const { maxSessionBlobs, maxSessionBytes } = this.#limits;
      if (entries.length >= maxSessionBlobs) return { reason: "quota-blobs", limit: maxSessionBlobs } as const;
      const used = entries.reduce((sum, e) => sum + e.size, 0);
      if (used + bytes.length > maxSessionBytes) return { reason: "quota-bytes", limit: maxSessionBytes, used } as const;
      await this.#store.put(`${dataPrefix(id)}${blobId}.${bytes.length}`, bytes);
      return undefined;
    });
  }

  /** Blob `blobId` of session `sessionId`, or `undefined` if it is not stored. */
  async get(sessionId: string, blobId: string): Promise<Uint8Array | undefined> {
    const id = checkSessionId(sessionId);
    checkBlobId(blobId);
    const keys = await this.#store.list(`${dataPrefix(id)}${blobId}.`);
    for (const key of keys) {
      const match = blobName.exec(key.slice(dataPrefix(id).length));
      if (match?.[1] !== blobId) continue;
      const bytes = await this.#store.get(key);
      if (bytes !== undefined) return bytes;
    }
    return undefined;
  }

  /** Removes every blob of session `sessionId` (retention also does, with the rest of the session). */
  async deleteAll(sessionId: string): Promise<void> {
    const id = checkSessionId(sessionId);
    for (const key of await this.#store.list(dataPrefix(id))) await this.#store.delete(key);
  }

  async #entries(id: string): Promise<{ blob: string; size: number }[]> {
    const prefix = dataPrefix(id);
    const out: { blob: string; size: number }[] = [];
    for (const key of await this.#store.list(prefix)) {
      const match = blobName.exec(key.slice(prefix.length));
      if (match) out.push({ blob: match[1]!, size: Number(match[2]) });
    }
    return out;
  }
}

function checkBlobId(blobId: string): void {
  if (typeof blobId !== "string" || !DATA_BLOB_ID.test(blobId)) {
    throw new StorageError(`invalid data blob id ${JSON.stringify(blobId)}: use 16 to 64 characters of [A-Za-z0-9_-]`);
  }
}
