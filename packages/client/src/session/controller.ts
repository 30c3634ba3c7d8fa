import { MessageType, encodeClientMessage, type ServerMessage, type StreamEntry, type SyncMessage } from "@lockstep/protocol";
import { JoinError, SessionError } from "../errors";
import { randomViewId, type SessionIdentity } from "../kernel/identity";
import type { Model } from "../kernel/model";
import { registry } from "../kernel/registry";
import type { VirtualMachine } from "../kernel/vm";
import { ViewDomain } from "../view/domain";
import { View, setRealm, withRealm } from "../view/view";
import { authFailure } from "./admission";
import { classifyClose } from "./close-verdict";
import { Connection } from "./connection";
import type { SessionKeys } from "./crypto";
import { startFrameLoop } from "./frame-loop";
import { checkSyncAnswer, identify, joinFrames, unreachable, type JoinParameters } from "./join";
import { Persister, type Uplink } from "./persist-uploads";
import { Rejoiner } from "./rejoin";
import { Replica, type ReplicaContext } from "./replica";
import { SessionReporter } from "./reporter";
import { connectedReplicaOf, pendingOf, replicaOf, rootViewOf, screenOf, type ControllerState, type ControllerStateKind, type Syncing } from "./states";
import { StatusNotifier } from "./status";
import { Stream } from "./stream";
import { PayloadCodec } from "./payload";
import { Publisher } from "./publisher";
import { SessionRealm } from "./realm";

export type { JoinParameters } from "./join";
export type { ControllerState, ControllerStateKind } from "./states";
export type { SessionStatus } from "./status";

/** How long `leave()` waits for the socket's closing handshake before abandoning it, in ms. */
const LEAVE_CLOSE_MS = 2000;

/**
 * Runs one client's replica of a session, as a state machine whose states carry what they own
 * ({@link ControllerState}): it joins through the reflector, feeds the ordered stream to the
 * replica a Sync booted, rejoins when the connection is lost (a {@link Rejoiner} says when),
 * delivers model events to views and drives frames. Also the realm of its views, and the
 * {@link Uplink} its persistence uploads through.
 */
export class SessionController implements Uplink {
  readonly viewId: string;
  readonly identity: SessionIdentity;
  readonly domain: ViewDomain;
  readonly #params: JoinParameters;
  readonly #keys: SessionKeys;
  readonly #conn: Connection;
  readonly #reporter: SessionReporter;
  readonly #rejoiner: Rejoiner;
  readonly #persister: Persister;
  readonly #stream: Stream;
  readonly #replicas: ReplicaContext;
  readonly #publisher: Publisher;
  /** What its views see of the session. */
  readonly realm: SessionRealm;
  #now: ControllerState = { kind: "connecting", pending: undefined, screen: undefined };
  /** Status for the app: `session.status`, its listeners and the views' `synced` event. */
  readonly status: StatusNotifier;
  #joinFrame: (() => Promise<Uint8Array>) | undefined;
  /** The app's handle of this session (`view.session`). */
  session: unknown;
  /** The Error frame the reflector sent on this connection, if any (it explains the close that follows). */
  #serverError: { code: number; message: string } | undefined;
  #leaving: Promise<void> | undefined;

  /** Computes the session's identity and keys (slow on purpose: PBKDF2) and makes its controller. */
  static async create(params: JoinParameters): Promise<SessionController> {
    const viewId = randomViewId();
    const { identity, keys } = await identify(params, viewId);
    return new SessionController(params, viewId, identity, keys);
  }

  private constructor(params: JoinParameters, viewId: string, identity: SessionIdentity, keys: SessionKeys) {
    this.#params = params;
    this.viewId = viewId;
    this.identity = identity;
    this.#keys = keys;
    this.domain = new ViewDomain((context, error) => this.reportError(context, error));
    this.#reporter = new SessionReporter(this.domain, identity.sessionId, params.debug);
    this.status = new StatusNotifier(this.domain, identity.sessionId, (context, error) => this.reportError(context, error));
    this.#stream = new Stream(params.timers);
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
      // The page is going away: a Leave now, so the others see this view exit at once.
      pageHidden: () => void this.#asleep(),
    });
    const reportError = (context: string, error: unknown): void => this.reportError(context, error);
    const { appId, password, model, timers } = params;
    const persistence = { appId, password, model, registry, timers, persistentId: identity.persistentId, persistMaster: keys.persistMaster };
    this.#persister = new Persister({ ...persistence, viewId, debug: params.debug.has("session"), uplink: this, reportError });
    const modelEvent = (topic: string, data: unknown): void => this.domain.deliver(topic, data);
    this.#replicas = { params, keys, sessionId: identity.sessionId, viewId, persister: this.#persister, timers, modelEvent, reportError };
    this.#publisher = new Publisher(viewId, keys.message, new PayloadCodec(registry, () => undefined), params.offline);
    const controller = this;
    this.realm = new SessionRealm(viewId, identity.sessionId, this.domain, {
      get state() {
        return controller.#state;
      },
      get session() {
        return controller.session;
      },
      stream: this.#stream,
      publisher: this.#publisher,
      send: (frame) => void this.#conn.send(frame),
    });
  }

  /** Every state change goes through here: the app hears of status changes and `synced`. */
  get #state(): ControllerState {
    return this.#now;
  }
  set #state(next: ControllerState) {
    const prev = this.#now;
    this.#now = next;
    this.status.changed(prev, next);
  }

  get state(): ControllerStateKind {
    return this.#state.kind;
  }

  /** The state now: after an `await` (TypeScript would keep the narrowing from before it). */
  #current(): ControllerState {
    return this.#state;
  }

  get rootModel(): Model | undefined {
    return replicaOf(this.#state)?.root;
  }

  get rootView(): View | undefined {
    return rootViewOf(this.#state);
  }

  /** The VM the app sees (live, or the last one booted). */
  get vm(): VirtualMachine {
    return this.realm.vm;
  }

  /** Connects, joins and catches up. Resolves once this client's own view-join was simulated and the root view built. */
  async start(session: unknown): Promise<void> {
    this.session = session;
    await this.#persister.prepare();
    const joined = new Promise<void>((resolve, reject) => (this.#state = { kind: "connecting", pending: { resolve, reject }, screen: undefined }));
    try {
      await this.#connect();
    } catch (cause) {
      this.#state = { kind: "left", screen: undefined };
      throw cause instanceof JoinError ? cause : unreachable(this.#params.reflector, cause); // a JoinError: the app token's message says what is wrong
    }
    return joined;
  }

  /** Opens a socket and sends the Join (the same for the first join and every rejoin, but for a fresh app token). */
  async #connect(): Promise<void> {
    const p = this.#params;
    this.#joinFrame ??= joinFrames(p, this.identity, this.#keys, this.viewId, this.#persister.joinSlot());
    // The token first: the reflector gives an open socket only a few seconds to send its Join.
    const frame = await this.#joinFrame();
    await this.#conn.open(p.reflector, p.socket);
    const s = this.#state;
    if (s.kind !== "connecting") {
      this.#conn.close(1000, "left");
      return;
    }
    this.#serverError = undefined;
    this.#state = { kind: "syncing", pending: s.pending, screen: s.screen, replica: undefined };
    this.#rejoiner.connected();
    this.#conn.send(frame);
  }

  // ---- incoming ----

  #onMessage(msg: ServerMessage): void {
    this.#rejoiner.heard();
    try {
      switch (msg.type) {
        case MessageType.Sync:
          this.#onSync(msg);
          break;
        case MessageType.Relay:
        case MessageType.ViewJoin:
        case MessageType.ViewExit:
        case MessageType.SnapshotRequest:
        case MessageType.Persisted:
        case MessageType.PersistData:
          if (!connectedReplicaOf(this.#state)) return; // before the Sync: nothing to feed
          this.#stream.entry(msg);
          break;
        case MessageType.Tick:
          if (!connectedReplicaOf(this.#state)) return; // before the Sync: nothing to feed
          this.#stream.tick(msg);
          break;
        case MessageType.Error:
          this.#serverError = { code: msg.code, message: msg.message };
          return;
        case MessageType.Pong:
          return;
        case MessageType.PersistAck:
          this.#persister.acknowledged(msg);
          return;
        case MessageType.UploadRequest:
          connectedReplicaOf(this.#state)?.snapshotter.uploadRequested(msg.seq);
          return;
        case MessageType.Divergence: {
          const replica = connectedReplicaOf(this.#state);
          if (replica) this.#reporter.divergence(replica.snapshotter.divergence(msg.seq, msg.hash));
          return;
        }
      }
      if (this.#state.kind === "syncing") this.#catchUp();
      else if (this.#params.step === "auto") this.#stream.soon(this.#feed);
    } catch (error) {
      this.#fail(error instanceof Error ? error : new SessionError(String(error)));
    }
  }

  #onSync(msg: SyncMessage): void {
    const s = this.#state;
    if (s.kind !== "syncing" || s.replica) throw new SessionError("unexpected sync from reflector");
    checkSyncAnswer(msg, this.#params, this.identity.sessionId, this.viewId, this.#keys);
    // A rejoin starts over from what the reflector has: the old view and its subscriptions go, a
    // new VM boots from the snapshot and log, and a new root view is built once caught up.
    if (s.screen) this.domain.retire(s.screen.rootView);
    const replica = new Replica(msg, this.#replicas, (frame) => this.#conn.send(frame));
    setRealm(replica.vm, this.realm);
    this.#stream.history(msg, replica.vm.seq);
    this.#state = { kind: "syncing", pending: s.pending, screen: undefined, replica };
  }

  /**
   * Run after each entry the stream fed: live, a snapshot request is voted on; catching up, this
   * client's own view-join completes the join. True stops the feeding: the session is no longer
   * catching up or live (the root view failed, or the app left from a view event).
   */
  readonly #visit = (entry: StreamEntry): boolean => {
    const s = this.#state;
    if (s.kind === "joined") {
      if (entry.type === MessageType.SnapshotRequest) s.replica.snapshotter.taken(entry.seq, s.replica.stateBytes());
      return false;
    }
    if (s.kind === "syncing" && s.replica?.isOwnJoin(entry)) this.#finishJoin(s, s.replica, entry.seq);
    const now = this.#state.kind;
    return now !== "joined" && now !== "syncing";
  };

  /** This client's own view-join, entry `joinSeq`, was processed: it is live on this connection. */
  #finishJoin(s: Syncing, replica: Replica, joinSeq: number): void {
    const p = this.#params;
    // Before the root view is built: its constructor may already publish, after what was queued.
    replica.joined(joinSeq);
    for (const frame of this.#publisher.live(joinSeq, (seq) => replica.vm.appliedCounter(this.viewId, seq))) this.#conn.send(frame);
    let rootView: View;
    try {
      rootView = withRealm(this.realm, () => new p.view(replica.root, p.viewOptions));
    } catch (error) {
      this.#fail(new JoinError(`the root view ${p.view.name} threw while being built`, { cause: error }));
      return;
    }
    const stopLoop = p.step === "auto" ? startFrameLoop(p.timers, (time) => this.step(time)) : () => {};
    this.#state = { kind: "joined", replica, rootView, stopLoop };
    this.#reporter.progress(this.#params, 1);
    this.#reporter.joined(p, this.identity, this.viewId, s.pending === undefined ? replica.vm.seq : undefined);
    this.#rejoiner.joined();
    s.pending?.resolve();
  }

  /** Fast-forwards through the history while syncing, a slice at a time (a browser stays responsive), with progress. */
  #catchUp(): void {
    const s = this.#state;
    if (s.kind !== "syncing" || !s.replica) return;
    const result = this.#stream.feedSlice(s.replica.vm, this.#visit, () => this.#catchUp());
    const now = this.#current();
    if (now.kind === "syncing") this.#reporter.progress(this.#params, Math.min(0.99, this.#stream.historyProgress));
    // Joined on the way: what the slice left is fed like anything live.
    else if (now.kind === "joined" && result === "drained") this.#persister.poll();
    else if (now.kind === "joined" && this.#params.step === "auto") this.#stream.soon(this.#feed);
  }

  /** Feeds everything received to the live replica; then persisted data may be uploaded. */
  readonly #feed = (): void => {
    const s = this.#state;
    if (s.kind !== "joined") return;
    const drained = this.#stream.feed(s.replica.vm, this.#visit) === "drained";
    this.#publisher.confirm(s.replica.vm.appliedCounter(this.viewId, s.replica.joinSeq));
    if (drained && this.#state.kind === "joined") this.#persister.poll();
  };

  #onClose(code: number, reason: string): void {
    const s = this.#state;
    if (s.kind === "joined") s.stopLoop();
    this.#rejoiner.disconnected();
    // Left or asleep, the close was ours. Failed, the session is over: it closed the socket itself,
    // and that close must not look like a lost connection and bring the session back.
    if (s.kind === "left" || s.kind === "sleeping" || s.kind === "failed" || s.kind === "disconnected") return;
    const pending = pendingOf(s);
    const verdict = classifyClose({ code, reason }, this.#serverError, {
      joining: pending !== undefined,
      joinedOnce: pending === undefined,
      renewableToken: typeof this.#params.token !== "string",
    });
    this.#serverError = undefined;
    if (verdict.kind === "authFailed") this.#fail(authFailure(this.#params, this.identity, verdict.detail));
    else if (verdict.kind === "rejoin") this.#connectionLost(verdict.detail);
    else this.#fail(new SessionError(verdict.message, { code: verdict.code }));
  }

  /** The connection dropped after a join: keep the view on screen and rejoin with backoff. */
  #connectionLost(detail: string): void {
    const wasLive = this.#state.kind === "joined";
    this.#state = { kind: "disconnected", screen: screenOf(this.#state) };
    this.#persister.connectionLost();
    this.#stream.reset();
    this.#reporter.connectionLost(this.#params, detail, wasLive);
    this.#rejoiner.retry();
  }

  async #rejoin(): Promise<void> {
    const s = this.#state;
    if (s.kind !== "disconnected" && s.kind !== "sleeping") return;
    this.#state = { kind: "connecting", pending: undefined, screen: s.screen };
    try {
      await this.#connect();
    } catch (error) {
      // The app's token function failed: say so (it may be why rejoining keeps failing), then retry.
      if (error instanceof JoinError) this.reportError("fetching the app token to rejoin", error);
      const now = this.#current();
      if (now.kind !== "connecting") return;
      this.#state = { kind: "disconnected", screen: now.screen };
      if (this.#rejoiner.attempts === 3) this.#params.ui?.message("warning", `Still trying to reach the reflector at ${this.#params.reflector}…`);
      this.#rejoiner.retry();
    }
  }

  /** The page stayed hidden for `autoSleep` seconds: save, then disconnect until it is visible. */
  async #sleep(): Promise<void> {
    if (this.#state.kind !== "joined") return;
    try {
      await this.flushPersistence();
    } catch (error) {
      this.reportError("saving persisted data", error);
    }
    // The page may have become visible again while saving: then it stays awake.
    if (!this.#rejoiner.sleepWanted) return;
    if (this.#asleep() && this.#params.debug.has("session")) console.log(`[Lockstep] Page hidden for ${this.#params.autoSleep} s: disconnecting until it is visible again`);
  }

  /**
   * Live, the session says Leave and disconnects until the page is visible again (asleep, or the
   * page is being unloaded): the others see this view exit now, not after the reflector's grace
   * period for lost connections. Returns whether it did.
   */
  #asleep(): boolean {
    const s = this.#state;
    if (s.kind !== "joined") return false;
    s.stopLoop();
    this.#state = { kind: "sleeping", screen: screenOf(s) };
    this.#rejoiner.disconnected();
    this.#persister.connectionLost();
    this.#stream.reset();
    this.#conn.send(encodeClientMessage({ type: MessageType.Leave }));
    this.#conn.close(1000, "asleep");
    return true;
  }

  /** The page is visible again. */
  #wake(): void {
    if (this.#state.kind !== "sleeping") return;
    this.#rejoiner.woke();
    this.#params.ui?.syncing(undefined);
    void this.#rejoin();
  }

  /** A fatal problem: fails a pending join, or ends a running session. */
  #fail(error: Error): void {
    const s = this.#state;
    if (s.kind === "left" || s.kind === "failed") return; // over already: what its socket still delivers changes nothing
    const pending = pendingOf(s);
    this.#persister.dispose();
    if (s.kind === "joined") s.stopLoop();
    this.#rejoiner.stop();
    if (pending) {
      this.#state = { kind: "left", screen: undefined };
      const code = error instanceof SessionError || error instanceof JoinError ? error.closeCode : undefined;
      pending.reject(error instanceof JoinError ? error : new JoinError(`could not join: ${error.message}`, { cause: error, code }));
      this.#conn.close(1000, "join failed");
      return;
    }
    this.#state = { kind: "failed", screen: screenOf(this.#state) };
    this.reportError("session", error);
    this.#params.ui?.message("error", error.message);
    this.#params.ui?.ended(this.identity.sessionId);
    this.#conn.close(1000, "session failed");
  }

  // ---- frames ----

  /** Processes everything received so far, delivers view events and updates the root view. */
  step(time: number = this.#params.timers.now()): void {
    if (this.#state.kind !== "joined") return;
    this.#feed();
    this.domain.frame(this.realm.extrapolatedNow());
    const s = this.#state;
    if (s.kind !== "joined") return;
    try {
      s.rootView.update(time);
    } catch (error) {
      this.reportError(`${s.rootView.constructor.name}.update`, error);
    }
  }

  /** Events published and not yet applied by this replica (in flight, or queued while not connected). */
  get pendingEvents(): number {
    return this.#publisher.pending;
  }

  // ---- Uplink (persistence) ----

  send(frame: Uint8Array): void {
    this.#conn.send(frame);
  }

  liveVM(): VirtualMachine | undefined {
    const s = this.#state;
    return s.kind === "joined" ? s.replica.vm : undefined;
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
    if (this.#state.kind !== "joined") return;
    this.#feed();
    await this.#persister.flush();
  }

  async #leave(): Promise<void> {
    if (this.#state.kind === "left") return;
    // What this client saw saved must not leave with it: flush before saying goodbye.
    if (this.#state.kind === "joined" && this.#conn.isOpen) {
      try {
        await this.flushPersistence();
      } catch (error) {
        this.reportError("saving persisted data", error);
      }
    }
    const s = this.#current();
    if (s.kind === "left") return;
    this.#persister.dispose();
    if (s.kind === "joined") s.stopLoop();
    this.#rejoiner.stop();
    const wasOpen = this.#conn.isOpen;
    const screen = screenOf(this.#state);
    this.#state = { kind: "left", screen };
    this.#params.ui?.ended(this.identity.sessionId);
    if (wasOpen) this.#conn.send(encodeClientMessage({ type: MessageType.Leave }));
    const closed = this.#conn.closeAndWait(1000, "leave", this.#params.timers, LEAVE_CLOSE_MS);
    this.domain.retire(screen?.rootView);
    await closed;
  }

  /** Registers a callback run right after each stream entry is processed (with its seq). */
  afterEntry(cb: (seq: number) => void): () => void {
    return this.#stream.afterEntry(cb);
  }

  /** The whole replicated state, serialized (identical bytes on every replica at the same point). */
  stateBytes(): Uint8Array {
    const replica = replicaOf(this.#state);
    if (!replica) throw new Error("session not started");
    return replica.stateBytes();
  }

  reportError(context: string, error: unknown): void {
    this.#reporter.error(context, error);
  }
}
