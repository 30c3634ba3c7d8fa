// Hashes and random ids, as the protocol spells them (base64url).
import { createHash, randomBytes } from "node:crypto";
import { toBase64Url } from "@lockstep/protocol";

/** SHA-256 of `data`, as a Buffer. */
export const sha256 = (data) => createHash("sha256").update(data).digest();
/** SHA-256 of `text`, base64url: how a public id could be derived from public names. */
export const b64sha = (text) => toBase64Url(new Uint8Array(sha256(text)));
/** `bytes` random bytes, base64url. */
export const randomId = (bytes = 32) => toBase64Url(new Uint8Array(randomBytes(bytes)));
