/*
 * Storage layout of persisted data (keys in the BlobStore; <slot> is a persistence slot id):
 *
 *   persist/<slot>/verifier      SHA-256 of the slot's access token, 32 raw bytes. Written once, by
 *                                the first upload; every later upload or load must match it.
 *   persist/<slot>/v/<ver16>     One record per version: "P", format 1, varUint version, varUint
 *                                createdAt, string sessionId, varUint seq, varUint size, bytes
 *                                hash, then the opaque (encrypted) data. <ver16> is the version,
 *                                zero-padded to 16 digits so key order is version order.
 *
 * Versions are only ever added: a rollback adds a copy of an old version as the newest. Each
 * append keeps the newest `keep` versions and deletes older ones, after the new one is durable.
 */
import { Reader, Writer } from "@lockstep/protocol";
import { createHash, timingSafeEqual } from "node:crypto";
import type { BlobStore } from "./blob-store";
import { checkKey } from "./blob-store";
import { StorageError } from "./errors";
import { KeyedQueue } from "./keyed-queue";
import { corrupt, isCount } from "./records";

/** What is stored of one version of a slot, without its data. */
export interface PersistVersionInfo {
  /** 1, 2, 3…: the order versions were stored in. */
  readonly version: number;
  /** Wall-clock ms when this version was stored. */
  readonly createdAt: number;
  /** The session that uploaded it (empty for a rollback made offline). */
  readonly sessionId: string;
  /** Seq of the entry right after which the session took the data. */
  readonly seq: number;
  /** Plaintext size the uploader reported, in bytes. */
  readonly size: number;
  /** Keyed hash of the plaintext: equal hashes mean equal data. */
  readonly hash: Uint8Array;
  /** Size of the stored (encrypted) data, in bytes. */
  readonly bytesLength: number;
}

/** One version of a slot, with its opaque (encrypted) data. */
export interface PersistVersion extends PersistVersionInfo {
  readonly bytes: Uint8Array;
}

/** What an upload stores. */
export interface PersistRecord {
  readonly sessionId: string;
  readonly seq: number;
  readonly size: number;
  readonly hash: Uint8Array;
  readonly bytes: Uint8Array;
}

/** Options of a {@link PersistStore}. */
export interface PersistStoreOptions {
  /** Versions kept per slot (newest first); older ones are deleted. Default {@link DEFAULT_PERSIST_VERSIONS}. */
  readonly keep?: number;
  /** Wall clock in ms. Default `Date.now`. */
  readonly now?: () => number;
}

/** Versions of each slot a reflector keeps by default. */
export const DEFAULT_PERSIST_VERSIONS = 10;

const RECORD_TAG = 0x50; // "P"
const RECORD_FORMAT = 1;
const VERSION_DIGITS = 16;
const VERSION_NAME = /^[0-9]{16}$/;
const PREFIX = "persist/";

const slotPrefix = (slot: string): string => `${PREFIX}${slot}/`;
const verifierKey = (slot: string): string => `${PREFIX}${slot}/verifier`;
const versionPrefix = (slot: string): string => `${PREFIX}${slot}/v/`;
const versionKey = (slot: string, version: number): string => versionPrefix(slot) + String(version).padStart(VERSION_DIGITS, "0");

/**
 * Persisted data of every slot: the latest versions, and who may write them. Slots outlive
 * sessions: a new session (a new code version) starts from its slot's latest version. Like
 * {@link SessionStore} it owns layout and ordering; the {@link BlobStore} only moves bytes.
 *
 * @example
 * ```ts
 * const persist = new PersistStore(await createFsStore("./data"));
 * if (await persist.authorize(slot, token)) await persist.append(slot, { sessionId, seq, size, hash, bytes });
 * const latest = await persist.latest(slot); // what the next session starts from
 * ```
 */
export class PersistStore {
  readonly #store: BlobStore;
  readonly #keep: number;
  readonly #now: () => number;
  /** Serializes every write of a slot (and the reads that decide them). */
  readonly #slots = new KeyedQueue();

  constructor(store: BlobStore, options: PersistStoreOptions = {}) {
    const keep = options.keep ?? DEFAULT_PERSIST_VERSIONS;
    if (!Number.isSafeInteger(keep) || keep < 1) throw new StorageError(`keep must be a positive integer number of versions, got ${keep}`);
    this.#store = store;
    this.#keep = keep;
    this.#now = options.now ?? Date.now;
  }

  /** Versions kept per slot. */
  get keep(): number {
    return this.#keep;
  }

  /** Runs `task` with every other write of `slot` held back (check-then-write without races). */
  exclusive<T>(slot: string, task: () => Promise<T>): Promise<T> {
    checkSlot(slot);
    return this.#slots.run(slot, task);
  }

  /**
   * Whether `token` may use `slot`: SHA-256(token) equals the slot's verifier. A slot that has no
   * verifier yet accepts any token, and registers it when `register` is set (the first upload).
   */
  async authorize(slot: string, token: Uint8Array, register = false): Promise<boolean> {
    checkSlot(slot);
    const digest = createHash("sha256").update(token).digest();
    const stored = await this.#store.get(verifierKey(slot));
    if (stored === undefined) {
      if (register) await this.#store.put(verifierKey(slot), new Uint8Array(digest));
      return true;
    }
    return stored.length === digest.length && timingSafeEqual(stored, digest);
  }

  /** Every version kept of `slot`, oldest first (without data). */
  async versions(slot: string): Promise<PersistVersionInfo[]> {
    const out: PersistVersionInfo[] = [];
    for (const version of await this.#versionNumbers(slot)) {
      const record = await this.get(slot, version);
      if (record !== undefined) out.push(withoutBytes(record));
    }
    return out;
  }

  /** Version `version` of `slot`, or `undefined` if it is not kept. */
  async get(slot: string, version: number): Promise<PersistVersion | undefined> {
    checkSlot(slot);
    const key = versionKey(slot, version);
    const bytes = await this.#store.get(key);
    return bytes === undefined ? undefined : decodeRecord(key, bytes, version);
  }

  /** The newest version of `slot`, or `undefined` if it holds nothing. */
  async latest(slot: string): Promise<PersistVersion | undefined> {
    const versions = await this.#versionNumbers(slot);
    const newest = versions[versions.length - 1];
    return newest === undefined ? undefined : this.get(slot, newest);
  }

  /**
   * Stores `record` durably as the newest version of `slot` and returns its version number, then
   * deletes versions beyond the newest `keep`. Call inside {@link exclusive} when the decision to
   * store depends on what is stored.
   */
  async append(slot: string, record: PersistRecord): Promise<number> {
    checkSlot(slot);
    if (!isCount(record.seq) || !isCount(record.size) || !(record.bytes instanceof Uint8Array) || !(record.hash instanceof Uint8Array)) {
      throw new StorageError(`append(${slot}): seq and size must be non-negative integers, hash and bytes Uint8Arrays`);
    }
    const versions = await this.#versionNumbers(slot);
    const version = (versions[versions.length - 1] ?? 0) + 1;
    await this.#store.put(versionKey(slot, version), encodeRecord(version, Math.max(0, Math.floor(this.#now())), record));
    // Only once the new version is durable may old ones go; a crash in between keeps one extra.
    const excess = versions.length + 1 - this.#keep;
    for (let i = 0; i < excess; i++) await this.#store.delete(versionKey(slot, versions[i]!));
    return version;
  }

  /**
   * Makes version `version` of `slot` the newest again by storing a copy of it as a new version
   * (nothing is overwritten). Returns the new version number.
   * @throws {StorageError} if that version is not kept.
   */
  rollback(slot: string, version: number): Promise<number> {
    return this.exclusive(slot, async () => {
      const old = await this.get(slot, version);
      if (old === undefined) {
        const kept = (await this.#versionNumbers(slot)).join(", ") || "none";
        throw new StorageError(`slot ${slot} has no version ${version} (versions kept: ${kept})`, { key: versionKey(slot, version) });
      }
      return this.append(slot, { sessionId: "", seq: old.seq, size: old.size, hash: old.hash, bytes: old.bytes });
    });
  }

  /** Every slot that holds data or a verifier, sorted. */
  async slots(): Promise<string[]> {
    const slots = new Set<string>();
    for (const key of await this.#store.list(PREFIX)) {
      const slot = key.slice(PREFIX.length).split("/")[0];
      if (slot) slots.add(slot);
    }
    return [...slots].sort();
  }

  async #versionNumbers(slot: string): Promise<number[]> {
    checkSlot(slot);
    const prefix = versionPrefix(slot);
    const versions: number[] = [];
    for (const key of await this.#store.list(prefix)) {
      const name = key.slice(prefix.length);
      if (VERSION_NAME.test(name)) versions.push(Number(name));
    }
    return versions.sort((a, b) => a - b);
  }
}

/** Throws a {@link StorageError} unless `slot` can be one key segment. */
function checkSlot(slot: string): void {
  checkKey(slot);
  if (slot.includes("/")) throw new StorageError(`invalid persistence slot ${JSON.stringify(slot)}: it must not contain '/'`, { key: slotPrefix(slot) });
}

function withoutBytes(record: PersistVersion): PersistVersionInfo {
  const { bytes: _bytes, ...info } = record;
  return info;
}

function encodeRecord(version: number, createdAt: number, record: PersistRecord): Uint8Array {
  const w = new Writer(record.bytes.length + record.hash.length + record.sessionId.length * 3 + 48);
  w.u8(RECORD_TAG);
  w.u8(RECORD_FORMAT);
  w.varUint(version);
  w.varUint(createdAt);
  w.string(record.sessionId);
  w.varUint(record.seq);
  w.varUint(record.size);
  w.bytes(record.hash);
  w.raw(record.bytes);
  return w.finish();
}

function decodeRecord(key: string, record: Uint8Array, expected: number): PersistVersion {
  try {
    const r = new Reader(record);
    if (r.u8() !== RECORD_TAG) throw corrupt(key, "it is not a persisted-data record");
    const format = r.u8();
    if (format !== RECORD_FORMAT) throw corrupt(key, `unknown persisted-data format ${format} (this reflector reads format ${RECORD_FORMAT})`);
    const version = r.varUint();
    if (version !== expected) throw corrupt(key, `it says version ${version}, its key says ${expected}`);
    const createdAt = r.varUint();
    const sessionId = r.string();
    const seq = r.varUint();
    const size = r.varUint();
    const hash = r.bytes();
    const bytes = record.subarray(r.offset);
    return { version, createdAt, sessionId, seq, size, hash, bytes, bytesLength: bytes.length };
  } catch (cause) {
    if (cause instanceof StorageError) throw cause;
    throw corrupt(key, "its header is truncated", cause);
  }
}
