import nacl from "tweetnacl";
import { LockstepError, toBase64Url } from "@lockstep/protocol";

/**
 * End-to-end encryption of everything a session says. The reflector relays and stores envelopes
 * and never decrypts one. Two envelope formats, told apart by their first byte:
 *
 *   version 1: [0x01][24-byte random nonce][XSalsa20-Poly1305 secretbox: 16-byte tag + ciphertext]
 *   version 2: [0x02][12-byte random IV][AES-256-GCM ciphertext + 16-byte tag]
 *
 * Version 1 (tweetnacl, synchronous) seals everything small and everything opened inside model
 * execution: message payloads, view data, the password check, keyed persistence slots. Version 2
 * (WebCrypto, asynchronous, native and several times faster on large inputs) seals bulk data opened
 * outside the VM: snapshots and the persisted data a session starts from. {@link openBulk} opens
 * both versions, so bulk data stored by earlier releases (version 1) keeps opening. Version 2
 * authenticates its version byte as additional data.
 *
 * Keys: PBKDF2-SHA-256(password, salt = SHA-256("lockstep/v1/salt/" + persistentId)) gives a
 * 32-byte master key once per join; HKDF-SHA-256 derives one subkey per purpose (and, where the
 * data belongs to one session only, per sessionId), so an envelope made for one purpose or session
 * never opens as another. A version-2 key is never the bytes of the version-1 key of its purpose:
 * it is derived with its own info string and kept as a non-extractable CryptoKey. The ids the
 * reflector sees (the session's wire id, its persistence slot) are derived from the same master,
 * so nobody without the password can compute them.
 */

/** Version byte of the secretbox envelope (everything but bulk data). */
export const ENVELOPE_VERSION = 1;
/** Bytes a version-1 envelope adds to its plaintext. */
export const ENVELOPE_OVERHEAD = 1 + nacl.secretbox.nonceLength + nacl.secretbox.overheadLength;
/** Version byte of the bulk envelope (AES-256-GCM): snapshots and the persisted data a session starts from. */
export const BULK_ENVELOPE_VERSION = 2;
/** Bytes a version-2 envelope adds to its plaintext. */
export const BULK_ENVELOPE_OVERHEAD = 1 + 12 + 16;
/** PBKDF2 iterations for the master key. */
export const PBKDF2_ITERATIONS = 100_000;

const NONCE = nacl.secretbox.nonceLength;
const utf8 = new TextEncoder();

/** An envelope did not open: wrong key, tampered or truncated bytes, or an unknown version. */
export class DecryptionError extends LockstepError {
  override readonly name = "DecryptionError";
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) {
    throw new Error(
      "WebCrypto (crypto.subtle) is not available: browsers offer it only on secure origins (https:// or http://localhost)",
    );
  }
  return s;
}

/** Derives the 32-byte master key of a password for one persistentId (slow on purpose: PBKDF2). */
export async function deriveMasterKey(password: string, persistentId: string, iterations = PBKDF2_ITERATIONS): Promise<Uint8Array> {
  return pbkdf2(password, `lockstep/v1/salt/${persistentId}`, iterations);
}

/**
 * Recent PBKDF2 results, by what they were derived from. Joining the same session again in the
 * same runtime (another tab's worth of views in one page, a rejoin after `leave()`, tests running
 * many clients) costs the slow derivation once. Bounded: the oldest result is forgotten first.
 */
const derived = new Map<string, Promise<Uint8Array>>();
const MAX_DERIVED = 8;

async function pbkdf2(password: string, saltText: string, iterations: number): Promise<Uint8Array> {
  const key = `${iterations}\u0000${saltText}\u0000${password}`;
  let result = derived.get(key);
  if (result === undefined) {
    result = derivePbkdf2(password, saltText, iterations);
    derived.set(key, result);
    if (derived.size > MAX_DERIVED) derived.delete(derived.keys().next().value as string);
    result.catch(() => derived.delete(key));
  }
  return (await result).slice();
}

async function derivePbkdf2(password: string, saltText: string, iterations: number): Promise<Uint8Array> {
  const s = subtle();
  const salt = await s.digest("SHA-256", utf8.encode(saltText));
  const base = await s.importKey("raw", utf8.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await s.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, base, 256);
  return new Uint8Array(bits);
}

/** Derives a 32-byte subkey of the master key for `info` (HKDF-SHA-256). */
export async function deriveSubkey(master: Uint8Array, info: string): Promise<Uint8Array> {
  const s = subtle();
  const base = await s.importKey("raw", master as Uint8Array<ArrayBuffer>, "HKDF", false, ["deriveBits"]);
  const bits = await s.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: utf8.encode(info) }, base, 256);
  return new Uint8Array(bits);
}

/** Fills a byte array with cryptographically secure random bytes (`crypto.getRandomValues`). */
export type RandomSource = (into: Uint8Array) => void;

const systemRandom: RandomSource = (into) => void globalThis.crypto.getRandomValues(into);

/**
 * Random bytes for nonces, cut from a pooled buffer that one `getRandomValues` call refills once
 * it is used up: every publish seals an envelope, and one system call per 24-byte nonce cost about
 * a third of sealing a small payload. Bytes handed out are never handed out again (an offset only
 * moves forward; a refill replaces the whole buffer). Nonces are public, so holding unused ones in
 * memory reveals nothing.
 */
export class NoncePool {
  readonly #random: RandomSource;
  readonly #pool: Uint8Array;
  #offset: number;

  /**
   * @param bytes size of the pool (at most 65,536: one `getRandomValues` call); the default holds 512 nonces.
   * @param random where the bytes come from (tests count refills).
   */
  constructor(bytes = 512 * NONCE, random: RandomSource = systemRandom) {
    if (!Number.isInteger(bytes) || bytes < NONCE || bytes > 65_536) throw new RangeError(`a nonce pool holds ${NONCE} to 65536 bytes, not ${bytes}`);
    this.#random = random;
    this.#pool = new Uint8Array(bytes);
    this.#offset = bytes; // empty: the first take fills it
  }

  /** Writes the next `into.length` unused random bytes into `into` (at most the pool's size). */
  take(into: Uint8Array): void {
    const n = into.length;
    if (n > this.#pool.length) throw new RangeError(`cannot take ${n} bytes from a pool of ${this.#pool.length}`);
    if (this.#offset + n > this.#pool.length) {
      // What is left over is dropped, never reused.
      this.#random(this.#pool);
      this.#offset = 0;
    }
    into.set(this.#pool.subarray(this.#offset, this.#offset + n));
    this.#offset += n;
  }
}

/**
 * The nonces {@link seal} uses unless given a pool: one per runtime, like the system's random
 * source it is cut from (it holds nothing of any session, so every session may share it).
 */
let sharedNonces: NoncePool | undefined;

/**
 * tweetnacl's low-level secretbox works on a plaintext after 32 zero bytes and a box after 16
 * (NaCl's layout). Its convenience API allocates two such buffers per call and copies into them in
 * a JS loop; these are reused instead (seal and open are synchronous, so calls never interleave),
 * and cleared after each use. Measured on 80-byte payloads: open 2.5 µs against 3.0-3.4. Larger
 * payloads get buffers of their own.
 */
const SCRATCH_MAX = 16 * 1024;
const ZEROS = 32;
const BOX_ZEROS = 16;
/** tweetnacl's low-level calls (in its runtime API, not in its type definitions); 0 on success. */
interface NaclLowLevel {
  crypto_secretbox(c: Uint8Array, m: Uint8Array, d: number, n: Uint8Array, k: Uint8Array): number;
  crypto_secretbox_open(m: Uint8Array, c: Uint8Array, d: number, n: Uint8Array, k: Uint8Array): number;
}
const lowlevel = (nacl as unknown as { readonly lowlevel: NaclLowLevel }).lowlevel;
let scratchA = new Uint8Array(1024);
let scratchB = new Uint8Array(1024);

/** Two buffers of at least `n` bytes for the low-level calls. */
function scratch(n: number): [Uint8Array, Uint8Array] {
  if (n > SCRATCH_MAX) return [new Uint8Array(n), new Uint8Array(n)];
  if (scratchA.length < n) {
    scratchA = new Uint8Array(SCRATCH_MAX);
    scratchB = new Uint8Array(SCRATCH_MAX);
  }
  return [scratchA, scratchB];
}

function checkBoxKey(key: Uint8Array): void {
  if (key.length !== nacl.secretbox.keyLength) throw new TypeError(`a secretbox key is ${nacl.secretbox.keyLength} bytes, not ${key.length}`);
}

/**
 * Encrypts and authenticates `plaintext` under `key` with a fresh random nonce (a version-1
 * envelope). Synchronous: for what is sealed per event, and what model code opens.
 */
export function seal(key: Uint8Array, plaintext: Uint8Array, nonces: NoncePool = (sharedNonces ??= new NoncePool())): Uint8Array {
  checkBoxKey(key);
  const n = ZEROS + plaintext.length;
  const [m, c] = scratch(n);
  m.fill(0, 0, ZEROS);
  m.set(plaintext, ZEROS);
  const out = new Uint8Array(1 + NONCE + BOX_ZEROS + plaintext.length);
  out[0] = ENVELOPE_VERSION;
  const nonce = out.subarray(1, 1 + NONCE);
  nonces.take(nonce);
  lowlevel.crypto_secretbox(c, m, n, nonce, key);
  out.set(c.subarray(BOX_ZEROS, n), 1 + NONCE);
  m.fill(0, ZEROS, n);
  return out;
}

/** Opens an envelope made by {@link seal}; throws {@link DecryptionError} unless it is intact and ours. */
export function open(key: Uint8Array, envelope: Uint8Array): Uint8Array {
  if (envelope.length > 0 && envelope[0] !== ENVELOPE_VERSION) throw new DecryptionError(`unknown envelope version ${envelope[0]}`);
  if (envelope.length < ENVELOPE_OVERHEAD) throw new DecryptionError(`envelope of ${envelope.length} bytes is too short`);
  checkBoxKey(key);
  const n = BOX_ZEROS + envelope.length - 1 - NONCE;
  const [c, m] = scratch(n);
  c.fill(0, 0, BOX_ZEROS);
  c.set(envelope.subarray(1 + NONCE), BOX_ZEROS);
  if (lowlevel.crypto_secretbox_open(m, c, n, envelope.subarray(1, 1 + NONCE), key) !== 0) {
    throw new DecryptionError("envelope failed authentication (wrong key, or tampered)");
  }
  const plain = m.slice(ZEROS, n);
  m.fill(0, 0, n);
  return plain;
}

/**
 * The keys of one kind of bulk data (a session's snapshots, a persistence slot's data): the
 * version-2 key that seals it, and the version-1 key that opens what earlier releases stored.
 */
export interface BulkKey {
  /** The version-1 (secretbox) key of the purpose. */
  readonly box: Uint8Array;
  /** The version-2 (AES-256-GCM) key: derived separately, non-extractable. */
  readonly aes: CryptoKey;
}

const IV = 12;
/** Version 2 authenticates its header's version byte as additional data. */
const BULK_AAD = new Uint8Array([BULK_ENVELOPE_VERSION]);

/**
 * Encrypts and authenticates bulk data as a version-2 envelope (AES-256-GCM, WebCrypto: native,
 * off the main thread where the runtime can). The 96-bit IV is random, which is safe for up to
 * 2^32 envelopes per key (NIST SP 800-38D); a key seals few: one per snapshot of a session, or
 * one per save of a slot.
 */
export async function sealBulk(key: BulkKey, plaintext: Uint8Array): Promise<Uint8Array> {
  const iv = new Uint8Array(IV);
  globalThis.crypto.getRandomValues(iv);
  const sealed = await subtle().encrypt({ name: "AES-GCM", iv, additionalData: BULK_AAD, tagLength: 128 }, key.aes, plaintext as Uint8Array<ArrayBuffer>);
  const out = new Uint8Array(1 + IV + sealed.byteLength);
  out[0] = BULK_ENVELOPE_VERSION;
  out.set(iv, 1);
  out.set(new Uint8Array(sealed), 1 + IV);
  return out;
}

/**
 * Opens bulk data: a version-2 envelope made by {@link sealBulk}, or a version-1 envelope (stored
 * by an earlier release) under the purpose's version-1 key.
 * @throws {DecryptionError} unless it is intact and ours (wrong key, tampered, truncated, unknown version).
 */
export async function openBulk(key: BulkKey, envelope: Uint8Array): Promise<Uint8Array> {
  if (envelope[0] === ENVELOPE_VERSION || envelope.length === 0) return open(key.box, envelope);
  if (envelope[0] !== BULK_ENVELOPE_VERSION) throw new DecryptionError(`unknown envelope version ${envelope[0]}`);
  if (envelope.length < BULK_ENVELOPE_OVERHEAD) throw new DecryptionError(`envelope of ${envelope.length} bytes is too short`);
  const iv = envelope.subarray(1, 1 + IV) as Uint8Array<ArrayBuffer>;
  const sealed = envelope.subarray(1 + IV) as Uint8Array<ArrayBuffer>;
  let plain: ArrayBuffer;
  try {
    plain = await subtle().decrypt({ name: "AES-GCM", iv, additionalData: BULK_AAD, tagLength: 128 }, key.aes, sealed);
  } catch (cause) {
    throw new DecryptionError("envelope failed authentication (wrong key, or tampered)", { cause });
  }
  return new Uint8Array(plain);
}

/** Derives the non-extractable AES-256-GCM key of `master` for `info` (HKDF-SHA-256), for {@link sealBulk}. */
export async function deriveBulkKey(master: Uint8Array, info: string): Promise<CryptoKey> {
  const s = subtle();
  const base = await s.importKey("raw", master as Uint8Array<ArrayBuffer>, "HKDF", false, ["deriveKey"]);
  return s.deriveKey({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: utf8.encode(info) }, base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** SHA-256 of bytes. */
export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/** The keys of one client in one session, derived once at join. Kept in memory only. */
export interface SessionKeys {
  /**
   * The id the reflector knows the session by (Join and Sync `sessionId`): base64url of a subkey
   * of the password's master key, so that without the password nobody can name, create or occupy
   * the session honest clients use. Not a key; the public `session.id` stays the sessionId.
   */
  readonly wireSessionId: string;
  /** Relayed message payloads of this session. */
  readonly message: Uint8Array;
  /** View data of view-joins in this session. */
  readonly viewData: Uint8Array;
  /** The password check token of this session. */
  readonly check: Uint8Array;
  /** Snapshots of this session (bulk data: sealed as version 2, version 1 still opens). */
  readonly snapshot: BulkKey;
  /** Keys the snapshot hashes clients vote with (the reflector compares them but cannot test guesses). */
  readonly snapshotHash: Uint8Array;
  /** Proof of key possession shown to the reflector (it stores only SHA-256 of it). */
  readonly accessToken: Uint8Array;
  /** SHA-256 of the access token: what the session's first client registers with the reflector. */
  readonly verifier: Uint8Array;
  /** Master of the persistentId's persistence slot keys (independent of the sessionId, so every code version shares it). */
  readonly persistMaster: Uint8Array;
}

/** Derives every key a client needs in a session. */
export async function deriveSessionKeys(password: string, persistentId: string, sessionId: string): Promise<SessionKeys> {
  const master = await deriveMasterKey(password, persistentId);
  const [wireId, message, viewData, check, accessToken, snapshot, snapshotAes, snapshotHash, persistMaster] = await Promise.all([
    deriveSubkey(master, `lockstep/v2/session-id/${sessionId}`),
    deriveSubkey(master, `lockstep/v1/message/${sessionId}`),
    deriveSubkey(master, `lockstep/v1/view-data/${sessionId}`),
    deriveSubkey(master, `lockstep/v1/check/${sessionId}`),
    deriveSubkey(master, `lockstep/v1/access/${sessionId}`),
    deriveSubkey(master, `lockstep/v1/snapshot/${sessionId}`),
    deriveBulkKey(master, `lockstep/v2/snapshot-aes/${sessionId}`),
    deriveSubkey(master, `lockstep/v1/snapshot-hash/${sessionId}`),
    deriveSubkey(master, "lockstep/v1/persist"),
  ]);
  master.fill(0);
  return {
    wireSessionId: toBase64Url(wireId),
    message,
    viewData,
    check,
    accessToken,
    snapshot: { box: snapshot, aes: snapshotAes },
    snapshotHash,
    persistMaster,
    verifier: await sha256(accessToken),
  };
}

/** HMAC-SHA-256 of `bytes` under `key` (a keyed hash: equal states give equal hashes only under the same key). */
export async function hmac(key: Uint8Array, bytes: Uint8Array): Promise<Uint8Array> {
  const s = subtle();
  const k = await s.importKey("raw", key as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await s.sign("HMAC", k, bytes as Uint8Array<ArrayBuffer>));
}

const HMAC_BLOCK = 128;

/**
 * HMAC-SHA-512 of `data` under `key`, computed synchronously (tweetnacl's SHA-512), so model code
 * and stream processing can derive slot names and keys without awaiting WebCrypto.
 */
export function hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array {
  const k = key.length > HMAC_BLOCK ? nacl.hash(key) : key;
  const block = new Uint8Array(HMAC_BLOCK);
  block.set(k);
  const inner = new Uint8Array(HMAC_BLOCK + data.length);
  const outer = new Uint8Array(HMAC_BLOCK + 64);
  for (let i = 0; i < HMAC_BLOCK; i++) {
    inner[i] = block[i]! ^ 0x36;
    outer[i] = block[i]! ^ 0x5c;
  }
  inner.set(data, HMAC_BLOCK);
  outer.set(nacl.hash(inner), HMAC_BLOCK);
  return nacl.hash(outer);
}

/** A 32-byte key or id derived from `master` for `purpose` (HMAC-SHA-512, truncated). */
export function derive32(master: Uint8Array, purpose: string): Uint8Array {
  return hmacSha512(master, utf8.encode(purpose)).subarray(0, 32);
}

/** The keys of one persistence slot (PROTOCOL.md §13.1). */
export interface SlotKeys {
  /** Encrypts the slot's data. */
  readonly enc: Uint8Array;
  /** Shown to the reflector, which keeps SHA-256 of the first one a slot sees. */
  readonly token: Uint8Array;
  /** Keys the hash that lets the reflector skip storing identical data. */
  readonly hashKey: Uint8Array;
}

/** Derives a slot's keys from a persistence master key (synchronous). */
export function slotKeys(persistMaster: Uint8Array, slot: string): SlotKeys {
  return {
    enc: derive32(persistMaster, `lockstep/v1/persist/enc/${slot}`),
    token: derive32(persistMaster, `lockstep/v1/persist/access/${slot}`),
    hashKey: derive32(persistMaster, `lockstep/v1/persist/hash/${slot}`),
  };
}

/**
 * The bulk key of a slot whose data is opened outside the VM (the base slot a session starts
 * from): `box` is the slot's version-1 `enc` key; the version-2 key is derived from the same
 * master with its own purpose and imported as a non-extractable CryptoKey (its bytes are wiped).
 */
export async function slotBulkKey(master: Uint8Array, slot: string, box: Uint8Array): Promise<BulkKey> {
  const bytes = hmacSha512(master, utf8.encode(`lockstep/v2/persist/enc-aes/${slot}`));
  try {
    const aes = await subtle().importKey("raw", bytes.subarray(0, 32) as Uint8Array<ArrayBuffer>, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    return { box, aes };
  } finally {
    bytes.fill(0);
  }
}

/**
 * The persistence master of a password for a whole app: the keys of its global and keyed slots,
 * shared by every session name of the appId (PBKDF2 with an appId salt).
 */
export async function deriveAppPersistMaster(password: string, appId: string): Promise<Uint8Array> {
  const master = await pbkdf2(password, `lockstep/v1/app-salt/${appId}`, PBKDF2_ITERATIONS);
  const persist = await deriveSubkey(master, "lockstep/v1/persist");
  master.fill(0);
  return persist;
}
