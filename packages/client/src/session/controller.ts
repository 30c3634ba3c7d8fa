import { MessageType, encodeClientMessage } from "@lockstep/protocol";
import { JoinError, SessionError } from "../errors";
import { randomViewId } from "../kernel/identity";
import { authFailure } from "./admission";
import { classifyClose } from "./close-verdict";
import { MAX_HOPS_AT_ONCE, OPEN_TIMEOUT_MS, ReflectorRoute, redirectTarget, reflectorList } from "./reflectors";
import { identify, joinFrames, unreachable, type JoinParameters } from "./join";
import { pendingOf, screenOf } from "./states";
import { ControllerCore } from "./controller-core";
import type { Rejoiner } from "./rejoin";
import type { ControllerState } from "./states";

export type { JoinParameters } from "./join";
export type { ControllerState, ControllerStateKind } from "./states";
export type { SessionStatus } from "./status";

/** How long `leave()` waits for the socket's closing handshake before abandoning it, in ms. */
const LEAVE_CLOSE_MS = 2000;

/**
 * Runs one client's replica of a session, as a state machine whose states carry what they own
 * ({@link ControllerState}). {@link ControllerCore} feeds the ordered stream to the replica a Sync
 * booted or resumed; this class keeps the connection: it joins through the reflector, resumes or
 * rejoins when the connection is lost (a {@link Rejoiner} says when, a {@link ReflectorRoute}
 * where: the next of several URLs, or the node a cluster redirected it to), sleeps while the page
 * is hidden, fails, and leaves.
 */
export class SessionController extends ControllerCore {
  #joinFrame: ((resumeSeq: number) => Promise<Uint8Array>) | undefined;
  #leaving: Promise<void> | undefined;
  /** A connection attempt is under way (its socket opening). */
  #attempting = false;

  /** Computes the session's identity and keys (slow on purpose: PBKDF2) and makes its controller. */
  static async create(params: JoinParameters): Promise<SessionController> {
    // Before the slow part: a reflector option that names no usable URL fails at once.
    const route = new ReflectorRoute(reflectorList(params.reflector));
    const viewId = randomViewId();
    const { identity, keys } = await identify(params, viewId);
    return new SessionController(params, viewId, identity, keys, route);
  }

  /** Connects, joins and catches up. Resolves once this client's own view-join was simulated and the root view built. */
  async start(session: unknown): Promise<void> {
    this.session = session;
    await this.persister.prepare();
    const joined = new Promise<void>((resolve, reject) => (this.current = { kind: "connecting", pending: { resolve, reject }, screen: undefined }));
    void this.#attempt();
    return joined;
  }

  /**
   * One connection attempt, at the URL the route names: opens a socket and sends the Join. If the
   * socket does not open, the next URL is tried at once; once all of them failed, a first join
   * fails, and a rejoin waits the backoff delay before the next pass.
   */
  async #attempt(): Promise<void> {
    const url = this.route.next();
    this.#attempting = true;
    let failure: unknown;
    try {
      await this.#connect(url);
    } catch (error) {
      failure = error ?? new Error("connecting failed");
    }
    this.#attempting = false;
    if (failure !== undefined) this.#attemptFailed(failure);
  }

  /** Opens a socket to `url` and sends the Join (the same for the first join and every rejoin, but for a fresh app token). */
  async #connect(url: string): Promise<void> {
    const p = this.params;
    this.#joinFrame ??= joinFrames(p, this.identity, this.keys, this.viewId, this.persister.joinSlot());
    // The token first: the reflector gives an open socket only a few seconds to send its Join.
    const frame = await this.#joinFrame(this.resumePoint());
    await this.conn.open(url, p.socket, p.timers, p.openTimeoutMs ?? OPEN_TIMEOUT_MS);
    const s = this.current;
    if (s.kind !== "connecting") {
      this.conn.close(1000, "left");
      return;
    }
    this.serverError = undefined;
    this.redirectTo = undefined;
    this.wentSilent = false;
    this.route.opened();
    this.current = { kind: "syncing", pending: s.pending, screen: s.screen, replica: undefined };
    this.rejoiner.connected();
    this.conn.send(frame);
  }

  /** An attempt's socket did not open (or the app's token function failed before it). */
  #attemptFailed(error: unknown): void {
    const s = this.latest();
    if (s.kind !== "connecting") return; // left (or failed) meanwhile
    // A JoinError here is the app's token function failing: no reflector URL is to blame.
    const token = error instanceof JoinError;
    const listed = !token && this.route.failed(false);
    if (s.pending) {
      if (token) this.fail(error);
      else if (this.route.unreachable) this.fail(unreachable(this.route.urls, error));
      // The first pass through the URLs goes on at once; after a redirect's target, the list again after a delay.
      else if (listed) void this.#attempt();
      else this.rejoiner.retry();
      return;
    }
    // The app's token function failed: say so (it may be why rejoining keeps failing), then retry.
    if (token) this.reportError("fetching the app token to rejoin", error);
    // Like the first join, a pass through the URLs goes on at once (a dead node costs no backoff
    // delay when another is up); after every one failed, the backoff delay.
    else if (listed && !this.route.passFailed) {
      void this.#attempt();
      return;
    }
    this.current = { kind: "disconnected", screen: s.screen };
    if (this.rejoiner.attempts === 3) this.params.ui?.message("warning", `Still trying to reach the reflector at ${this.route.urls.join(", ")}…`);
    this.rejoiner.retry();
  }

  protected override onClose(code: number, reason: string): void {
    const s = this.current;
    if (s.kind === "joined") s.stopLoop();
    this.rejoiner.disconnected();
    // Left or asleep, the close was ours. Failed, the session is over: it closed the socket itself,
    // and that close must not look like a lost connection and bring the session back.
    if (s.kind === "left" || s.kind === "sleeping" || s.kind === "failed" || s.kind === "disconnected") return;
    const pending = pendingOf(s);
    const verdict = classifyClose({ code, reason }, this.serverError, {
      joining: pending !== undefined,
      joinedOnce: pending === undefined,
      renewableToken: typeof this.params.token !== "string",
    });
    const named = this.redirectTo;
    this.serverError = undefined;
    this.redirectTo = undefined;
    if (verdict.kind === "authFailed") this.fail(authFailure(this.params, this.identity, verdict.detail));
    else if (verdict.kind === "redirect") this.#redirected(redirectTarget(named, this.route.current), named, verdict.detail);
    else if (verdict.kind === "moved") this.#moved(verdict.detail);
    else if (verdict.kind === "rejoin") {
      // A rejoin's connection that ended before the session was live on it, or went silent: try the next URL.
      if (s.kind !== "joined" || this.wentSilent) this.route.failed(true);
      this.#connectionLost(verdict.detail, false, false, verdict.code);
    } else this.fail(new SessionError(verdict.message, { code: verdict.code }));
  }

  /** The node does not own the session (4017): on to the node its Redirect named, at once (a redirect loop: after a delay). */
  #redirected(target: string | undefined, named: string | undefined, detail: string): void {
    if (target === undefined) {
      // No usable URL came with it: an ordinary lost connection, through the next URL.
      const what = named === undefined ? "without naming a node" : `to ${JSON.stringify(named.slice(0, 200))}, which is not a URL to follow`;
      this.reporter.moved(`The reflector at ${this.route.current} redirected the session ${what} (${detail}): reconnecting through the next reflector`);
      this.route.failed(true);
      this.#connectionLost(detail, false);
      return;
    }
    const atOnce = this.route.redirect(target);
    this.reporter.moved(`Session moved to ${target} (redirected by the reflector${atOnce ? "" : `; more than ${MAX_HOPS_AT_ONCE} redirects in a row, so after a delay`})`);
    this.#connectionLost(detail, true, atOnce);
  }

  /** The session moved off this node (4018): reconnect through the next URL, at once. */
  #moved(detail: string): void {
    const from = this.route.current;
    const atOnce = this.route.moved();
    this.reporter.moved(`Session moved off ${from} (${detail}): reconnecting through ${this.route.urls.length > 1 ? "the next reflector" : "it again"}`);
    this.#connectionLost(detail, true, atOnce);
  }

  /**
   * The connection dropped: keep the view on screen and rejoin, after the backoff delay unless
   * `atOnce`. A first join goes on connecting (only a cluster moving the session gets it here).
   * @param moved a cluster moved the session: no trouble to report.
   * @param code the close code, when the reflector gave one (the page is told why, where it says more than "lost").
   */
  #connectionLost(detail: string, moved: boolean, atOnce = false, code?: number): void {
    const s = this.current;
    const pending = pendingOf(s);
    this.current = pending ? { kind: "connecting", pending, screen: screenOf(s) } : { kind: "disconnected", screen: screenOf(s) };
    this.persister.connectionLost();
    this.stream.reset();
    this.reporter.connectionLost(this.params, detail, s.kind === "joined", moved, code);
    if (atOnce) void this.rejoin();
    else this.rejoiner.retry();
  }

  protected override async rejoin(): Promise<void> {
    const s = this.current;
    if (s.kind === "disconnected" || s.kind === "sleeping") this.current = { kind: "connecting", pending: undefined, screen: s.screen };
    // A first join waiting for its next attempt is connecting already (not while one is under way).
    else if (s.kind !== "connecting" || this.#attempting) return;
    await this.#attempt();
  }

  /** The page stayed hidden for `autoSleep` seconds: save, then disconnect until it is visible. */
  protected override async sleep(): Promise<void> {
    if (this.current.kind !== "joined") return;
    try {
      await this.flushPersistence();
    } catch (error) {
      this.reportError("saving persisted data", error);
    }
    // The page may have become visible again while saving: then it stays awake.
    if (!this.rejoiner.sleepWanted) return;
    if (this.asleep() && this.params.debug.has("session")) console.log(`[Lockstep] Page hidden for ${this.params.autoSleep} s: disconnecting until it is visible again`);
  }

  /**
   * Live, the session says Leave and disconnects until the page is visible again (asleep, or the
   * page is being unloaded): the others see this view exit now, not after the reflector's grace
   * period for lost connections. Returns whether it did.
   */
  protected override asleep(): boolean {
    const s = this.current;
    if (s.kind !== "joined") return false;
    s.stopLoop();
    this.current = { kind: "sleeping", screen: screenOf(s) };
    this.rejoiner.disconnected();
    this.persister.connectionLost();
    this.stream.reset();
    this.conn.send(encodeClientMessage({ type: MessageType.Leave }));
    this.conn.close(1000, "asleep");
    return true;
  }

  /** The page is visible again. */
  protected override wake(): void {
    if (this.current.kind !== "sleeping") return;
    this.rejoiner.woke();
    this.params.ui?.syncing(undefined);
    void this.rejoin();
  }

  /** A fatal problem: fails a pending join, or ends a running session. */
  protected override fail(error: Error): void {
    const s = this.current;
    if (s.kind === "left" || s.kind === "failed") return; // over already: what its socket still delivers changes nothing
    const pending = pendingOf(s);
    this.persister.dispose();
    if (s.kind === "joined") s.stopLoop();
    this.rejoiner.stop();
    if (pending) {
      this.current = { kind: "left", screen: undefined };
      const code = error instanceof SessionError || error instanceof JoinError ? error.closeCode : undefined;
      pending.reject(error instanceof JoinError ? error : new JoinError(`could not join: ${error.message}`, { cause: error, code }));
      this.conn.close(1000, "join failed");
      return;
    }
    this.current = { kind: "failed", screen: screenOf(this.current) };
    this.reportError("session", error);
    this.params.ui?.message("error", error.message);
    this.params.ui?.ended(this.identity.sessionId);
    this.conn.close(1000, "session failed");
  }

  leave(): Promise<void> {
    this.#leaving ??= this.#leave();
    return this.#leaving;
  }

  /**
   * Uploads persisted data not yet acknowledged (saves still waiting for their delay included) and
   * resolves once the reflector has it durably, or after a timeout.
   */
  async flushPersistence(): Promise<void> {
    if (this.current.kind !== "joined") return;
    this.feed();
    await this.persister.flush();
  }

  async #leave(): Promise<void> {
    if (this.current.kind === "left") return;
    // What this client saw saved must not leave with it: flush before saying goodbye.
    if (this.current.kind === "joined" && this.conn.isOpen) {
      try {
        await this.flushPersistence();
      } catch (error) {
        this.reportError("saving persisted data", error);
      }
    }
    const s = this.latest();
    if (s.kind === "left") return;
    this.persister.dispose();
    if (s.kind === "joined") s.stopLoop();
    this.rejoiner.stop();
    const wasOpen = this.conn.isOpen;
    const screen = screenOf(this.current);
    this.current = { kind: "left", screen };
    this.params.ui?.ended(this.identity.sessionId);
    if (wasOpen) this.conn.send(encodeClientMessage({ type: MessageType.Leave }));
    const closed = this.conn.closeAndWait(1000, "leave", this.params.timers, LEAVE_CLOSE_MS);
    this.domain.retire(screen?.rootView);
    await closed;
  }}
