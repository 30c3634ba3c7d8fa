import { CloseCode } from "./codes";
import { Reader, Writer } from "./encoding";
import { ProtocolError } from "./errors";

/** Version byte of the {@link JoinAuth} layout inside a Join's `auth` field. */
export const JOIN_AUTH_VERSION = 1;
/** Length of an access token and of its verifier (SHA-256), in bytes. */
export const ACCESS_TOKEN_BYTES = 32;
/** Largest password check envelope a client may register, in bytes. */
export const MAX_CHECK_BYTES = 256;

/**
 * What a client proves and registers when it joins (the Join frame's `auth` field). The reflector
 * admits a client into an existing session only if SHA-256(`token`) equals the `verifier` the
 * session's first client registered; it never sees the session key. `check` is an envelope the
 * first client encrypted with the session's check key; the reflector returns it in Sync so that
 * joiners can detect a wrong password themselves.
 */
export interface JoinAuth {
  /** Access token: a 32-byte key derived from the session key for this purpose only. */
  readonly token: Uint8Array;
  /** SHA-256 of the token; registered by the client that creates the session. */
  readonly verifier: Uint8Array;
  /** Password check envelope; registered by the client that creates the session. */
  readonly check: Uint8Array;
}

/** Encodes a {@link JoinAuth} as `[version][bytes token][bytes verifier][bytes check]`. */
export function encodeJoinAuth(auth: JoinAuth): Uint8Array {
  const w = new Writer(8 + ACCESS_TOKEN_BYTES * 2 + auth.check.length);
  w.u8(JOIN_AUTH_VERSION);
  w.bytes(auth.token);
  w.bytes(auth.verifier);
  w.bytes(auth.check);
  return w.finish();
}

/**
 * Decodes a Join's `auth` field.
 * @throws {ProtocolError} with code `AuthFailed` if it is missing or malformed.
 */
export function decodeJoinAuth(bytes: Uint8Array): JoinAuth {
  if (bytes.length === 0) {
    throw new ProtocolError("join carries no access token: this reflector admits only clients that prove the session key", CloseCode.AuthFailed);
  }
  try {
    const r = new Reader(bytes);
    const version = r.u8();
    if (version !== JOIN_AUTH_VERSION) throw new ProtocolError(`join auth version ${version} is not supported`);
    const token = r.bytes(ACCESS_TOKEN_BYTES);
    const verifier = r.bytes(ACCESS_TOKEN_BYTES);
    const check = r.bytes(MAX_CHECK_BYTES);
    r.end();
    if (token.length !== ACCESS_TOKEN_BYTES || verifier.length !== ACCESS_TOKEN_BYTES || check.length === 0) {
      throw new ProtocolError(`join auth needs a ${ACCESS_TOKEN_BYTES}-byte token and verifier and a check envelope`);
    }
    return { token, verifier, check };
  } catch (error) {
    if (error instanceof ProtocolError && error.code === CloseCode.AuthFailed) throw error;
    throw new ProtocolError(`malformed join auth: ${(error as Error).message}`, CloseCode.AuthFailed, { cause: error });
  }
}
