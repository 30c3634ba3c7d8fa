import { CloseCode, type JoinAuthInput } from "@lockstep/protocol";
import { open, seal, type SessionKeys } from "./crypto";
import { JoinError } from "../errors";

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** The plaintext of a session's password check envelope. */
function checkText(sessionId: string): string {
  return `lockstep/v1/check/${sessionId}`;
}

/**
 * The Join's auth field but its app token: the access token that proves the key to the reflector,
 * plus the verifier and check envelope it registers if this join creates the session
 * (PROTOCOL.md §10.3), and the persistence slot a new session starts from.
 */
export function joinAuth(keys: SessionKeys, sessionId: string, persist: { slot: string; token: Uint8Array }): JoinAuthInput {
  return {
    token: keys.accessToken,
    verifier: keys.verifier,
    check: seal(keys.check, utf8.encode(checkText(sessionId))),
    slot: persist.slot,
    slotToken: persist.token,
  };
}

/** Whether the session's check envelope opens, under this client's key, to this session's text. */
export function passwordMatches(keys: Pick<SessionKeys, "check">, sessionId: string, check: Uint8Array): boolean {
  try {
    return utf8Decoder.decode(open(keys.check, check)) === checkText(sessionId);
  } catch {
    return false;
  }
}

/**
 * The error of a join the reflector answered with a session whose check does not open under this
 * password. The session's wire id is derived from the password, so a wrong password reaches a
 * different (new) session instead: this means the reflector answered for a session it should not.
 */
export function wrongPassword(name: string, appId: string, sessionId: string, cause?: unknown): JoinError {
  return new JoinError(
    `wrong password for session "${name}" of ${appId} (sessionId ${sessionId}): the reflector answered with a session whose check this password does not open. ` +
      `A wrong password normally reaches a different, new session, so the reflector is misbehaving; nothing was joined`,
    { cause, code: CloseCode.AuthFailed },
  );
}

/**
 * The error of a join the reflector refused with AuthFailed: the session's access token, or (when
 * the session would start from persisted data) the token of that data's slot. Both the session's
 * wire id and the slot name are derived from the password, so another password names other ones:
 * a refusal means the reflector's stored verifier does not match (damaged or altered storage).
 */
export function authFailure(
  session: { readonly name: string; readonly appId: string },
  identity: { readonly sessionId: string; readonly persistentId: string },
  detail: string,
): JoinError {
  const cause = new Error(detail);
  if (detail.includes("persisted data")) {
    return new JoinError(
      `wrong password for the persisted data of session "${session.name}" of ${session.appId} (persistentId ${identity.persistentId}): ` +
        `the reflector says its slot belongs to another password, although the slot's name comes from this one. Nothing was created or overwritten; ` +
        `the reflector's operator should check its storage`,
      { cause, code: CloseCode.AuthFailed },
    );
  }
  return new JoinError(
    `wrong password for session "${session.name}" of ${session.appId} (sessionId ${identity.sessionId}): the reflector refused this client's access token, ` +
      `although the session's id comes from this password. The reflector's operator should check its storage`,
    { cause, code: CloseCode.AuthFailed },
  );
}
