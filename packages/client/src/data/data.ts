import { LockstepError, toBase64Url } from "@lockstep/protocol";
import { UsageError } from "../errors";
import type { DebugLog } from "../kernel/debug-log";
import { DataHandle } from "./handle";
import { importShareableKey, newBlobId, openData, sealData, sessionDataKey, shareableKey } from "./envelope";

/**
 * The reflector refused or failed a Data API request: a blob over its size limit or the session's
 * quota (HTTP 413), no such blob (404), an unreachable reflector. {@link status} is the HTTP status
 * (0 when no answer came); the message says what to do.
 */
export class DataError extends LockstepError {
  override readonly name = "DataError";
  /** The reflector's HTTP status, or 0 when it could not be reached. */
  readonly status: number;

  constructor(message: string, status: number, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

/** Options of {@link Data.store}, as in Croquet. */
export interface DataStoreOptions {
  /**
   * Keep the `ArrayBuffer` usable. Without it, as in Croquet, `store()` takes the buffer over
   * (it is detached: its `byteLength` becomes 0); pass `{ keep: true }` to go on using it.
   */
  readonly keep?: boolean;
  /**
   * Encrypt the blob with a random key of its own, carried in the handle: the handle's id then
   * opens the blob from any session (or app) on the reflector. Default: the session's key, so only
   * clients with the session's password can read it.
   */
  readonly shareable?: boolean;
}

/** What the Data API of one session uses: where blobs go, and the keys (see session.ts). */
export interface DataAccess {
  /** Stores the encrypted blob under this session's space; resolves once it is durable. */
  put(blob: string, bytes: Uint8Array): Promise<void>;
  /** The encrypted blob `blob` of `space`. */
  get(space: string, blob: string): Promise<Uint8Array>;
  /** The wire id of this session: the space its blobs are stored in. */
  readonly space: string;
  /** The persistence master key of the session's password and persistentId. */
  readonly persistMaster: Uint8Array;
}

type Bytes = ArrayBuffer | ArrayBufferView | string;

const utf8 = new TextEncoder();

/**
 * The Data API (Croquet's `Data`): encrypted blobs stored by the reflector, referred to by
 * {@link DataHandle}s that models keep and events carry. Views reach it as `this.session.data`.
 *
 * @example
 * ```ts
 * // in a view: upload, then tell the model
 * const handle = await this.session.data.store(await file.arrayBuffer());
 * this.publish("files", "added", { handle, name: file.name });
 * // in any view, late joiners too
 * const bytes = await this.session.data.fetch(model.files[0].handle);
 * ```
 */
export class Data {
  readonly #access: () => Promise<DataAccess>;
  readonly #debug: DebugLog;
  #sessionKey: Promise<CryptoKey> | undefined;

  /** @internal Made by the session (`session.data`); apps do not construct it. */
  constructor(access: () => Promise<DataAccess>, debug: DebugLog) {
    this.#access = access;
    this.#debug = debug;
  }

  /**
   * Encrypts `data` and stores it with the reflector; resolves with its handle once stored.
   * @throws {DataError} when the reflector refuses it (e.g. larger than its limit: HTTP 413).
   */
  async store(data: Bytes, options: DataStoreOptions = {}): Promise<DataHandle> {
    const started = Date.now();
    const plain = takeBytes(data, options.keep === true);
    const access = await this.#access();
    const blob = newBlobId();
    const own = options.shareable === true ? await shareableKey() : undefined;
    const key = own?.key ?? (await this.#keyOfSession(access));
    const sealed = await sealData(key, access.space, blob, plain);
    await access.put(blob, sealed);
    const handle = DataHandle.create(access.space, blob, own?.text);
    this.#debug.logData(`store${own ? " (shareable)" : ""}`, { bytes: plain.length, ms: Date.now() - started, id: blob });
    return handle;
  }

  /**
   * Fetches and decrypts the blob of `handle` (or of a handle id).
   * @throws {DecryptionError} if the stored bytes fail authentication (another password, tampered): never returned.
   * @throws {DataError} when the reflector has no such blob or cannot be reached.
   */
  async fetch(handle: DataHandle | string): Promise<ArrayBuffer> {
    const started = Date.now();
    const h = typeof handle === "string" ? DataHandle.of(handle) : handle;
    if (!(h instanceof DataHandle)) throw new UsageError("session.data.fetch(handle): pass a handle from session.data.store() (or Data.fromId(id))");
    const access = await this.#access();
    const sealed = await access.get(h.space, h.blob);
    const key = h.key !== undefined ? await importShareableKey(h.key) : await this.#keyOfSession(access);
    const plain = await openData(key, h.space, h.blob, sealed);
    this.#debug.logData("fetch", { bytes: plain.byteLength, ms: Date.now() - started, id: h.blob });
    return plain;
  }

  #keyOfSession(access: DataAccess): Promise<CryptoKey> {
    this.#sessionKey ??= sessionDataKey(access.persistMaster);
    return this.#sessionKey;
  }

  /** The string form of a handle: for persisted data (`persistSession`), URLs, or another session. */
  static toId(handle: DataHandle): string {
    if (!(handle instanceof DataHandle)) throw new UsageError("Data.toId(handle): pass a handle from session.data.store()");
    return handle.id;
  }

  /** The handle of an id made by {@link Data.toId}. @throws {UsageError} unless it is one. */
  static fromId(id: string): DataHandle {
    return DataHandle.of(id);
  }

  /**
   * SHA-256 of `data` (bytes, a string as UTF-8, or a function's source text), base64url without
   * padding (or `"hex"`): for checking content, deduplicating uploads. Asynchronous, as in Croquet.
   */
  static async hash(data: Bytes | ((...args: never[]) => unknown), output: "base64url" | "hex" = "base64url"): Promise<string> {
    const bytes = typeof data === "function" ? utf8.encode(Function.prototype.toString.call(data)) : viewOf(data);
    const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
    return output === "hex" ? [...digest].map((b) => b.toString(16).padStart(2, "0")).join("") : toBase64Url(digest);
  }
}

function viewOf(data: Bytes): Uint8Array {
  if (typeof data === "string") return utf8.encode(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new UsageError(`the Data API takes an ArrayBuffer, a typed array, a DataView or a string, got ${data === null ? "null" : typeof data}`);
}

/** A copy of the bytes to encrypt; an ArrayBuffer not kept is detached, as Croquet does. */
function takeBytes(data: Bytes, keep: boolean): Uint8Array {
  const bytes = viewOf(data).slice();
  if (!keep && data instanceof ArrayBuffer && data.byteLength > 0) {
    try {
      structuredClone(data, { transfer: [data] });
    } catch {
      // Not transferable (e.g. a WebAssembly memory's buffer): it simply stays usable.
    }
  }
  return bytes;
}
