import { MAX_APP_TOKEN_BYTES, MessageType, encodeClientMessage, encodeJoinAuth, type SyncMessage } from "@lockstep/protocol";
import { joinAuth, passwordMatches, wrongPassword } from "./admission";
import type { SocketFactory } from "./connection";
import { freezeConstants } from "./constants";
import { deriveSessionKeys, open, seal, type SessionKeys } from "./crypto";
import { JoinError, SessionError } from "./errors";
import { computeIdentity, type SessionIdentity } from "./identity";
import type { Model, ModelClass } from "./model";
import { PayloadCodec, openPayload } from "./payload";
import { Persister } from "./persister";
import { Publisher } from "./publisher";
import { registry } from "./registry";
import type { SessionUi } from "./session-ui";
import type { View } from "./view";
import type { VirtualMachine, VMHost } from "./vm";

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
  readonly step: "auto" | "manual";
  readonly debug: ReadonlySet<string>;
  readonly reflector: string;
  readonly socket: SocketFactory;
  readonly clock: () => number;
  readonly progressReporter: ((progress: number) => void) | undefined;
  /** Seconds a hidden page stays connected (0: never sleeps). */
  readonly autoSleep: number;
  /** The page's widgets (spinner, badge, toasts), if there is a page. */
  readonly ui: SessionUi | undefined;
  /** The app token (or how to get one), if the reflector wants one. */
  readonly token: AppToken | undefined;
}

/** What the parts made by {@link prepareJoin} call back into their session controller. */
export interface JoinHooks {
  /** The VM once a Sync booted one. */
  vm(): VirtualMachine | undefined;
  /** A model of the running VM by id (references in relayed events); throws before the first Sync. */
  model(id: string): Model | undefined;
  send(frame: Uint8Array): void;
  /** Whether the session is joined and caught up. */
  live(): boolean;
  /** A model published an event: views may want it. */
  modelEvent(topic: string, data: unknown): void;
  reportError(context: string, error: unknown): void;
}

/** What a session is made of before it connects, built by {@link prepareJoin}. */
export interface PreparedJoin {
  readonly keys: SessionKeys;
  readonly persister: Persister;
  /** The host of every VM this session boots (one per Sync). */
  readonly host: VMHost;
  /** Turns what views publish into Send frames. */
  readonly publisher: Publisher;
  /**
   * The Join frame of the next connection: everything but the app token is the same for the
   * first join and every rejoin; a token function is called again each time.
   * @throws {JoinError} if the token function fails or gives no usable token.
   */
  joinFrame(): Promise<Uint8Array>;
}

/**
 * Computes the session's ids and this client's keys for it (slow on purpose: PBKDF2). With
 * `?debug=session` it logs them, the wire id the reflector knows the session by included.
 */
export async function identify(p: JoinParameters, viewId: string): Promise<{ identity: SessionIdentity; keys: SessionKeys }> {
  const constantsHash = await freezeConstants();
  const identity = await computeIdentity({ appId: p.appId, name: p.name, options: p.options, registry, constantsHash });
  const keys = await deriveSessionKeys(p.password, identity.persistentId, identity.sessionId);
  if (p.debug.has("session")) {
    const { sessionId, persistentId, versionId } = identity;
    console.log(`[Lockstep] Joining session (sessionId: ${sessionId}, persistentId: ${persistentId}, versionId: ${versionId}, viewId: ${viewId}, reflectorId: ${keys.wireSessionId})`);
  }
  return { identity, keys };
}

/**
 * Builds what a session needs before it connects, once its identity and keys are known: the
 * publisher, the persister (prepared: its slot token goes into the Join), the
 * VMs' host and the Join frame.
 */
export async function prepareJoin(
  p: JoinParameters,
  identity: SessionIdentity,
  keys: SessionKeys,
  viewId: string,
  hooks: JoinHooks,
): Promise<PreparedJoin> {
  const payloads = new PayloadCodec(registry, hooks.model);
  const persister = new Persister({
    appId: p.appId,
    password: p.password,
    persistentId: identity.persistentId,
    viewId,
    debug: p.debug.has("session"),
    model: p.model,
    registry,
    persistMaster: keys.persistMaster,
    send: hooks.send,
    vm: hooks.vm,
    live: hooks.live,
    reportError: hooks.reportError,
  });
  await persister.prepare();
  const host: VMHost = {
    persistence: persister,
    sessionId: identity.sessionId,
    registry,
    openPayload: (payload) => openPayload(open(keys.message, payload)),
    decodeEvent: (event) => payloads.decodeEvent(event),
    // Empty view data was never encrypted: the client joined without any.
    decodeViewData: (bytes) => (bytes.length === 0 ? undefined : payloads.decodeViewData(open(keys.viewData, bytes))),
    modelEvent: hooks.modelEvent,
    reportError: hooks.reportError,
  };
  // Prepared once: the check envelope and the sealed view data would differ per encoding (random nonces).
  const auth = joinAuth(keys, identity.sessionId, persister.joinSlot());
  const viewData = p.viewData === undefined ? new Uint8Array(0) : seal(keys.viewData, payloads.encodeViewData(p.viewData));
  const joinFrame = async (): Promise<Uint8Array> => {
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
    });
  };
  return { keys, persister, host, publisher: new Publisher(viewId, keys.message, payloads), joinFrame };
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
