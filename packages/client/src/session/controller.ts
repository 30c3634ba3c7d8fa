import { MessageType, encodeClientMessage, type ServerMessage, type StreamEntry, type SyncMessage } from "@lockstep/protocol";
import { authFailure } from "./admission";
import { Connection } from "./connection";
import { startFrameLoop } from "./frame-loop";
import { SessionReporter } from "./reporter";
import { JoinError, SessionError, UsageError } from "./errors";
import { randomViewId, type SessionIdentity } from "./identity";
import { checkSyncAnswer, identify, prepareJoin, type JoinParameters, type PreparedJoin } from "./join";
import type { Model } from "./model";
import { registry } from "./registry";
import { bootVM, serializeVM } from "./boot";
import { Snapshotter } from "./snapshotter";
import type { Persister } from "./persister";
import { StreamFeeder } from "./stream-queue";
import { classifyClose } from "./reconnect";
import { Rejoiner } from "./rejoiner";
import { View, setRealm, withRealm, type ViewRealm } from "./view";
import { ViewDomain } from "./view-domain";
import { topicOf, type VirtualMachine } from "./vm";

export type { JoinParameters } from "./join";

/**
 * - connecting/syncing: opening the socket / catching up (first join or rejoin)
 * - joined: live
 * - disconnected: lost the connection, a rejoin is scheduled
 * - sleeping: the page is hidden; rejoins when it is visible again
 * - failed: ended by a fatal error (the view stays until `leave()`)
 * - left: left, or the join failed
 */
type State = "connecting" | "syncing" | "joined" | "disconnected" | "sleeping" | "failed" | "left";

/**
 * Runs one client's replica of a session and owns its state: joins through the reflector, hands
 * the ordered stream to a {@link StreamFeeder}, rejoins when a connection is lost (a
 * {@link Rejoiner} says when), delivers model events to views and drives frames. Also the realm
 * of its views.
 */
export class SessionController implements ViewRealm {
  readonly viewId = randomViewId();
  readonly domain: ViewDomain;
  readonly #params: JoinParameters;
  readonly #conn: Connection;
  #state: State = "connecting";
  #identity: SessionIdentity | undefined;
  readonly #reporter: SessionReporter;
  #vm: VirtualMachine | undefined;
  #prepared: PreparedJoin | undefined;
  #snapshotter: Snapshotter | undefined;
  /** Whether this client was joined at least once: later connection losses rejoin. */
  #joinedOnce = false;
  /** This client's own view-join in the current connection comes after this seq. */
  #joinAfterSeq = 0;
  readonly #rejoiner: Rejoiner;
  #persister: Persister | undefined;
  #leaving: Promise<void> | undefined;
  #root: Model | undefined;
  #rootView: View | undefined;
  #session: unknown;
  readonly #feeder: StreamFeeder;
  #serverError: { code: number; message: string } | undefined;
  #stopLoop: (() => void) | undefined;
  #join: { resolve: () => void; reject: (error: Error) => void } | undefined;
  #left: (() => void) | undefined;

  constructor(params: JoinParameters) {
    this.#params = params;
    this.domain = new ViewDomain((context, error) => this.reportError(context, error));
    this.#reporter = new SessionReporter(this.domain, () => this.identity.sessionId, params.debug);
    this.#conn = new Connection({
      message: (msg) => this.#onMessage(msg),
      malformed: (error) => this.#fail(new SessionError("the reflector sent a malformed frame", { cause: error })),
      close: (code, reason) => this.#onClose(code, reason),
    });
    this.#rejoiner = new Rejoiner(params, {
      rejoin: () => void this.#rejoin(),
      silent: (reason) => this.#conn.abandon(1006, reason),
      sleep: () => void this.#sleep(),
      wake: () => this.#wake(),
    });
    this.#feeder = new StreamFeeder({
      clock: params.clock,
      vm: () => this.vm,
      phase: () => (this.#state === "syncing" || this.#state === "joined" ? this.#state : "other"),
      processed: (entry) => this.#processed(entry),
      drained: () => this.#persister?.poll(),
      progress: (fraction) => this.#progress(fraction),
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
    const { identity, keys } = await identify(p, this.viewId);
    this.#identity = identity;
    const prepared = await prepareJoin(p, identity, keys, this.viewId, {
      vm: () => this.#vm,
      model: (id) => this.vm.getModel(id),
      send: (frame) => this.#conn.send(frame),
      live: () => this.#state === "joined",
      modelEvent: (topic, data) => this.domain.deliver(topic, data),
      reportError: (context, error) => this.reportError(context, error),
    });
    this.#prepared = prepared;
    this.#persister = prepared.persister;
    const joined = new Promise<void>((resolve, reject) => (this.#join = { resolve, reject }));
    try {
      await this.#connect();
    } catch (cause) {
      this.#state = "left";
      this.#join = undefined;
      if (cause instanceof JoinError) throw cause; // the app token: its message says what is wrong
      throw new JoinError(
        `cannot reach the Lockstep reflector at ${p.reflector}: is it running? (\`npm start\` runs one on ws://127.0.0.1:8787/; pass another with Session.join({ reflector }))`,
        { cause },
      );
    }
    return joined;
  }

  /** Opens a socket and sends the Join (the same for the first join and every rejoin, but for a fresh app token). */
  async #connect(): Promise<void> {
    const p = this.#params;
    const prepared = this.#prepared!;
    // The token first: the reflector gives an open socket only a few seconds to send its Join.
    const joinFrame = await prepared.joinFrame();
    await this.#conn.open(p.reflector, p.socket);
    if (this.#state === "left") {
      this.#conn.close(1000, "left");
      return;
    }
    this.#state = "syncing";
    this.#snapshotter = new Snapshotter(prepared.keys, (frame) => this.#conn.send(frame), (error) => this.reportError("snapshot", error));
    this.#rejoiner.connected();
    this.#conn.send(joinFrame);
  }

  // ---- incoming ----

  #onMessage(msg: ServerMessage): void {
    this.#rejoiner.heard();
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
          this.#feeder.entry(msg);
          break;
        case MessageType.Tick:
          if (this.#state !== "syncing" && this.#state !== "joined") return;
          this.#feeder.tick(msg);
          break;
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
      if (this.#state === "syncing") this.#feeder.catchUp();
      else if (this.#params.step === "auto") this.#feeder.feedSoon();
    } catch (error) {
      this.#fail(error instanceof Error ? error : new SessionError(String(error)));
    }
  }

  #onSync(msg: SyncMessage): void {
    const prepared = this.#prepared;
    if (this.#state !== "syncing" || !prepared) throw new SessionError("unexpected sync from reflector");
    checkSyncAnswer(msg, this.#params, this.identity.sessionId, this.viewId, prepared.keys);
    // A rejoin starts over from what the reflector has: the old view and its subscriptions go, a
    // new VM boots from the snapshot and log, and a new root view is built once caught up.
    if (this.#joinedOnce) this.#retireView();
    this.#joinAfterSeq = msg.seq;
    const { vm, root } = bootVM({
      host: prepared.host,
      keys: prepared.keys,
      snapshot: msg.snapshot,
      model: this.#params.model,
      options: this.#params.options,
      // A snapshot already holds what init made of the persisted data; only a fresh start reads it.
      persisted: msg.snapshot.length === 0 ? prepared.persister.startingPoint(msg.persisted) : undefined,
    });
    this.#vm = vm;
    this.#root = root;
    setRealm(vm, this);
    this.#feeder.history(msg, vm.seq);
  }

  /**
   * After each entry the feeder processed: live, a snapshot request is voted on; catching up, this
   * client's own view-join completes the join. True stops the feeding: the session was left.
   */
  #processed(entry: StreamEntry): boolean {
    if (entry.type === MessageType.SnapshotRequest && this.#state === "joined") this.#snapshotter!.taken(entry.seq, this.stateBytes());
    if (this.#state === "syncing" && entry.type === MessageType.ViewJoin && entry.viewId === this.viewId && entry.seq > this.#joinAfterSeq) this.#finishJoin(entry.seq);
    return this.#state === "left";
  }

  /** This client's own view-join, entry `joinSeq`, was processed: it is live on this connection. */
  #finishJoin(joinSeq: number): void {
    const p = this.#params;
    // Before the root view is built: its constructor may already publish.
    this.#prepared!.publisher.joined(joinSeq);
    try {
      this.#rootView = withRealm(this, () => new p.view(this.#root, p.viewOptions));
    } catch (error) {
      this.#fail(new JoinError(`the root view ${p.view.name} threw while being built`, { cause: error }));
      return;
    }
    const rejoined = this.#joinedOnce;
    this.#state = "joined";
    this.#joinedOnce = true;
    this.#progress(1);
    const id = this.identity;
    p.ui?.joined({ sessionId: id.sessionId, persistentId: id.persistentId, name: p.name, viewId: this.viewId });
    if (rejoined) {
      p.ui?.message("status", "Reconnected");
      if (p.debug.has("session")) console.log(`[Lockstep] Rejoined session ${id.sessionId} at #${this.vm.seq}`);
    }
    if (p.step === "auto") this.#stopLoop = startFrameLoop((time) => this.step(time));
    this.#rejoiner.joined();
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
    this.#rejoiner.disconnected();
    const state = this.#state;
    if (state === "left") {
      this.#left?.();
      return;
    }
    // Asleep, the close was ours. Failed, the session is over: it closed the socket itself, and
    // that close must not look like a lost connection and bring the session back.
    if (state === "sleeping" || state === "failed") return;
    const verdict = classifyClose({ code, reason }, this.#serverError, {
      joining: this.#join !== undefined,
      joinedOnce: this.#joinedOnce,
      renewableToken: typeof this.#params.token !== "string",
    });
    this.#serverError = undefined;
    if (verdict.kind === "authFailed") this.#fail(authFailure(this.#params, this.identity, verdict.detail));
    else if (verdict.kind === "rejoin") this.#connectionLost(verdict.detail);
    else this.#fail(new SessionError(verdict.message, { code: verdict.code }));
  }

  /** The connection dropped while joined: keep the view on screen and rejoin with backoff. */
  #connectionLost(detail: string): void {
    const p = this.#params;
    const first = this.#state === "joined";
    this.#state = "disconnected";
    this.#persister?.connectionLost();
    this.#feeder.reset();
    if (first) {
      console.warn(`[Lockstep] lost the connection to the reflector (${detail}); reconnecting`);
      p.ui?.message("warning", "Connection lost: reconnecting…");
    }
    p.ui?.syncing(undefined);
    this.#rejoiner.retry();
  }

  async #rejoin(): Promise<void> {
    if (this.#state !== "disconnected" && this.#state !== "sleeping") return;
    this.#state = "connecting";
    try {
      await this.#connect();
    } catch (error) {
      // The app's token function failed: say so (it may be why rejoining keeps failing), then retry.
      if (error instanceof JoinError) this.reportError("fetching the app token to rejoin", error);
      if (this.#state !== "connecting") return;
      this.#state = "disconnected";
      if (this.#rejoiner.attempts === 3) this.#params.ui?.message("warning", `Still trying to reach the reflector at ${this.#params.reflector}…`);
      this.#rejoiner.retry();
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
    // The page may have become visible again while saving: then it stays awake.
    if (this.#state !== "joined" || !this.#rejoiner.sleepWanted) return;
    this.#state = "sleeping";
    this.#stopLoop?.();
    this.#rejoiner.disconnected();
    this.#persister?.connectionLost();
    this.#feeder.reset();
    if (this.#params.debug.has("session")) console.log(`[Lockstep] Page hidden for ${this.#params.autoSleep} s: disconnecting until it is visible again`);
    this.#conn.close(1000, "asleep");
  }

  /** The page is visible again. */
  #wake(): void {
    if (this.#state !== "sleeping") return;
    this.#rejoiner.woke();
    this.#params.ui?.syncing(undefined);
    void this.#rejoin();
  }

  #stopTimers(): void {
    this.#stopLoop?.();
    this.#rejoiner.stop();
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
    this.#feeder.feed();
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
    return this.#feeder.externalTime;
  }

  extrapolatedNow(): number {
    return this.#feeder.extrapolatedTime();
  }

  wellKnownModel(name: string): Model | undefined {
    return this.vm.wellKnownModel(name);
  }

  publish(scope: string, event: string, data: unknown): void {
    if (this.#state !== "joined") {
      // Reconnecting or asleep: the event cannot be ordered now (dropped, and said so once).
      if (this.#joinedOnce && this.#state !== "left" && this.#state !== "failed") return this.#prepared?.publisher.dropped(this.#state, scope, event);
      throw new UsageError(`cannot publish "${scope}:${event}": the session is ${this.#state}`);
    }
    this.#conn.send(this.#prepared!.publisher.frame(scope, event, data));
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
    this.#feeder.feed();
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
    return this.#feeder.afterEntry(cb);
  }

  /** The whole replicated state, serialized (identical bytes on every replica at the same point). */
  stateBytes(): Uint8Array {
    return serializeVM(this.vm, registry);
  }

  reportError(context: string, error: unknown): void {
    this.#reporter.error(context, error);
  }
}
