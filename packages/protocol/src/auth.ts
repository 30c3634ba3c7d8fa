import { CloseCode } from "./codes";
import { Reader, Writer } from "./encoding";
import { ProtocolError } from "./errors";
import { isValidId } from "./ids";

/** Longest persistence slot name in a JoinAuth. */
const MAX_SLOT_BYTES = 64;

/** Version byte of the {@link JoinAuth} layout a client writes into a Join's `auth` field (1 and 2 are still read). */
export const JOIN_AUTH_VERSION = 3;
/** Longest app token (a JWT in compact form) a JoinAuth may carry, in bytes. */
export const MAX_APP_TOKEN_BYTES = 3072;
/** Longest appId or session name a JoinAuth may carry (with an app token), in bytes. */
export const MAX_APP_NAME_BYTES = 256;
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
  /**
   * The persistence slot whose latest data a new session starts from (usually the persistentId),
   * or empty for none. Only the Join that creates the session uses it.
   */
  readonly slot: string;
  /** The slot's access token (32 bytes, or empty with no slot): checked against the slot's verifier. */
  readonly slotToken: Uint8Array;
  /**
   * A token the app's backend signed (a JWT), for reflectors that admit only such clients
   * (PROTOCOL.md §14), or empty. Version 3 only.
   */
  readonly appToken: string;
  /** With an app token: the appId and session name, so the reflector can check the token's claims against the Join's persistentId. Else empty. */
  readonly appId: string;
  readonly name: string;
}

/** What {@link encodeJoinAuth} takes: a {@link JoinAuth} whose app-token fields may be left out (empty). */
export type JoinAuthInput = Omit<JoinAuth, "appToken" | "appId" | "name"> & Partial<Pick<JoinAuth, "appToken" | "appId" | "name">>;

/**
 * Encodes a {@link JoinAuth} as `[version 3][bytes token][bytes verifier][bytes check][string slot]
 * [bytes slotToken][string appToken][string appId][string name]`.
 */
export function encodeJoinAuth(input: JoinAuthInput): Uint8Array {
  const auth: JoinAuth = { appToken: "", appId: "", name: "", ...input };
  const w = new Writer(32 + ACCESS_TOKEN_BYTES * 3 + auth.check.length + (auth.slot.length + auth.appToken.length + auth.appId.length + auth.name.length) * 3);
  w.u8(JOIN_AUTH_VERSION);
  w.bytes(auth.token);
  w.bytes(auth.verifier);
  w.bytes(auth.check);
  w.string(auth.slot);
  w.bytes(auth.slotToken);
  w.string(auth.appToken);
  w.string(auth.appId);
  w.string(auth.name);
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
    if (version < 1 || version > 3) throw new ProtocolError(`join auth version ${version} is not supported`);
    const token = r.bytes(ACCESS_TOKEN_BYTES);
    const verifier = r.bytes(ACCESS_TOKEN_BYTES);
    const check = r.bytes(MAX_CHECK_BYTES);
    // Version 1 predates persistence: such a client declares no slot.
    const slot = version === 1 ? "" : r.string(MAX_SLOT_BYTES);
    const slotToken = version === 1 ? new Uint8Array(0) : r.bytes(ACCESS_TOKEN_BYTES);
    // Version 3 adds the app token and, with it, the names its claims are checked against.
    const appToken = version < 3 ? "" : r.string(MAX_APP_TOKEN_BYTES);
    const appId = version < 3 ? "" : r.string(MAX_APP_NAME_BYTES);
    const name = version < 3 ? "" : r.string(MAX_APP_NAME_BYTES);
    r.end();
    if (token.length !== ACCESS_TOKEN_BYTES || verifier.length !== ACCESS_TOKEN_BYTES || check.length === 0) {
      throw new ProtocolError(`join auth needs a ${ACCESS_TOKEN_BYTES}-byte token and verifier and a check envelope`);
    }
    if (slot !== "" && (!isValidId(slot, MAX_SLOT_BYTES) || slotToken.length !== ACCESS_TOKEN_BYTES)) {
      throw new ProtocolError(`join auth slot must be a base64url id with a ${ACCESS_TOKEN_BYTES}-byte token`);
    }
    if (appToken === "" && (appId !== "" || name !== "")) throw new ProtocolError("join auth names an appId or session name without an app token");
    return { token, verifier, check, slot, slotToken, appToken, appId, name };
  } catch (error) {
    if (error instanceof ProtocolError && error.code === CloseCode.AuthFailed) throw error;
    throw new ProtocolError(`malformed join auth: ${(error as Error).message}`, CloseCode.AuthFailed, { cause: error });
  }
}
