import { MessageType, type DivergenceMessage, type ServerMessage, type StreamEntry, type SyncMessage } from "@lockstep/protocol";
import { JoinError, SessionError } from "../errors";
import { type SessionIdentity } from "../kernel/identity";
import type { Model } from "../kernel/model";
import { registry } from "../kernel/registry";
import type { VirtualMachine } from "../kernel/vm";
import { ViewDomain } from "../view/domain";
import { debugLogOf } from "../kernel/debug-log";
import { View, setRealm, withRealm } from "../view/view";
import { Connection } from "./connection";
import type { SessionKeys } from "./crypto";
import { startFrameLoop } from "./frame-loop";
import { checkSyncAnswer, type JoinParameters } from "./join";
import { Persister, type Uplink } from "./persist-uploads";
import { Rejoiner } from "./rejoin";
import type { ReflectorRoute } from "./reflectors";
import { Replica, type OpenedSync, type ReplicaContext } from "./replica";
import { SessionReporter } from "./reporter";
import type { DivergenceReport } from "./snapshots";
import { connectedReplicaOf, replicaOf, rootViewOf, type ControllerState, type ControllerStateKind, type PendingJoin, type Syncing } from "./states";
import { StatusNotifier } from "./status";
import { ChangeNotifier } from "./changes";
import { Stream } from "./stream";
import { PayloadCodec } from "./payload";
import { Publisher } from "./publisher";
import { SessionRealm } from "./realm";

/** Messages held while a Sync's bulk data is decrypted, for the state that Sync came in. */
interface HeldMessages {
  readonly state: ControllerState;
  readonly messages: ServerMessage[];
}

/**
 * The replica side of a session's controller: the state machine's data and the half that feeds it
 * — the ordered stream to the replica a Sync booted (or resumed), catching up, going live, votes
 * and divergence, frames, and the realm its views see. {@link SessionController} adds the
 * connection's lifecycle: joining, losing it, rejoining, sleeping, failing and leaving.
 */
export abstract class ControllerCore implements Uplink {
  readonly viewId: string;
  readonly identity: SessionIdentity;
  readonly domain: ViewDomain;
  protected readonly params: JoinParameters;
  protected readonly keys: SessionKeys;
  protected readonly conn: Connection;
  protected readonly reporter: SessionReporter;
  protected readonly rejoiner: Rejoiner;
  /** Which reflector URL each connection goes to (several nodes of a cluster, or one reflector). */
  protected readonly route: ReflectorRoute;
  protected readonly persister: Persister;
  protected readonly stream: Stream;
  protected readonly replicas: ReplicaContext;
  protected readonly publisher: Publisher;
  /** What its views see of the session. */
  readonly realm: SessionRealm;
  #now: ControllerState = { kind: "connecting", pending: undefined, screen: undefined };
  /** Status for the app: `session.status`, its listeners and the views' `synced` event. */
  readonly status: StatusNotifier;
  /** A local tick's feed is scheduled (`tps: "10x3"`). */
  #localTick = false;
  /** `session.on("change")`: after each frame in which model code ran. */
  readonly changes: ChangeNotifier;
  /** This replica diverged at this seq: the next join starts over from the session's state, never resuming (0: none). */
  protected rebuild = 0;
  /** The seq at which the replica being rebuilt had diverged, until the rebuild is live (0: none). */
  protected repairedAt = 0;
  /** The app's handle of this session (`view.session`). */
  session: unknown;
  /** The Error frame the reflector sent on this connection, if any (it explains the close that follows). */
  protected serverError: { code: number; message: string } | undefined;
  /** The node a Redirect frame on this connection named (a close with `CloseCode.Redirect` follows). */
  protected redirectTo: string | undefined;
  /** This connection was abandoned because nothing was heard on it for too long. */
  protected wentSilent = false;
  /** What arrived while a Sync's replica was being booted (in `state`, the Sync's): handled once it is. */
  #held: HeldMessages | undefined;


  protected constructor(params: JoinParameters, viewId: string, identity: SessionIdentity, keys: SessionKeys, route: ReflectorRoute) {
    this.params = params;
    this.route = route;
    this.viewId = viewId;
    this.identity = identity;
    this.keys = keys;
    this.domain = new ViewDomain((context, error) => this.reportError(context, error), debugLogOf(params.debug));
    this.reporter = new SessionReporter(this.domain, identity.sessionId, params.debug);
    this.status = new StatusNotifier(this.domain, identity.sessionId, (context, error) => this.reportError(context, error), viewId);
    this.changes = new ChangeNotifier((context, error) => this.reportError(context, error));
    const rate = { tps: params.tps, multiplier: params.tickMultiplier ?? 1 };
    this.stream = new Stream(params.timers, rate);
    this.conn = new Connection({
      message: (msg) => this.#onMessage(msg),
      malformed: (error) => this.fail(new SessionError("the reflector sent a malformed frame", { cause: error })),
      close: (code, reason) => this.onClose(code, reason),
    });
    this.rejoiner = new Rejoiner(params, {
      rejoin: () => void this.rejoin(),
      silent: (reason) => {
        // A node that went silent is likely paused: the next attempt tries the next URL.
        this.wentSilent = true;
        this.conn.abandon(1006, reason);
      },
      sleep: () => void this.sleep(),
      wake: () => this.wake(),
      // The page is going away: a Leave now, so the others see this view exit at once.
      pageHidden: () => void this.asleep(),
    });
    const reportError = (context: string, error: unknown): void => this.reportError(context, error);
    const { appId, password, model, timers } = params;
    const persistence = { appId, password, model, registry, timers, persistentId: identity.persistentId, persistMaster: keys.persistMaster };
    this.persister = new Persister({ ...persistence, viewId, debug: params.debug.has("session"), uplink: this, reportError });
    const modelEvent = (topic: string, data: unknown): void => this.domain.deliver(topic, data);
    this.replicas = { params, keys, sessionId: identity.sessionId, viewId, persister: this.persister, timers, modelEvent, reportError };
    this.publisher = new Publisher(viewId, keys.message, new PayloadCodec(registry, () => undefined), params.offline);
    const controller = this;
    this.realm = new SessionRealm(viewId, identity.sessionId, this.domain, {
      get state() {
        return controller.current;
      },
      get session() {
        return controller.session;
      },
      stream: this.stream,
      publisher: this.publisher,
      wake: () => this.conn.wake(),
      compat: { timers, rate, ids: { ...identity, viewId } },
    });
    // Whatever the connection sends, this turn's publishes go first (in one payload).
    this.conn.gather = () => this.publisher.flush(this.#sendPayload);
  }

  /** Every state change goes through here: the app hears of status changes and `synced`. */
  protected get current(): ControllerState {
    return this.#now;
  }
  protected set current(next: ControllerState) {
    const prev = this.#now;
    this.#now = next;
    this.status.changed(prev, next);
  }

  get state(): ControllerStateKind {
    return this.current.kind;
  }

  /** The state now: after an `await` (TypeScript would keep the narrowing from before it). */
  protected latest(): ControllerState {
    return this.current;
  }

  get rootModel(): Model | undefined {
    return replicaOf(this.current)?.root;
  }

  get rootView(): View | undefined {
    return rootViewOf(this.current);
  }

  /** The VM the app sees (live, or the last one booted). */
  get vm(): VirtualMachine {
    return this.realm.vm;
  }

  #onMessage(msg: ServerMessage): void {
    this.rejoiner.heard();
    const held = this.#held;
    if (held !== undefined && held.state === this.current) {
      // An Error or a Redirect explains a close that may come before the boot ends; a Pong changes nothing.
      if (msg.type !== MessageType.Error && msg.type !== MessageType.Redirect && msg.type !== MessageType.Pong) {
        held.messages.push(msg);
        return;
      }
    } else if (held !== undefined) this.#held = undefined; // its connection is gone
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
          if (!connectedReplicaOf(this.current)) return; // before the Sync: nothing to feed
          this.stream.entry(msg);
          this.#feedSoon();
          break;
        case MessageType.Tick:
          if (!connectedReplicaOf(this.current)) return; // before the Sync: nothing to feed
          this.stream.tick(msg);
          this.#feedSoon();
          break;
        case MessageType.Error:
          this.serverError = { code: msg.code, message: msg.message };
          return;
        case MessageType.Redirect:
          this.redirectTo = msg.url; // followed when the close comes (checked then)
          return;
        case MessageType.Pong:
          return;
        case MessageType.PersistAck:
          this.persister.acknowledged(msg);
          return;
        case MessageType.UploadRequest:
          connectedReplicaOf(this.current)?.snapshotter.uploadRequested(msg.seq);
          return;
        case MessageType.Divergence: {
          const replica = connectedReplicaOf(this.current);
          if (replica) this.#onDivergence(replica, msg);
          return;
        }
      }
      if (this.current.kind === "syncing") this.#catchUp();
      else if (this.params.step === "auto") this.stream.soon(this.feed);
    } catch (error) {
      this.fail(error instanceof Error ? error : new SessionError(String(error)));
    }
  }

  /** Where a rejoin may resume from: the seq the replica on screen applied, if its view was live (0: start over). */
  protected resumePoint(): number {
    const s = this.current;
    const screen = s.kind === "connecting" ? s.screen : undefined;
    if (this.rebuild !== 0 || screen?.rootView === undefined || !screen.replica.hasJoined) return 0;
    return screen.replica.vm.seq;
  }

  /**
   * Snapshot votes differed. Outvoted by the majority, this replica rebuilds itself: it drops its
   * state and rejoins from the session's snapshot and log (never resuming what diverged). A tie
   * blames nobody.
   */
  #onDivergence(replica: Replica, msg: DivergenceMessage): void {
    const report: DivergenceReport = msg.split ? { seq: msg.seq, diverged: false, split: true } : replica.snapshotter.divergence(msg.seq, msg.hash);
    this.reporter.divergence(report);
    if (!report.diverged || this.current.kind !== "joined") return;
    this.rebuild = msg.seq;
    this.conn.abandon(1006, "rebuilding a diverged replica");
  }

  #onSync(msg: SyncMessage): void {
    const s = this.current;
    if (s.kind !== "syncing" || s.replica) throw new SessionError("unexpected sync from reflector");
    checkSyncAnswer(msg, this.params, this.identity.sessionId, this.viewId, this.keys);
    if (this.rebuild !== 0 && !msg.resumed) this.repairedAt = this.rebuild;
    this.rebuild = 0;
    if (msg.resumed) {
      // The reflector kept this view: the replica and root view on screen go on from where they were.
      const screen = s.screen;
      if (!screen?.rootView || !screen.replica.hasJoined) throw new SessionError("the reflector resumed a view this client has not built");
      this.stream.history(msg, screen.replica.vm.seq);
      this.current = { kind: "syncing", pending: undefined, screen, replica: screen.replica, resumeAt: msg.seq };
      if (screen.replica.vm.seq >= msg.seq) this.#goLive(screen.replica, screen.rootView, undefined);
      return;
    }
    const plain = Replica.plain(msg);
    if (plain !== undefined) {
      this.#boot(s, msg, plain);
      return;
    }
    // The snapshot (or persisted data) is decrypted first, asynchronously: what the connection
    // delivers meanwhile waits, in order, and is handled once the replica is booted.
    const held: HeldMessages = { state: s, messages: [] };
    this.#held = held;
    Replica.open(msg, this.replicas).then(
      (opened) => {
        if (this.#held === held) this.#held = undefined;
        // Unless the connection went meanwhile (or the session ended).
        if (this.latest() !== s) return;
        try {
          this.#boot(s, msg, opened);
          this.#catchUp();
        } catch (error) {
          this.fail(error instanceof Error ? error : new SessionError(String(error)));
          return;
        }
        for (const m of held.messages) this.#onMessage(m);
      },
      (error: unknown) => {
        if (this.#held === held) this.#held = undefined;
        if (this.latest() === s) this.fail(error instanceof Error ? error : new SessionError(String(error)));
      },
    );
  }

  /**
   * Boots the replica of a (non-resumed) Sync from what it brought, decrypted. A rejoin starts over
   * from what the reflector has: the old view and its subscriptions go, a new VM boots from the
   * snapshot and log, and a new root view is built once caught up.
   */
  #boot(s: Syncing, msg: SyncMessage, opened: OpenedSync): void {
    if (s.screen) this.domain.retire(s.screen.rootView);
    const replica = new Replica(msg, this.replicas, (frame) => this.conn.send(frame), opened);
    setRealm(replica.vm, this.realm);
    this.stream.history(msg, replica.vm.seq);
    this.current = { kind: "syncing", pending: s.pending, screen: undefined, replica };
  }

  /**
   * Run after each entry the stream fed: live, a snapshot request is voted on; catching up, this
   * client's own view-join completes the join. True stops the feeding: the session is no longer
   * catching up or live (the root view failed, or the app left from a view event).
   */
  readonly #visit = (entry: StreamEntry): boolean => {
    const s = this.current;
    if (s.kind === "joined") {
      if (entry.type === MessageType.SnapshotRequest) s.replica.snapshotter.taken(entry.seq, s.replica.stateBytes());
      return false;
    }
    if (s.kind === "syncing" && s.resumeAt !== undefined && s.replica && s.screen?.rootView) {
      if (entry.seq >= s.resumeAt) this.#goLive(s.replica, s.screen.rootView, undefined);
    } else if (s.kind === "syncing" && s.replica?.isOwnJoin(entry)) this.#finishJoin(s, s.replica, entry.seq);
    const now = this.current.kind;
    return now !== "joined" && now !== "syncing";
  };

  /** This client's own view-join, entry `joinSeq`, was processed: it is live on this connection. */
  #finishJoin(s: Syncing, replica: Replica, joinSeq: number): void {
    const p = this.params;
    // Before the root view is built: its constructor may already publish, after what was queued.
    replica.joined(joinSeq);
    this.#sendPending(replica);
    let rootView: View;
    try {
      rootView = withRealm(this.realm, () => new p.view(replica.root, p.viewOptions));
    } catch (error) {
      this.fail(new JoinError(`the root view ${p.view.name} threw while being built`, { cause: error }));
      return;
    }
    this.#goLive(replica, rootView, s.pending);
  }

  /** What the previous connection sent and was not applied goes again, then what was queued (in order). */
  #sendPending(replica: Replica): void {
    for (const payload of this.publisher.live(replica.joinSeq, (seq) => replica.vm.appliedCounter(this.viewId, seq))) this.conn.sendPayload(payload);
  }

  readonly #sendPayload = (payload: Uint8Array): void => this.conn.sendPayload(payload);

  /** Live on this connection, with `rootView` on screen: a join completed (`pending`: the first), or a resume caught up. */
  #goLive(replica: Replica, rootView: View, pending: PendingJoin | undefined): void {
    const p = this.params;
    const resumed = this.current.kind === "syncing" && this.current.resumeAt !== undefined;
    if (resumed) this.#sendPending(replica);
    const stopLoop = p.step === "auto" ? startFrameLoop(p.timers, (time) => this.step(time)) : () => {};
    this.current = { kind: "joined", replica, rootView, stopLoop };
    this.reporter.progress(p, 1);
    this.reporter.joined(p, this.identity, this.viewId, pending === undefined ? replica.vm.seq : undefined, resumed);
    if (this.repairedAt !== 0) this.reporter.divergence({ seq: this.repairedAt, diverged: true, split: false, repaired: true });
    this.repairedAt = 0;
    this.rejoiner.joined();
    this.route.joined();
    pending?.resolve();
  }

  /** Fast-forwards through the history while syncing, a slice at a time (a browser stays responsive), with progress. */
  #catchUp(): void {
    const s = this.current;
    if (s.kind !== "syncing" || !s.replica) return;
    const result = this.stream.feedSlice(s.replica.vm, this.#visit, () => this.#catchUp());
    const now = this.latest();
    if (now.kind === "syncing") this.reporter.progress(this.params, Math.min(0.99, this.stream.historyProgress));
    // Joined on the way: what the slice left is fed like anything live.
    else if (now.kind === "joined" && result === "drained") this.persister.poll();
    else if (now.kind === "joined" && this.params.step === "auto") this.stream.soon(this.feed);
  }

  /**
   * Live, models run as soon as entries arrive (at the end of the task that brought them, all of
   * them together), not at the next frame: a publisher sees its own event applied one round trip
   * after publishing. Views still update once per frame ({@link step}).
   */
  #feedSoon(): void {
    if (this.current.kind === "joined" && this.params.step === "auto") this.stream.soon(this.feed);
  }

  /** Feeds everything received to the live replica; then persisted data may be uploaded. */
  protected readonly feed = (): void => {
    const s = this.current;
    if (s.kind !== "joined") return;
    const result = this.stream.feed(s.replica.vm, this.#visit, Infinity, this.stream.liveLimit());
    if (result === "held") this.#localTickSoon();
    const drained = result === "drained" || result === "held";
    this.publisher.confirm(s.replica.vm.appliedCounter(this.viewId, s.replica.joinSeq));
    if (drained && this.current.kind === "joined") this.persister.poll();
  };

  /** With a tick multiplier, feeds again at the next local tick (frames feed too; this is for when there are none). */
  #localTickSoon(): void {
    const at = this.stream.nextLocalTick();
    if (at === undefined || this.#localTick || this.params.step !== "auto") return;
    const timers = this.params.timers;
    this.#localTick = true;
    timers.setTimeout(() => {
      this.#localTick = false;
      this.feed();
    }, Math.max(0, at - timers.now()));
  }

  /** Processes everything received so far, delivers view events and updates the root view. */
  step(time: number = this.params.timers.now()): void {
    if (this.current.kind !== "joined") return;
    this.feed();
    const live = this.current;
    if (live.kind === "joined") this.status.frame(this.params.timers.now() - this.stream.heardAt, Math.max(0, this.stream.externalTime - live.replica.vm.time));
    this.domain.frame(this.realm.extrapolatedNow());
    const s = this.current;
    if (s.kind !== "joined") return;
    try {
      s.rootView.update(time);
    } catch (error) {
      this.reportError(`${s.rootView.constructor.name}.update`, error);
    }
    // Unless the root view's update left the session.
    if (this.latest() === s) this.changes.frame(s.replica.vm);
  }

  /** Events published and not yet applied by this replica (in flight, or queued while not connected). */
  get pendingEvents(): number {
    return this.publisher.pending;
  }

  send(frame: Uint8Array): void {
    this.conn.send(frame);
  }

  liveVM(): VirtualMachine | undefined {
    const s = this.current;
    return s.kind === "joined" ? s.replica.vm : undefined;
  }

  /** Registers a callback run right after each stream entry is processed (with its seq). */
  afterEntry(cb: (seq: number) => void): () => void {
    return this.stream.afterEntry(cb);
  }

  /** The whole replicated state, serialized (identical bytes on every replica at the same point). */
  stateBytes(): Uint8Array {
    const replica = replicaOf(this.current);
    if (!replica) throw new Error("session not started");
    return replica.stateBytes();
  }

  reportError(context: string, error: unknown): void {
    this.reporter.error(context, error);
  }


  /** A fatal problem: fails a pending join, or ends a running session. */
  protected abstract fail(error: Error): void;
  /** The socket closed (`code`, `reason`). */
  protected abstract onClose(code: number, reason: string): void;
  /** A backoff delay passed: the next rejoin attempt. */
  protected abstract rejoin(): Promise<void>;
  /** The page stayed hidden for `autoSleep` seconds. */
  protected abstract sleep(): Promise<void>;
  /** The page is visible again. */
  protected abstract wake(): void;
  /** Says Leave and disconnects until the page is visible again; returns whether it did. */
  protected abstract asleep(): boolean;
}
