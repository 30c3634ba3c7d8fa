import { toBase64Url } from "@lockstep/protocol";
import { DecryptionError, deriveBulkKey } from "../session/crypto";

/**
 * Encryption of Data API blobs: AES-256-GCM (WebCrypto), the bulk cipher of snapshots.
 *
 *   [0x02][12-byte random IV][ciphertext + 16-byte tag]
 *
 * The additional data binds the envelope to its place — `lockstep/v1/data/<space>/<blob>` — so a
 * reflector that serves one blob's bytes for another (or another session's) fails authentication.
 * Session-keyed blobs use a key derived from the password's persistence master (password and
 * persistentId, not the sessionId), so handles stay readable when the code changes, as Croquet's do;
 * a shareable blob has a random key of its own that travels in its handle.
 */
const VERSION = 2;
const IV = 12;
/** Bytes an envelope adds to its blob. */
export const DATA_ENVELOPE_OVERHEAD = 1 + IV + 16;

const utf8 = new TextEncoder();

function aad(space: string, blob: string): Uint8Array<ArrayBuffer> {
  return utf8.encode(`\u0002lockstep/v1/data/${space}/${blob}`);
}

/** The session-keyed blobs' key of a persistence master. */
export function sessionDataKey(persistMaster: Uint8Array): Promise<CryptoKey> {
  return deriveBulkKey(persistMaster, "lockstep/v2/data-aes");
}

/** A fresh random key for a shareable blob: the key, and its base64url form for the handle. */
export async function shareableKey(): Promise<{ key: CryptoKey; text: string }> {
  const raw = new Uint8Array(32);
  globalThis.crypto.getRandomValues(raw);
  const key = await importRaw(raw);
  const text = toBase64Url(raw);
  raw.fill(0);
  return { key, text };
}

/** The key a shareable handle carries. */
export function importShareableKey(text: string): Promise<CryptoKey> {
  const raw = fromBase64Url(text);
  if (raw.length !== 32) throw new DecryptionError("the handle's key is not 32 bytes");
  return importRaw(raw);
}

function importRaw(raw: Uint8Array): Promise<CryptoKey> {
  return globalThis.crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** Encrypts blob `blob` of `space`. */
export async function sealData(key: CryptoKey, space: string, blob: string, plain: Uint8Array): Promise<Uint8Array> {
  const iv = new Uint8Array(IV);
  globalThis.crypto.getRandomValues(iv);
  const sealed = await globalThis.crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad(space, blob), tagLength: 128 }, key, plain as Uint8Array<ArrayBuffer>);
  const out = new Uint8Array(1 + IV + sealed.byteLength);
  out[0] = VERSION;
  out.set(iv, 1);
  out.set(new Uint8Array(sealed), 1 + IV);
  return out;
}

/**
 * Opens blob `blob` of `space`.
 * @throws {DecryptionError} unless it is intact, ours, and this very blob (wrong key, tampered, truncated, moved).
 */
export async function openData(key: CryptoKey, space: string, blob: string, envelope: Uint8Array): Promise<ArrayBuffer> {
  if (envelope.length < DATA_ENVELOPE_OVERHEAD) throw new DecryptionError(`data blob ${blob}: ${envelope.length} bytes is too short to be an envelope`);
  if (envelope[0] !== VERSION) throw new DecryptionError(`data blob ${blob}: unknown envelope version ${envelope[0]}`);
  try {
    return await globalThis.crypto.subtle.decrypt(
      { name: "AES-GCM", iv: envelope.subarray(1, 1 + IV) as Uint8Array<ArrayBuffer>, additionalData: aad(space, blob), tagLength: 128 },
      key,
      envelope.subarray(1 + IV) as Uint8Array<ArrayBuffer>,
    );
  } catch (cause) {
    throw new DecryptionError(`data blob ${blob} failed authentication: stored under another password, or altered in storage or transit; its bytes were not returned`, { cause });
  }
}

/** A random blob id: 16 bytes, base64url (22 characters). */
export function newBlobId(): string {
  const raw = new Uint8Array(16);
  globalThis.crypto.getRandomValues(raw);
  return toBase64Url(raw);
}

function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
