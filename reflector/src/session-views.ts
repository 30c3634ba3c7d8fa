import type { TimerHandle, Timers } from "@lockstep/protocol";

/** A joined client as a session sees it: a view id and a way to send it frames. */
export interface SessionMember {
  readonly viewId: string;
  /** Sends one encoded frame. Must not throw; a dead member is removed through `Session.exit`/`away`. */
  send(frame: Uint8Array): void;
  /** Optional: sends `frames` in order, as send() of each would (in fewer writes). */
  sendAll?(frames: readonly Uint8Array[]): void;
  /** Sends the joiner's Sync (which may be far larger than other frames). */
  sendSync(frame: Uint8Array): void;
  /** Sends an Error frame and closes the member's socket with `code`. */
  fail(code: number, message: string): void;
  /** Sends the member to another node of the cluster (a Redirect frame, close 4017); members without it are failed with `SessionMoved`. */
  redirect?(url: string): void;
}

/** Closes `members` (a session that ends here): redirected to `url` when given and they can be, else failed with `code`. */
export function sendAway(members: readonly SessionMember[], url: string | undefined, code: number, message: string): void {
  for (const m of members) {
    if (url !== undefined && m.redirect !== undefined) m.redirect(url);
    else m.fail(code, message);
  }
}

/** Default grace period for a view whose connection dropped (or that was live when the reflector stopped), in ms. */
export const DEFAULT_VIEW_GRACE_MS = 10_000;

/** What {@link SessionViews} asks of its session. */
export interface ViewsHost {
  readonly timers: Timers;
  /** How long an away view keeps its place before its view-exit is stamped. */
  readonly graceMs: number;
  /** Stamps the view-exit of `viewId` (it is in the stream and has no member). */
  stampExit(viewId: string): void;
  /** The number of members changed from or to zero. */
  membersChanged(size: number): void;
  /** No members and no away views are left. */
  idle(): void;
}

/**
 * A session's membership, as two sets that differ when connections drop: the *members* (views with
 * a live connection, which receive the stream) and the views *in the stream* (a view-join without
 * its view-exit yet, which is what every model sees). A view whose connection dropped, or that was
 * live when the reflector stopped, is *away*: in the stream, without a member, until it comes back
 * within the grace period or its view-exit is stamped. So a blip costs no view-exit, and a crash
 * leaves no ghost: every view-join is paired with exactly one view-exit.
 */
export class SessionViews {
  readonly #host: ViewsHost;
  readonly #members = new Map<string, SessionMember>();
  readonly #inStream = new Set<string>();
  readonly #away = new Map<string, TimerHandle>();

  constructor(host: ViewsHost) {
    this.#host = host;
  }

  get size(): number {
    return this.#members.size;
  }

  /** Whether nobody is joined and no view is waiting to come back. */
  get empty(): boolean {
    return this.#members.size === 0 && this.#away.size === 0;
  }

  get(viewId: string): SessionMember | undefined {
    return this.#members.get(viewId);
  }

  has(viewId: string): boolean {
    return this.#members.has(viewId);
  }

  members(): IterableIterator<SessionMember> {
    return this.#members.values();
  }

  /** Sends `frame` to every member. */
  broadcast(frame: Uint8Array): void {
    for (const member of this.#members.values()) member.send(frame);
  }

  /** Sends `frames` to every member, in order: one batch object for all, so a socket may frame it once for everyone. */
  broadcastAll(frames: readonly Uint8Array[]): void {
    for (const member of this.#members.values()) {
      if (member.sendAll !== undefined) member.sendAll(frames);
      else for (const frame of frames) member.send(frame);
    }
  }

  memberIds(): IterableIterator<string> {
    return this.#members.keys();
  }

  /** The first member that joined among those present. */
  first(): SessionMember | undefined {
    for (const member of this.#members.values()) return member;
    return undefined;
  }

  /** The views in the stream now (joined, not exited), in join order: what a snapshot records. */
  inStream(): string[] {
    return [...this.#inStream];
  }

  /** Whether any view is away (in the stream, within its grace period, without a connection). */
  get anyAway(): boolean {
    return this.#away.size > 0;
  }

  /** Whether `viewId` is in the stream without a connection, within its grace period. */
  isAway(viewId: string): boolean {
    return this.#away.has(viewId);
  }

  /** Follows the stream: every stamped view-join and view-exit passes here. */
  stamped(type: "join" | "exit", viewId: string): void {
    if (type === "join") this.#inStream.add(viewId);
    else this.#inStream.delete(viewId);
  }

  /** A reloaded session's views that were in the stream when the reflector stopped: away, with a grace period. */
  restore(viewIds: readonly string[]): void {
    for (const viewId of viewIds) {
      this.#inStream.add(viewId);
      this.#leaveAway(viewId);
    }
  }

  /** Adds a member; if its view was away, it is back (the caller decides what to stamp). Returns whether it was away. */
  add(member: SessionMember): boolean {
    const wasAway = this.#cancelAway(member.viewId);
    this.#members.set(member.viewId, member);
    if (this.#members.size === 1) this.#host.membersChanged(1);
    return wasAway;
  }

  /** Removes `member` if it is the current member of its view. */
  remove(member: SessionMember): boolean {
    if (this.#members.get(member.viewId) !== member) return false;
    this.#members.delete(member.viewId);
    if (this.#members.size === 0) this.#host.membersChanged(0);
    return true;
  }

  /** `viewId` just lost its member: keep it in the stream for the grace period (or stamp its exit now, without one). */
  leaveAway(viewId: string): void {
    if (this.#inStream.has(viewId)) this.#leaveAway(viewId);
    this.#checkIdle();
  }

  /** Called after a member was removed for good. */
  checkIdle(): void {
    this.#checkIdle();
  }

  /** Cancels every grace timer (the session is disposed: its away views stay in storage's record). */
  dispose(): void {
    for (const timer of this.#away.values()) this.#host.timers.clearTimeout(timer);
    this.#away.clear();
    this.#members.clear();
  }

  #leaveAway(viewId: string): void {
    this.#cancelAway(viewId);
    if (this.#host.graceMs <= 0) {
      this.#host.stampExit(viewId);
      return;
    }
    const timer = this.#host.timers.setTimeout(() => {
      this.#away.delete(viewId);
      if (!this.#members.has(viewId) && this.#inStream.has(viewId)) this.#host.stampExit(viewId);
      this.#checkIdle();
    }, this.#host.graceMs);
    this.#away.set(viewId, timer);
  }

  #cancelAway(viewId: string): boolean {
    const timer = this.#away.get(viewId);
    if (timer === undefined) return false;
    this.#host.timers.clearTimeout(timer);
    this.#away.delete(viewId);
    return true;
  }

  #checkIdle(): void {
    if (this.empty) this.#host.idle();
  }
}
