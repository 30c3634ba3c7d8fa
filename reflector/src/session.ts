import {
  MessageType,
  encodeRelay,
  encodeServerMessage,
  encodeTick,
  type StreamEntry,
  type ViewExitEntry,
  type ViewJoinEntry,
} from "@lockstep/protocol";
import { createHash, timingSafeEqual } from "node:crypto";
import { SessionClock, type Clock } from "./clock";
import type { Logger } from "./logger";

/** A joined client as a session sees it: a view id and a way to send it frames. */
export interface SessionMember {
  readonly viewId: string;
  /** Sends one encoded frame. Must not throw; a dead member is removed through {@link Session.exit}. */
  send(frame: Uint8Array): void;
}

/** Options of a {@link Session}. */
export interface SessionOptions {
  readonly sessionId: string;
  /** Ticks per second while the session has members. */
  readonly tps: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Called when the last member exits (the session stays in memory until its owner drops it). */
  readonly onEmpty: (session: Session) => void;
  /** What the creating client registered: SHA-256 of the access token, and the password check envelope. */
  readonly access: SessionAccess;
}

/** A session's admission data, registered by the client that created it. */
export interface SessionAccess {
  readonly verifier: Uint8Array;
  readonly check: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/**
 * One session's sequencer: it stamps every entry with the next sequence number and the session
 * time, keeps the ordered log a joiner is synced from, and broadcasts each entry, encoded once,
 * to every member. While nobody sends, it ticks `tps` times a second so model time advances.
 *
 * Node runs this on one thread and every broadcast is synchronous, so all members receive entries
 * in exactly the order they were stamped.
 */
export class Session {
  /** The session's id (as sent by its joiners). */
  readonly id: string;
  /** Ticks per second, fixed when the session was created. */
  readonly tps: number;
  readonly #clock: SessionClock;
  readonly #logger: Logger;
  readonly #onEmpty: (session: Session) => void;
  readonly #access: SessionAccess;
  readonly #members = new Map<string, SessionMember>();
  // Until snapshots trim it, the log is every entry since the session was created.
  readonly #log: StreamEntry[] = [];
  #lastSeq = 0;
  #sentSinceTick = false;
  #ticker: ReturnType<typeof setInterval> | undefined;
  #disposed = false;

  constructor(options: SessionOptions) {
    this.id = options.sessionId;
    this.tps = options.tps;
    this.#clock = new SessionClock(options.clock);
    this.#logger = options.logger;
    this.#onEmpty = options.onEmpty;
    // Copies: the registered bytes may view a socket's receive buffer.
    this.#access = { verifier: new Uint8Array(options.access.verifier), check: new Uint8Array(options.access.check) };
  }

  /** Number of joined members. */
  get size(): number {
    return this.#members.size;
  }

  /** Sequence number of the last entry (0 before the first). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Session time now, in integer ms since the session was created. */
  now(): number {
    return this.#clock.now();
  }

  /**
   * Whether `token` proves key possession: SHA-256(token) equals the registered verifier
   * (compared in constant time).
   */
  admits(token: Uint8Array): boolean {
    const digest = createHash("sha256").update(token).digest();
    return digest.length === this.#access.verifier.length && timingSafeEqual(digest, this.#access.verifier);
  }

  /** Whether a member with this view id is joined. */
  hasView(viewId: string): boolean {
    return this.#members.has(viewId);
  }

  /**
   * Admits `member`: sends it a `Sync` with the log so far, then stamps its view-join and broadcasts
   * it to every member including the joiner. Returns `false` (and does nothing) when the view id
   * is already taken.
   */
  join(member: SessionMember, viewData: Uint8Array): boolean {
    if (this.#disposed || this.#members.has(member.viewId)) return false;
    const time = this.now();
    member.send(
      encodeServerMessage({
        type: MessageType.Sync,
        sessionId: this.id,
        viewId: member.viewId,
        time,
        seq: this.#lastSeq,
        snapshot: EMPTY,
        persisted: EMPTY,
        auth: this.#access.check,
        entries: this.#log,
      }),
    );
    this.#members.set(member.viewId, member);
    if (this.#members.size === 1) this.#startTicks();
    // viewData views the socket's receive buffer (maybe a pooled Buffer, where slice() would not
    // copy); the log needs bytes of its own.
    const entry: ViewJoinEntry = { type: MessageType.ViewJoin, seq: ++this.#lastSeq, time, viewId: member.viewId, viewData: new Uint8Array(viewData) };
    this.#append(entry, encodeServerMessage(entry));
    return true;
  }

  /**
   * Stamps `payload` and relays it to every member, the sender included. Returns its sequence number.
   * `payload` may be a view into a receive buffer: it is copied exactly once, into the outgoing frame.
   */
  relay(payload: Uint8Array): number {
    const seq = ++this.#lastSeq;
    const time = this.now();
    const frame = encodeRelay(seq, time, payload);
    // A Relay frame ends with its payload, so the log entry views the frame's tail: one copy of the
    // bytes serves both the wire and the log.
    const stored = frame.subarray(frame.length - payload.length);
    this.#append({ type: MessageType.Relay, seq, time, payload: stored }, frame);
    return seq;
  }

  /**
   * Removes `member`, stamps its view-exit and broadcasts it to the remaining members. Returns
   * `false` if it was not a member (so every view-join gets exactly one view-exit).
   */
  exit(member: SessionMember): boolean {
    if (this.#members.get(member.viewId) !== member) return false;
    this.#members.delete(member.viewId);
    const entry: ViewExitEntry = { type: MessageType.ViewExit, seq: ++this.#lastSeq, time: this.now(), viewId: member.viewId };
    this.#append(entry, encodeServerMessage(entry));
    if (this.#members.size === 0) {
      this.#stopTicks();
      this.#onEmpty(this);
    }
    return true;
  }

  /** Stops the ticks and forgets every member, without stamping exits (reflector shutdown). */
  dispose(): void {
    this.#disposed = true;
    this.#stopTicks();
    this.#members.clear();
  }

  #append(entry: StreamEntry, frame: Uint8Array): void {
    this.#log.push(entry);
    this.#broadcast(frame);
    this.#sentSinceTick = true;
  }

  #broadcast(frame: Uint8Array): void {
    for (const member of this.#members.values()) member.send(frame);
  }

  #startTicks(): void {
    if (this.#ticker !== undefined || this.#disposed) return;
    this.#sentSinceTick = false;
    this.#ticker = setInterval(() => this.#tick(), 1000 / this.tps);
  }

  #stopTicks(): void {
    if (this.#ticker === undefined) return;
    clearInterval(this.#ticker);
    this.#ticker = undefined;
  }

  #tick(): void {
    try {
      // An entry carries its time, so a tick right after one would tell clients nothing new.
      if (this.#sentSinceTick) {
        this.#sentSinceTick = false;
        return;
      }
      this.#broadcast(encodeTick(this.now()));
    } catch (error) {
      this.#logger.error("tick.failed", { sessionId: this.id, error });
    }
  }
}
