import { CloseCode, encodeJoinAuth } from "@lockstep/protocol";
import { open, seal, type SessionKeys } from "./crypto";
import { JoinError } from "./errors";

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** The plaintext of a session's password check envelope. */
function checkText(sessionId: string): string {
  return `lockstep/v1/check/${sessionId}`;
}

/**
 * The Join's auth field: the access token that proves the key to the reflector, plus the verifier
 * and check envelope it registers if this join creates the session (PROTOCOL.md §10.3).
 */
export function joinAuth(keys: SessionKeys, sessionId: string, persist: { slot: string; token: Uint8Array }): Uint8Array {
  return encodeJoinAuth({
    token: keys.accessToken,
    verifier: keys.verifier,
    check: seal(keys.check, utf8.encode(checkText(sessionId))),
    slot: persist.slot,
    slotToken: persist.token,
  });
}

/** Whether the session's check envelope opens, under this client's key, to this session's text. */
export function passwordMatches(keys: SessionKeys, sessionId: string, check: Uint8Array): boolean {
  try {
    return utf8Decoder.decode(open(keys.check, check)) === checkText(sessionId);
  } catch {
    return false;
  }
}

/** The error of a join whose password is not the session's. */
export function wrongPassword(name: string, appId: string, sessionId: string, cause?: unknown): JoinError {
  return new JoinError(
    `wrong password for session "${name}" of ${appId} (sessionId ${sessionId}): everyone in a session must use the same password`,
    { cause, code: CloseCode.AuthFailed },
  );
}

/**
 * The error of a join the reflector refused with AuthFailed: either the session's password, or
 * (when the session would start from persisted data) the password of that data.
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
        `join with the password its earlier sessions used; nothing was created or overwritten`,
      { cause, code: CloseCode.AuthFailed },
    );
  }
  return wrongPassword(session.name, session.appId, identity.sessionId, cause);
}
