import { MessageType, encodeClientMessage, type SyncMessage } from "@lockstep/protocol";
import { joinAuth, passwordMatches, wrongPassword } from "./admission";
import type { SocketFactory } from "./connection";
import { open, seal, type SessionKeys } from "./crypto";
import { SessionError } from "./errors";
import type { SessionIdentity } from "./identity";
import type { Model, ModelClass } from "./model";
import { PayloadCodec } from "./payload";
import { Persister } from "./persister";
import { registry } from "./registry";
import type { SessionUi } from "./session-ui";
import type { View } from "./view";
import type { VirtualMachine, VMHost } from "./vm";

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
  readonly payloads: PayloadCodec;
  readonly persister: Persister;
  /** The host of every VM this session boots (one per Sync). */
  readonly host: VMHost;
  /** The Join frame: the same for the first join and every rejoin. */
  readonly joinFrame: Uint8Array;
}

/**
 * Builds what a session needs before it connects, once its identity and keys are known: the
 * payload codec, the persister (prepared: its slot token goes into the Join), the VMs' host and
 * the Join frame.
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
    decodeEvent: (payload) => payloads.decodeEvent(open(keys.message, payload)),
    // Empty view data was never encrypted: the client joined without any.
    decodeViewData: (bytes) => (bytes.length === 0 ? undefined : payloads.decodeViewData(open(keys.viewData, bytes))),
    modelEvent: hooks.modelEvent,
    reportError: hooks.reportError,
  };
  const joinFrame = encodeClientMessage({
    type: MessageType.Join,
    sessionId: identity.sessionId,
    persistentId: identity.persistentId,
    viewId,
    tps: p.tps,
    auth: joinAuth(keys, identity.sessionId, persister.joinSlot()),
    viewData: p.viewData === undefined ? new Uint8Array(0) : seal(keys.viewData, payloads.encodeViewData(p.viewData)),
  });
  return { payloads, persister, host, joinFrame };
}

/**
 * Checks that a Sync answers this client's Join: the same session and view, and a password check
 * envelope that opens under this client's key. The reflector admitted the Join already; checking
 * again here protects against a reflector that admits it wrongly (PROTOCOL.md §10.3).
 * @throws {SessionError} for another session or view; a `JoinError` for a wrong password.
 */
export function checkSyncAnswer(
  sync: Pick<SyncMessage, "sessionId" | "viewId" | "auth">,
  p: Pick<JoinParameters, "name" | "appId">,
  sessionId: string,
  viewId: string,
  keys: SessionKeys,
): void {
  if (sync.sessionId !== sessionId || sync.viewId !== viewId) {
    throw new SessionError(`reflector answered for session ${sync.sessionId}/${sync.viewId}, expected ${sessionId}/${viewId}`);
  }
  if (!passwordMatches(keys, sessionId, sync.auth)) {
    throw wrongPassword(p.name, p.appId, sessionId, new Error("the session's check token does not open with this password"));
  }
}
