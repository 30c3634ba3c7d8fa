import { MAX_APP_TOKEN_BYTES, MessageType, encodeClientMessage, encodeJoinAuth, type SyncMessage, type Timers } from "@lockstep/protocol";
import { joinAuth, passwordMatches, wrongPassword } from "./admission";
import type { SocketFactory } from "./connection";
import { freezeConstants } from "../kernel/constants";
import { deriveSessionKeys, seal, type SessionKeys } from "./crypto";
import { JoinError, SessionError } from "../errors";
import { computeIdentity, type SessionIdentity } from "../kernel/identity";
import type { ModelClass } from "../kernel/model";
import { PayloadCodec } from "./payload";
import { logIdentityInputs } from "./identity-log";
import { registry } from "../kernel/registry";
import type { SessionUi } from "./ui";
import type { OfflineQueueLimits } from "./publisher";
import type { View } from "../view/view";

/**
 * An app token for reflectors that admit only clients the app's backend vouches for (a JWT), or
 * a function that fetches one: it is called again before every connect, so it can renew a token
 * that expired.
 */
export type AppToken = string | (() => string | Promise<string>);

/** Validated `Session.join` parameters. */
export interface JoinParameters {
  readonly appId: string;
  readonly name: string;
  readonly password: string;
  readonly model: ModelClass;
  readonly view: new (model: any, viewOptions?: any) => View;
  readonly options: Record<string, unknown>;
  readonly viewOptions: unknown;
  readonly viewData: unknown;
  readonly tps: number;
  /** Local ticks per reflector tick (`tps: "10x3"` → 3; absent or 1: none). */
  readonly tickMultiplier?: number;
  readonly step: "auto" | "manual";
  readonly debug: ReadonlySet<string>;
  /**
   * The reflector's WebSocket URL, or several (nodes of a cluster) separated by commas or
   * whitespace; an array of URLs is accepted too (see `reflectorList`).
   */
  readonly reflector: string;
  readonly socket: SocketFactory;
  /** How long a socket may take to open before the next URL is tried, in ms (default `OPEN_TIMEOUT_MS`, 4 s). */
  readonly openTimeoutMs?: number;
  /** The local clock and timers (`Session.join({ timers, clock })`; tests drive a manual clock). */
  readonly timers: Timers;
  readonly progressReporter: ((progress: number) => void) | undefined;
  /** Seconds a hidden page stays connected (0: never sleeps). */
  readonly autoSleep: number;
  /** The page's widgets (spinner, badge, toasts), if there is a page. */
  readonly ui: SessionUi | undefined;
  /** The app token (or how to get one), if the reflector wants one. */
  readonly token: AppToken | undefined;
  /** Bounds of the events kept while not connected, or false: dropped. */
  readonly offline: OfflineQueueLimits | false;
}

/**
 * Computes the session's ids and this client's keys for it (slow on purpose: PBKDF2). With
 * `?debug=session` it logs them, the wire id the reflector knows the session by included.
 */
export async function identify(p: JoinParameters, viewId: string): Promise<{ identity: SessionIdentity; keys: SessionKeys }> {
  const constantsHash = await freezeConstants();
  const identity = await computeIdentity({ appId: p.appId, name: p.name, options: p.options, registry, constantsHash });
  await logIdentityInputs(p.debug, { appId: p.appId, name: p.name, options: p.options, registry, constantsHash }, identity);
  const keys = await deriveSessionKeys(p.password, identity.persistentId, identity.sessionId);
  if (p.debug.has("session")) {
    const { sessionId, persistentId, versionId } = identity;
    console.log(`[Lockstep] Joining session (sessionId: ${sessionId}, persistentId: ${persistentId}, versionId: ${versionId}, viewId: ${viewId}, reflectorId: ${keys.wireSessionId})`);
  }
  return { identity, keys };
}

/**
 * The Join frames of a session's connections. Everything but the app token is the same for the
 * first join and every rejoin, and is made once (the check envelope and the sealed view data
 * would differ per encoding: random nonces); a token function is called again for each.
 * @param slot the persistence slot a new session starts from, and its access token.
 * @returns a function giving the next Join frame; it throws a {@link JoinError} if the token
 *   function fails or gives no usable token.
 */
export function joinFrames(
  p: JoinParameters,
  identity: SessionIdentity,
  keys: SessionKeys,
  viewId: string,
  slot: { slot: string; token: Uint8Array },
): (resumeSeq: number) => Promise<Uint8Array> {
  const auth = joinAuth(keys, identity.sessionId, slot);
  const viewData = p.viewData === undefined ? new Uint8Array(0) : seal(keys.viewData, new PayloadCodec(registry, () => undefined).encodeViewData(p.viewData));
  return async (resumeSeq) => {
    // With a token, the reflector checks its claims against these names (and the persistentId).
    const app = p.token === undefined ? {} : { appToken: await fetchToken(p.token), appId: p.appId, name: p.name };
    return encodeClientMessage({
      type: MessageType.Join,
      sessionId: keys.wireSessionId,
      persistentId: identity.persistentId,
      viewId,
      tps: p.tps,
      auth: encodeJoinAuth({ ...auth, ...app }),
      viewData,
      resumeSeq,
    });
  };
}

/** The first join could not open a socket to any of `reflectors`. */
export function unreachable(reflectors: readonly string[], cause: unknown): JoinError {
  const where = reflectors.length === 1 ? `the Lockstep reflector at ${reflectors[0]}: is it running?` : `any of the Lockstep reflectors at ${reflectors.join(", ")}: are they running?`;
  const why = cause instanceof Error ? ` (${cause.message})` : "";
  return new JoinError(`cannot reach ${where}${why} (\`npm start\` runs one on ws://127.0.0.1:8787/; pass another with Session.join({ reflector }))`, { cause });
}

const utf8 = new TextEncoder();

/**
 * The app token for the next connection: the string given, or what the function gives now.
 * @throws {JoinError} saying what is wrong with it.
 */
async function fetchToken(token: AppToken): Promise<string> {
  let value: unknown;
  try {
    value = typeof token === "function" ? await token() : token;
  } catch (cause) {
    throw new JoinError(`Session.join({ token }): the token function failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
  if (typeof value !== "string" || value.length === 0) {
    throw new JoinError(`Session.join({ token }): the token function must return (or resolve to) a non-empty string, got ${value === "" ? "an empty string" : typeof value}`);
  }
  if (utf8.encode(value).length > MAX_APP_TOKEN_BYTES) {
    throw new JoinError(`Session.join({ token }): the app token is ${utf8.encode(value).length} bytes; the reflector accepts at most ${MAX_APP_TOKEN_BYTES}`);
  }
  return value;
}

/**
 * Checks that a Sync answers this client's Join: the same session (its wire id) and view, and a
 * password check envelope that opens under this client's key. The reflector admitted the Join
 * already; checking again here protects against a reflector that admits it wrongly (PROTOCOL.md §10.3).
 * @param sessionId the public sessionId (the check envelope's text names it).
 * @throws {SessionError} for another session or view; a `JoinError` for a check that does not open.
 */
export function checkSyncAnswer(
  sync: Pick<SyncMessage, "sessionId" | "viewId" | "auth">,
  p: Pick<JoinParameters, "name" | "appId">,
  sessionId: string,
  viewId: string,
  keys: Pick<SessionKeys, "wireSessionId" | "check">,
): void {
  const expected = keys.wireSessionId;
  if (sync.sessionId !== expected || sync.viewId !== viewId) {
    throw new SessionError(`reflector answered for session ${sync.sessionId}/${sync.viewId}, expected ${expected}/${viewId}`);
  }
  if (!passwordMatches(keys, sessionId, sync.auth)) {
    throw wrongPassword(p.name, p.appId, sessionId, new Error("the session's check token does not open with this password"));
  }
}
