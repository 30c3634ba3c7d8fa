import {
  DEFAULT_LIMITS,
  MessageType,
  closeCodeName,
  CloseCode,
  encodeClientMessage,
  encodeSend,
  toBase64Url,
  type ServerMessage,
  type SyncMessage,
} from "@lockstep/protocol";
import { freezeConstants } from "./constants";
import { authFailure, joinAuth, passwordMatches, wrongPassword } from "./admission";
import { Connection, type SocketFactory } from "./connection";
import { startFrameLoop } from "./frame-loop";
import { deriveSessionKeys, open, seal, type SessionKeys } from "./crypto";
import { SessionReporter } from "./reporter";
import { JoinError, SessionError, UsageError } from "./errors";
import { computeIdentity, type SessionIdentity } from "./identity";
import type { Model, ModelClass } from "./model";
import { PayloadCodec } from "./payload";
import { registry } from "./registry";
import { bootVM, serializeVM } from "./boot";
import { Snapshotter } from "./snapshotter";
import { Persister } from "./persister";
import { StreamQueue } from "./stream-queue";
import { Backoff, isRetryable, silenceLimitMs, startWatchdog, watchVisibility } from "./reconnect";
import type { SessionUi } from "./session-ui";
import { View, setRealm, withRealm, type ViewRealm } from "./view";
import { ViewDomain } from "./view-domain";
import { topicOf, type VirtualMachine, type VMHost } from "./vm";

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

/**
 * - connecting/syncing: opening the socket / catching up (first join or rejoin)
 * - joined: live
 * - disconnected: lost the connection, a rejoin is scheduled
 * - sleeping: the page is hidden; rejoins when it is visible again
 * - failed: ended by a fatal error (the view stays until `leave()`)
 * - left: left, or the join failed
 */
type State = "connecting" | "syncing" | "joined" | "disconnected" | "sleeping" | "failed" | "left";

/** How long one slice of catching up may block before yielding to the event loop, in ms. */
const CATCH_UP_SLICE_MS = 50;

function randomViewId(): string {
  return toBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(12)));
}

/**
 * Runs one client's replica of a session: joins through the reflector, feeds the ordered stream
 * to the VM, delivers model events to views and drives frames. Also the realm of its views.
 */
export class SessionController implements ViewRealm {
  readonly viewId = randomViewId();
  readonly domain: ViewDomain;
  readonly #params: JoinParameters;
  readonly #conn: Connection;
  #state: State = "connecting";
  #identity: SessionIdentity | undefined;
  #keys: SessionKeys | undefined;
  readonly #reporter: SessionReporter;
  #vm: VirtualMachine | undefined;
  #host: VMHost | undefined;
  #payloads: PayloadCodec | undefined;
  #snapshotter: Snapshotter | undefined;
  #joinFrame: Uint8Array | undefined;
  /** Whether this client was joined at least once: later connection losses rejoin. */
  #joinedOnce = false;
  /** This client's own view-join in the current connection comes after this seq. */
  #joinAfterSeq = 0;
  readonly #backoff = new Backoff();
  #rejoinTimer: ReturnType<typeof setTimeout> | undefined;
  #stopWatchdog: (() => void) | undefined;
  #stopSleepWatch: (() => void) | undefined;
  #lastHeard = 0;
  #droppedWarned = false;
  #persister: Persister | undefined;
  #leaving: Promise<void> | undefined;
  #catchUpScheduled = false;
  #catchUpTotal = 0;
  #root: Model | undefined;
  #rootView: View | undefined;
  #session: unknown;
  #queue = new StreamQueue();
  #externalTime = 0;
  #externalAt = 0;
  #serverError: { code: number; message: string } | undefined;
  #processScheduled = false;
  #stopLoop: (() => void) | undefined;
  #join: { resolve: () => void; reject: (error: Error) => void } | undefined;
  #left: (() => void) | undefined;
  readonly #afterEntry = new Set<(seq: number) => void>();

  constructor(params: JoinParameters) {
    this.#params = params;
    this.domain = new ViewDomain((context, error) => this.reportError(context, error));
    this.#reporter = new SessionReporter(this.domain, () => this.identity.sessionId, params.debug);
    this.#conn = new Connection({
      message: (msg) => this.#onMessage(msg),
      malformed: (error) => this.#fail(new SessionError("the reflector sent a malformed frame", { cause: error })),
      close: (code, reason) => this.#onClose(code, reason),
    });
  }

  /** The sessionId once computed (early in `start`). */
  get sessionIdIfKnown(): string | undefined {
    return this.#identity?.sessionId;
  }

  get identity(): SessionIdentity {
    if (!this.#identity) throw new Error("identity not computed yet");
    return this.#identity;
  }

  get vm(): VirtualMachine {
    if (!this.#vm) throw new Error("session not started");
    return this.#vm;
  }

  get session(): unknown {
    return this.#session;
  }

  get rootModel(): Model | undefined {
    return this.#root;
  }

  get rootView(): View | undefined {
    return this.#rootView;
  }

  get state(): State {
    return this.#state;
  }

  /** Connects, joins and catches up. Resolves once this client's own view-join was simulated and the root view built. */
  async start(session: unknown): Promise<void> {
    this.#session = session;
    const p = this.#params;
    const constantsHash = await freezeConstants();
    const identity = await computeIdentity({ appId: p.appId, name: p.name, options: p.options, registry, constantsHash });
    this.#identity = identity;
    const keys = await deriveSessionKeys(p.password, identity.persistentId, identity.sessionId);
    this.#keys = keys;
    if (p.debug.has("session")) {
      console.log(`[Lockstep] Joining session (sessionId: ${identity.sessionId}, persistentId: ${identity.persistentId}, versionId: ${identity.versionId}, viewId: ${this.viewId})`);
    }
    const payloads = new PayloadCodec(registry, (id) => this.vm.getModel(id));
    this.#payloads = payloads;
    const persister = new Persister({
      appId: p.appId,
      password: p.password,
      persistentId: identity.persistentId,
      viewId: this.viewId,
      debug: p.debug.has("session"),
      model: p.model,
      registry,
      persistMaster: keys.persistMaster,
      send: (frame) => this.#conn.send(frame),
      vm: () => this.#vm,
      live: () => this.#state === "joined",
      reportError: (context, error) => this.reportError(context, error),
    });
    await persister.prepare();
    this.#persister = persister;
    this.#host = {
      persistence: persister,
      sessionId: identity.sessionId,
      registry,
      decodeEvent: (payload) => payloads.decodeEvent(open(keys.message, payload)),
      // Empty view data was never encrypted: the client joined without any.
      decodeViewData: (bytes) => (bytes.length === 0 ? undefined : payloads.decodeViewData(open(keys.viewData, bytes))),
      modelEvent: (topic, data) => this.domain.deliver(topic, data),
      reportError: (context, error) => this.reportError(context, error),
    };
    this.#joinFrame = encodeClientMessage({
      type: MessageType.Join,
      sessionId: identity.sessionId,
      persistentId: identity.persistentId,
      viewId: this.viewId,
      tps: p.tps,
      auth: joinAuth(keys, identity.sessionId, persister.joinSlot()),
      viewData: p.viewData === undefined ? new Uint8Array(0) : seal(keys.viewData, payloads.encodeViewData(p.viewData)),
    });
    const joined = new Promise<void>((resolve, reject) => (this.#join = { resolve, reject }));
    try {
      await this.#connect();
    } catch (cause) {
      this.#state = "left";
      this.#join = undefined;
      throw new JoinError(
        `cannot reach the Lockstep reflector at ${p.reflector}: is it running? (\`npm start\` runs one on ws://127.0.0.1:8787/; pass another with Session.join({ reflector }))`,
        { cause },
      );
    }
    return joined;
  }

  /** Opens a socket and sends the Join (the same one for the first join and every rejoin). */
  async #connect(): Promise<void> {
    const p = this.#params;
    await this.#conn.open(p.reflector, p.socket);
    if (this.#state === "left") {
      this.#conn.close(1000, "left");
      return;
    }
    this.#state = "syncing";
    this.#snapshotter = new Snapshotter(this.#keys!, (frame) => this.#conn.send(frame), (error) => this.reportError("snapshot", error));
    this.#lastHeard = p.clock();
    this.#stopWatchdog?.();
    const limit = silenceLimitMs(p.tps);
    this.#stopWatchdog = startWatchdog(p.clock, () => this.#lastHeard, limit, () => {
      this.#conn.abandon(1006, `nothing heard from the reflector for ${Math.round(limit / 1000)} s`);
    });
    this.#conn.send(this.#joinFrame!);
  }

  // ---- incoming ----

  #onMessage(msg: ServerMessage): void {
    this.#lastHeard = this.#params.clock();
    try {
      switch (msg.type) {
        case MessageType.Sync:
          this.#onSync(msg);
          return;
        case MessageType.Relay:
        case MessageType.ViewJoin:
        case MessageType.ViewExit:
        case MessageType.SnapshotRequest:
        case MessageType.Persisted:
        case MessageType.PersistData:
          if (this.#state !== "syncing" && this.#state !== "joined") return;
          this.#queue.pushEntry(msg);
          this.#setExternalTime(msg.time);
          break;
        case MessageType.Tick: {
          if (this.#state !== "syncing" && this.#state !== "joined") return;
          this.#setExternalTime(msg.time);
          this.#queue.pushTick(msg);
          break;
        }
        case MessageType.Error:
          this.#serverError = { code: msg.code, message: msg.message };
          return;
        case MessageType.Pong:
          return;
        case MessageType.PersistAck:
          this.#persister?.acknowledged(msg);
          return;
        case MessageType.UploadRequest:
          this.#snapshotter?.uploadRequested(msg.seq);
          return;
        case MessageType.Divergence:
          this.#reporter.divergence(this.#snapshotter!.divergence(msg.seq, msg.hash));
          return;
      }
      if (this.#state === "syncing") this.#catchUp();
      else if (this.#params.step === "auto") this.#scheduleProcessing();
    } catch (error) {
      this.#fail(error instanceof Error ? error : new SessionError(String(error)));
    }
  }

  #setExternalTime(time: number): void {
    this.#externalTime = time;
    this.#externalAt = this.#params.clock();
  }

  #onSync(msg: SyncMessage): void {
    if (this.#state !== "syncing") throw new SessionError("unexpected sync from reflector");
    const id = this.identity.sessionId;
    if (msg.sessionId !== id || msg.viewId !== this.viewId) {
      throw new SessionError(`reflector answered for session ${msg.sessionId}/${msg.viewId}, expected ${id}/${this.viewId}`);
    }
    if (!passwordMatches(this.#keys!, id, msg.auth)) throw this.#wrongPassword(new Error("the session's check token does not open with this password"));
    // A rejoin starts over from what the reflector has: the old view and its subscriptions go, a
    // new VM boots from the snapshot and log, and a new root view is built once caught up.
    if (this.#joinedOnce) this.#retireView();
    this.#joinAfterSeq = msg.seq;
    const { vm, root } = bootVM({
      host: this.#host!,
      keys: this.#keys!,
      snapshot: msg.snapshot,
      model: this.#params.model,
      options: this.#params.options,
      // A snapshot already holds what init made of the persisted data; only a fresh start reads it.
      persisted: msg.snapshot.length === 0 ? this.#persister!.startingPoint(msg.persisted) : undefined,
    });
    this.#vm = vm;
    this.#root = root;
    setRealm(vm, this);
    const first = msg.entries[0]?.seq ?? msg.seq + 1;
    if (first !== vm.seq + 1) {
      throw new SessionError(`reflector sent history starting at #${first}, but the ${msg.snapshot.length > 0 ? "snapshot ends" : "session starts"} at #${vm.seq}`);
    }
    msg.entries.forEach((e, i) => {
      if (e.seq !== first + i) throw new SessionError(`history has a gap at #${first + i}`);
    });
    if (msg.entries.length > 0 && msg.entries[msg.entries.length - 1]!.seq !== msg.seq) {
      throw new SessionError(`history ends at #${msg.entries[msg.entries.length - 1]!.seq}, reflector says #${msg.seq}`);
    }
    this.#catchUpTotal = msg.entries.length;
    this.#setExternalTime(msg.time);
    this.#queue.pushHistory(msg.entries, msg.seq, msg.time);
  }

  #wrongPassword(cause?: unknown): JoinError {
    return wrongPassword(this.#params.name, this.#params.appId, this.identity.sessionId, cause);
  }

  #scheduleProcessing(): void {
    if (this.#processScheduled) return;
    this.#processScheduled = true;
    queueMicrotask(() => {
      this.#processScheduled = false;
      if (this.#state === "joined") this.#processPending();
    });
  }

  /**
   * Fast-forwards through the history while joining, a time slice at a time so a browser stays
   * responsive, reporting progress; the join completes at this client's own view-join.
   */
  #catchUp(): void {
    if (this.#catchUpScheduled) return;
    const drained = this.#processPending(this.#params.clock() + CATCH_UP_SLICE_MS);
    if (this.#state !== "syncing") return;
    const total = Math.max(1, this.#catchUpTotal);
    this.#progress(Math.min(0.99, this.#queue.taken / total));
    if (!drained) {
      this.#catchUpScheduled = true;
      setTimeout(() => {
        this.#catchUpScheduled = false;
        if (this.#state === "syncing") this.#catchUp();
      }, 0);
    }
  }

  /** Feeds received entries and ticks to the VM, in order, until drained (true) or past `deadline`. */
  #processPending(deadline = Infinity): boolean {
    const vm = this.vm;
    for (let item = this.#queue.next(), n = 1; item !== undefined; item = this.#queue.next(), n++) {
      if (item.type === MessageType.Tick) {
        vm.advanceTo(item.time);
        continue;
      }
      vm.processEntry(item);
      if (this.#afterEntry.size > 0) for (const cb of this.#afterEntry) cb(item.seq);
      if (item.type === MessageType.SnapshotRequest && this.#state === "joined") this.#snapshotter!.taken(item.seq, this.stateBytes());
      if (this.#state === "syncing" && item.type === MessageType.ViewJoin && item.viewId === this.viewId && item.seq > this.#joinAfterSeq) this.#finishJoin();
      if (this.#state === "left") return true;
      if ((n & 63) === 0 && this.#params.clock() > deadline) return false;
    }
    if (this.#state === "joined") this.#persister?.poll();
    return true;
  }



  #finishJoin(): void {
    const p = this.#params;
    try {
      this.#rootView = withRealm(this, () => new p.view(this.#root, p.viewOptions));
    } catch (error) {
      this.#fail(new JoinError(`the root view ${p.view.name} threw while being built`, { cause: error }));
      return;
    }
    const rejoined = this.#joinedOnce;
    this.#state = "joined";
    this.#joinedOnce = true;
    this.#droppedWarned = false;
    this.#backoff.reset();
    this.#progress(1);
    const id = this.identity;
    p.ui?.joined({ sessionId: id.sessionId, persistentId: id.persistentId, name: p.name, viewId: this.viewId });
    if (rejoined) {
      p.ui?.message("status", "Reconnected");
      if (p.debug.has("session")) console.log(`[Lockstep] Rejoined session ${id.sessionId} at #${this.vm.seq}`);
    }
    if (p.step === "auto") this.#stopLoop = startFrameLoop((time) => this.step(time));
    this.#stopSleepWatch ??= watchVisibility(p.autoSleep, () => void this.#sleep(), () => this.#wake());
    this.#join?.resolve();
    this.#join = undefined;
    this.#persister?.poll();
  }

  #progress(fraction: number): void {
    this.#params.progressReporter?.(fraction);
    if (fraction < 1) this.#params.ui?.syncing(fraction);
  }

  /** Detaches the root view and drops every view subscription (before a rejoin builds new ones). */
  #retireView(): void {
    const view = this.#rootView;
    this.#rootView = undefined;
    try {
      view?.detach();
    } catch (error) {
      this.reportError(`${view?.constructor.name}.detach`, error);
    }
    this.domain.clear();
  }

  #onClose(code: number, reason: string): void {
    this.#stopLoop?.();
    this.#stopWatchdog?.();
    const state = this.#state;
    if (state === "left") {
      this.#left?.();
      return;
    }
    if (state === "sleeping") return;
    const serverCode = this.#serverError?.code ?? code;
    const detail = this.#serverError ? `${this.#serverError.message} (${closeCodeName(this.#serverError.code) ?? this.#serverError.code})` : `close code ${code}${reason ? `: ${reason}` : ""}`;
    this.#serverError = undefined;
    if (this.#join && serverCode === CloseCode.AuthFailed) {
      this.#fail(authFailure(this.#params, this.identity, detail));
      return;
    }
    if (this.#joinedOnce && isRetryable(serverCode)) {
      this.#connectionLost(detail);
      return;
    }
    const message =
      serverCode === CloseCode.DuplicateView
        ? "this view rejoined the session on another connection; this one stops"
        : `connection to the reflector closed: ${detail}`;
    this.#fail(new SessionError(message, { code: serverCode }));
  }

  /** The connection dropped while joined: keep the view on screen and rejoin with backoff. */
  #connectionLost(detail: string): void {
    const p = this.#params;
    const first = this.#state === "joined";
    this.#state = "disconnected";
    this.#persister?.connectionLost();
    this.#queue = new StreamQueue();
    if (first) {
      console.warn(`[Lockstep] lost the connection to the reflector (${detail}); reconnecting`);
      p.ui?.message("warning", "Connection lost: reconnecting…");
    }
    p.ui?.syncing(undefined);
    this.#scheduleRejoin();
  }

  #scheduleRejoin(): void {
    if (this.#rejoinTimer !== undefined) return;
    this.#rejoinTimer = setTimeout(() => {
      this.#rejoinTimer = undefined;
      void this.#rejoin();
    }, this.#backoff.next());
  }

  async #rejoin(): Promise<void> {
    if (this.#state !== "disconnected" && this.#state !== "sleeping") return;
    this.#state = "connecting";
    try {
      await this.#connect();
    } catch {
      if (this.#state !== "connecting") return;
      this.#state = "disconnected";
      if (this.#backoff.attempts === 3) this.#params.ui?.message("warning", `Still trying to reach the reflector at ${this.#params.reflector}…`);
      this.#scheduleRejoin();
    }
  }

  /** The page stayed hidden for `autoSleep` seconds: save, then disconnect until it is visible. */
  async #sleep(): Promise<void> {
    if (this.#state !== "joined") return;
    try {
      await this.flushPersistence();
    } catch (error) {
      this.reportError("saving persisted data", error);
    }
    if (this.#state !== "joined") return;
    this.#state = "sleeping";
    this.#stopLoop?.();
    this.#stopWatchdog?.();
    this.#persister?.connectionLost();
    this.#queue = new StreamQueue();
    if (this.#params.debug.has("session")) console.log(`[Lockstep] Page hidden for ${this.#params.autoSleep} s: disconnecting until it is visible again`);
    this.#conn.close(1000, "asleep");
  }

  /** The page is visible again. */
  #wake(): void {
    if (this.#state !== "sleeping") return;
    this.#backoff.reset();
    this.#params.ui?.syncing(undefined);
    void this.#rejoin();
  }

  #stopTimers(): void {
    this.#stopLoop?.();
    this.#stopWatchdog?.();
    this.#stopSleepWatch?.();
    this.#stopSleepWatch = undefined;
    if (this.#rejoinTimer !== undefined) clearTimeout(this.#rejoinTimer);
    this.#rejoinTimer = undefined;
  }

  /** A fatal problem: fails a pending join, or ends a running session. */
  #fail(error: Error): void {
    const wasJoining = this.#join !== undefined;
    if (this.#state === "left") return;
    this.#persister?.dispose();
    this.#state = wasJoining ? "left" : "failed";
    this.#stopTimers();
    if (wasJoining) {
      const code = error instanceof SessionError || error instanceof JoinError ? error.code : undefined;
      const joinError = error instanceof JoinError ? error : new JoinError(`could not join: ${error.message}`, { cause: error, code });
      this.#join!.reject(joinError);
      this.#join = undefined;
      this.#conn.close(1000, "join failed");
    } else {
      this.reportError("session", error);
      this.#params.ui?.message("error", error.message);
      this.#params.ui?.ended(this.identity.sessionId);
      this.#conn.close(1000, "session failed");
    }
  }

  // ---- frames ----

  /** Processes everything received so far, delivers view events and updates the root view. */
  step(time: number = this.#params.clock()): void {
    if (this.#state !== "joined") return;
    this.#processPending();
    this.domain.frame(this.extrapolatedNow());
    try {
      this.#rootView?.update(time);
    } catch (error) {
      this.reportError(`${this.#rootView?.constructor.name}.update`, error);
    }
  }

  // ---- ViewRealm ----

  modelTime(): number {
    return this.vm.time;
  }

  externalNow(): number {
    return this.#externalTime;
  }

  extrapolatedNow(): number {
    return this.#externalTime + Math.max(0, this.#params.clock() - this.#externalAt);
  }

  wellKnownModel(name: string): Model | undefined {
    return this.vm.wellKnownModel(name);
  }

  publish(scope: string, event: string, data: unknown): void {
    if (this.#state !== "joined") {
      if (this.#joinedOnce && this.#state !== "left" && this.#state !== "failed") {
        // Reconnecting or asleep: input made meanwhile cannot be ordered; drop it, say so once.
        if (!this.#droppedWarned) console.warn(`[Lockstep] not connected (${this.#state}): dropped "${scope}:${event}" and any further events until rejoined`);
        this.#droppedWarned = true;
        return;
      }
      throw new UsageError(`cannot publish "${scope}:${event}": the session is ${this.#state}`);
    }
    const payload = seal(this.#keys!.message, this.#payloads!.encodeEvent(scope, event, data));
    if (payload.length > DEFAULT_LIMITS.maxPayloadBytes) {
      throw new UsageError(`event "${scope}:${event}" is ${payload.length} bytes; the limit is ${DEFAULT_LIMITS.maxPayloadBytes}. Send less data per event.`);
    }
    this.#conn.send(encodeSend(payload));
    this.domain.deliver(topicOf(scope, event), data);
  }

  // ---- session API ----

  leave(): Promise<void> {
    this.#leaving ??= this.#leave();
    return this.#leaving;
  }

  /**
   * Uploads persisted data not yet acknowledged (saves still waiting for their delay included) and
   * resolves once the reflector has it durably, or after a timeout.
   */
  async flushPersistence(): Promise<void> {
    if (this.#state !== "joined") return;
    this.#processPending();
    await this.#persister?.flush();
  }

  async #leave(): Promise<void> {
    if (this.#state === "left") return;
    // What this client saw saved must not leave with it: flush before saying goodbye.
    if (this.#state === "joined" && this.#conn.isOpen) {
      try {
        await this.flushPersistence();
      } catch (error) {
        this.reportError("saving persisted data", error);
      }
    }
    if ((this.#state as State) === "left") return;
    this.#persister?.dispose();
    const wasOpen = this.#conn.isOpen;
    this.#state = "left";
    this.#stopTimers();
    this.#params.ui?.ended(this.identity.sessionId);
    const closed = new Promise<void>((resolve) => (this.#left = resolve));
    if (wasOpen) {
      this.#conn.send(encodeClientMessage({ type: MessageType.Leave }));
      this.#conn.close(1000, "leave");
    }
    try {
      this.#rootView?.detach();
    } catch (error) {
      this.reportError("detach", error);
    }
    this.domain.clear();
    if (wasOpen) await closed;
  }

  /** Registers a callback run right after each stream entry is processed (with its seq). */
  afterEntry(cb: (seq: number) => void): () => void {
    this.#afterEntry.add(cb);
    return () => this.#afterEntry.delete(cb);
  }

  /** The whole replicated state, serialized (identical bytes on every replica at the same point). */
  stateBytes(): Uint8Array {
    return serializeVM(this.vm, registry);
  }

  reportError(context: string, error: unknown): void {
    this.#reporter.error(context, error);
  }
}
