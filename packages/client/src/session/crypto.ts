import nacl from "tweetnacl";
import { LockstepError, toBase64Url } from "@lockstep/protocol";

/**
 * End-to-end encryption of everything a session says. One envelope format for every purpose:
 *
 *   [version = 1][24-byte random nonce][XSalsa20-Poly1305 secretbox: 16-byte tag + ciphertext]
 *
 * Keys: PBKDF2-SHA-256(password, salt = SHA-256("lockstep/v1/salt/" + persistentId)) gives a
 * 32-byte master key once per join; HKDF-SHA-256 derives one subkey per purpose (and, where the
 * data belongs to one session only, per sessionId), so an envelope made for one purpose or session
 * never opens as another. The ids the reflector sees (the session's wire id, its persistence
 * slot) are derived from the same master, so nobody without the password can compute them.
 */

/** Version byte of the envelope. */
export const ENVELOPE_VERSION = 1;
/** Bytes an envelope adds to its plaintext. */
export const ENVELOPE_OVERHEAD = 1 + nacl.secretbox.nonceLength + nacl.secretbox.overheadLength;
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

/** Encrypts and authenticates `plaintext` under `key` with a fresh random nonce. */
export function seal(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE));
  const box = nacl.secretbox(plaintext, nonce, key);
  const out = new Uint8Array(1 + NONCE + box.length);
  out[0] = ENVELOPE_VERSION;
  out.set(nonce, 1);
  out.set(box, 1 + NONCE);
  return out;
}

/** Opens an envelope made by {@link seal}; throws {@link DecryptionError} unless it is intact and ours. */
export function open(key: Uint8Array, envelope: Uint8Array): Uint8Array {
  if (envelope.length < ENVELOPE_OVERHEAD) throw new DecryptionError(`envelope of ${envelope.length} bytes is too short`);
  if (envelope[0] !== ENVELOPE_VERSION) throw new DecryptionError(`unknown envelope version ${envelope[0]}`);
  const plain = nacl.secretbox.open(envelope.subarray(1 + NONCE), envelope.subarray(1, 1 + NONCE), key);
  if (!plain) throw new DecryptionError("envelope failed authentication (wrong key, or tampered)");
  return plain;
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
  /** Snapshots of this session. */
  readonly snapshot: Uint8Array;
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
  const [wireId, message, viewData, check, accessToken, snapshot, snapshotHash, persistMaster] = await Promise.all([
    deriveSubkey(master, `lockstep/v2/session-id/${sessionId}`),
    deriveSubkey(master, `lockstep/v1/message/${sessionId}`),
    deriveSubkey(master, `lockstep/v1/view-data/${sessionId}`),
    deriveSubkey(master, `lockstep/v1/check/${sessionId}`),
    deriveSubkey(master, `lockstep/v1/access/${sessionId}`),
    deriveSubkey(master, `lockstep/v1/snapshot/${sessionId}`),
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
    snapshot,
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
 * The persistence master of a password for a whole app: the keys of its global and keyed slots,
 * shared by every session name of the appId (PBKDF2 with an appId salt).
 */
export async function deriveAppPersistMaster(password: string, appId: string): Promise<Uint8Array> {
  const master = await pbkdf2(password, `lockstep/v1/app-salt/${appId}`, PBKDF2_ITERATIONS);
  const persist = await deriveSubkey(master, "lockstep/v1/persist");
  master.fill(0);
  return persist;
}
