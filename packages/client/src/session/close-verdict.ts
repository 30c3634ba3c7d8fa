import { CloseCode, closeCodeName } from "@lockstep/protocol";

/**
 * Close codes after which a running session rejoins by itself. Everything else (a protocol or
 * version error, a refused password or app token, this view replaced by a newer connection, a
 * session whose stored data is damaged) would only fail again: the session ends with a clear
 * error instead. Codes of passing trouble (a slow reader, a full log, an overloaded or
 * rate-limiting reflector, an expired app token) rejoin with backoff. The codes of a cluster
 * moving a session (Redirect, SessionMoved) are no trouble at all: they are followed at once, in a
 * first join as in a running session (see {@link classifyClose}).
 */
const FATAL_CODES: ReadonlySet<number> = new Set([
  CloseCode.ProtocolError,
  CloseCode.VersionMismatch,
  CloseCode.BadJoin,
  CloseCode.DuplicateView,
  CloseCode.AuthFailed,
  CloseCode.SessionDamaged,
  CloseCode.TokenRejected,
]);

/** Whether a lost connection that closed with `code` is worth rejoining. */
export function isRetryable(code: number): boolean {
  return !FATAL_CODES.has(code);
}

/** What a closed connection means for its session (see {@link classifyClose}). */
export type CloseVerdict =
  /** The reflector refused the join's password, or that of the persisted data it would start from. */
  | { readonly kind: "authFailed"; readonly detail: string }
  /** A session that was joined lost its connection for a reason worth rejoining after. */
  | { readonly kind: "rejoin"; readonly code: number; readonly detail: string }
  /** This node does not own the session: go to the node its Redirect frame named, at once (joining or joined). */
  | { readonly kind: "redirect"; readonly detail: string }
  /** The session moved off this node: reconnect at once through the next reflector URL (joining or joined). */
  | { readonly kind: "moved"; readonly detail: string }
  /** The session ends (or its first join fails) with this message and code. */
  | { readonly kind: "fatal"; readonly code: number; readonly message: string };

/** What the session was doing when its connection closed (see {@link classifyClose}). */
export interface CloseContext {
  /** The first join is still pending. */
  readonly joining: boolean;
  /** The session was joined at some point. */
  readonly joinedOnce: boolean;
  /** Whether a rejoin would present a fresh app token (a token function); default true. */
  readonly renewableToken?: boolean;
}

/**
 * Classifies a connection's close. The Error frame the reflector sent before closing, if any,
 * carries the same code and a message saying what went wrong, so the verdict is made from it.
 */
export function classifyClose(
  close: { readonly code: number; readonly reason: string },
  serverError: { readonly code: number; readonly message: string } | undefined,
  session: CloseContext,
): CloseVerdict {
  const code = serverError?.code ?? close.code;
  const detail = serverError
    ? `${serverError.message} (${closeCodeName(serverError.code) ?? serverError.code})`
    : `close code ${close.code}${close.reason ? `: ${close.reason}` : ""}`;
  // A cluster moving the session (PROTOCOL.md §17): never an error, joining or joined.
  if (code === CloseCode.Redirect) return { kind: "redirect", detail };
  if (code === CloseCode.SessionMoved) return { kind: "moved", detail };
  if (session.joining && code === CloseCode.AuthFailed) return { kind: "authFailed", detail };
  // A fixed token string that expired would be refused on every rejoin.
  const hopeless = code === CloseCode.TokenExpired && session.renewableToken === false;
  if (session.joinedOnce && isRetryable(code) && !hopeless) return { kind: "rejoin", code, detail };
  return { kind: "fatal", code, message: closeMessage(code, detail, session.renewableToken !== false) };
}

/** What a fatal close (or a refused first join) tells the app: what happened, and what to do. */
function closeMessage(code: number, detail: string, renewableToken: boolean): string {
  switch (code) {
    case CloseCode.DuplicateView:
      return "this view rejoined the session on another connection; this one stops";
    case CloseCode.SessionDamaged:
      return `the session's stored data is damaged; the reflector's operator must restore it (${detail})`;
    case CloseCode.TokenRejected:
      return `the reflector refused the app token: ${detail}. Pass Session.join({ token }) a token your app's backend issued for this appId and session name`;
    case CloseCode.TokenExpired:
      return renewableToken
        ? `the app token has expired or is not valid yet (${detail}): have the token function return a fresh token from your app's backend, then join again`
        : `the app token has expired or is not valid yet (${detail}): pass Session.join({ token }) a function that fetches a fresh token; it is called again on every reconnect`;
    case CloseCode.Overloaded:
      return `the reflector is at capacity (${detail}): join again in a moment`;
    case CloseCode.RateLimited:
      return `the reflector is rate limiting this client (${detail}): wait a moment, then join again`;
    default:
      return `connection to the reflector closed: ${detail}`;
  }
}
