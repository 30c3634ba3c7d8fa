import {
  MessageType,
  CloseCode,
  encodeRelay,
  encodeServerMessage,
  encodeTick,
  type PersistDataEntry,
  type PersistedEntry,
  type SnapshotRequestEntry,
  type StreamEntry,
  type ViewExitEntry,
  type ViewJoinEntry,
} from "@lockstep/protocol";
import { createHash, timingSafeEqual } from "node:crypto";
import { SessionClock, type Clock } from "./clock";
import { Outbox, type PersistEntries } from "./outbox";
import { SnapshotRound } from "./snapshot-round";
import type { Logger } from "./logger";

/** A joined client as a session sees it: a view id and a way to send it frames. */
export interface SessionMember {
  readonly viewId: string;
  /** Sends one encoded frame. Must not throw; a dead member is removed through {@link Session.exit}. */
  send(frame: Uint8Array): void;
  /** Sends an Error frame and closes the member's socket with `code`. */
  fail(code: number, message: string): void;
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
  /** When to take snapshots. */
  readonly snapshots: SnapshotPolicy;
  /** Durable storage of entries (relayed only once written) and snapshots; none: memory only. */
  readonly storage?: {
    readonly appendEntries: PersistEntries;
    readonly putSnapshot: (snapshot: SessionSnapshot) => Promise<void>;
  };
  /** What a restarted reflector loaded from storage, to continue from. */
  readonly restored?: {
    readonly snapshot: SessionSnapshot | undefined;
    readonly entries: readonly StreamEntry[];
    readonly lastSeq: number;
    readonly lastTime: number;
  };
  /** The session cannot go on (storage failed): its members were closed; forget it. */
  readonly onBroken?: (session: Session) => void;
  /** Persisted data (opaque) the session started from, sent to joiners until the first snapshot. */
  readonly persisted?: Uint8Array;
}

/** When a session asks its clients for a snapshot, and how long it waits for them. */
export interface SnapshotPolicy {
  /** Ask after this many entries since the last snapshot. */
  readonly everyMessages: number;
  /** Ask when this much session time (ms) passed since the last snapshot and anything happened. */
  readonly everyMs: number;
  /** How long to wait for votes, and then for each elected uploader, in ms. */
  readonly voteTimeoutMs: number;
}

/** A snapshot the session keeps: the encrypted state right after entry `seq`. */
export interface SessionSnapshot {
  readonly seq: number;
  readonly time: number;
  readonly bytes: Uint8Array;
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
  readonly #policy: SnapshotPolicy;
  #snapshot: SessionSnapshot | undefined;
  #round: SnapshotRound | undefined;
  #roundTimer: ReturnType<typeof setTimeout> | undefined;
  #sinceSnapshot = 0;
  #lastSnapshotTime = 0;
  readonly #members = new Map<string, SessionMember>();
  // Until snapshots trim it, the log is every entry since the session was created.
  readonly #log: StreamEntry[] = [];
  #lastSeq = 0;
  /** Seq of the last entry sent out (stamped entries wait for storage before that). */
  #relayedSeq = 0;
  readonly #outbox: Outbox;
  readonly #storage: SessionOptions["storage"];
  readonly #onBroken: ((session: Session) => void) | undefined;
  #sentSinceTick = false;
  #ticker: ReturnType<typeof setInterval> | undefined;
  #disposed = false;
  readonly #persisted: Uint8Array;

  constructor(options: SessionOptions) {
    this.id = options.sessionId;
    this.tps = options.tps;
    const restored = options.restored;
    this.#clock = new SessionClock(options.clock, restored?.lastTime ?? 0);
    this.#logger = options.logger;
    this.#onEmpty = options.onEmpty;
    // Copies: the registered bytes may view a socket's receive buffer.
    this.#access = { verifier: new Uint8Array(options.access.verifier), check: new Uint8Array(options.access.check) };
    this.#policy = options.snapshots;
    this.#storage = options.storage;
    this.#onBroken = options.onBroken;
    this.#persisted = options.persisted ?? EMPTY;
    this.#outbox = new Outbox({
      persist: options.storage?.appendEntries,
      deliver: (frame, entry) => {
        this.#relayedSeq = entry.seq;
        this.#broadcast(frame);
      },
      onError: (error, entries) => this.#storageFailed(error, entries),
    });
    if (restored) {
      this.#snapshot = restored.snapshot;
      this.#log.push(...restored.entries);
      this.#lastSeq = this.#relayedSeq = restored.lastSeq;
      this.#sinceSnapshot = restored.entries.length;
      this.#lastSnapshotTime = restored.snapshot?.time ?? 0;
    }
  }

  /** Resolves once every stamped entry was written and relayed. */
  drained(): Promise<void> {
    return this.#outbox.drained();
  }

  #storageFailed(error: unknown, entries: readonly StreamEntry[]): void {
    this.#logger.error("storage.append.failed", { sessionId: this.id, firstSeq: entries[0]?.seq, count: entries.length, error });
    // Stamped entries that are not durable were never relayed; relaying later ones would leave a
    // gap. End the session in memory: clients reconnect and continue from what storage has.
    const members = [...this.#members.values()];
    this.dispose();
    for (const m of members) m.fail(CloseCode.InternalError, "the reflector could not store the session; reconnect");
    this.#onBroken?.(this);
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

  /** The joined member with this view id, if any. */
  member(viewId: string): SessionMember | undefined {
    return this.#members.get(viewId);
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
        seq: this.#relayedSeq,
        snapshot: this.#snapshot?.bytes ?? EMPTY,
        // After a snapshot, the state already holds what init made of the persisted data.
        persisted: this.#snapshot === undefined ? this.#persisted : EMPTY,
        auth: this.#access.check,
        entries: this.#lastSeq === this.#relayedSeq ? this.#log : this.#log.slice(0, this.#log.length - (this.#lastSeq - this.#relayedSeq)),
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
    // A round still collecting votes stops waiting for a member that left.
    const round = this.#round;
    if (round !== undefined && round.majority === undefined && round.forget(member.viewId)) this.#concludeVotes();
    if (this.#members.size === 0) {
      this.#stopTicks();
      this.#onEmpty(this);
    }
    return true;
  }

  /** Whether the session was disposed (dropped from memory, shut down or broken): it stamps nothing more. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Stamps a Persisted entry: data of `slot` taken right after entry `upTo` is durable. */
  appendPersisted(slot: string, upTo: number, size: number, hash: Uint8Array): void {
    if (this.#disposed) return;
    const entry: PersistedEntry = { type: MessageType.Persisted, seq: ++this.#lastSeq, time: this.now(), slot, upTo, size, hash };
    this.#append(entry, encodeServerMessage(entry));
  }

  /** Stamps a PersistData entry: the latest data of `slot`, answering the load named `requestSeq`. */
  appendPersistData(slot: string, requestSeq: number, blob: Uint8Array): void {
    if (this.#disposed) return;
    const entry: PersistDataEntry = { type: MessageType.PersistData, seq: ++this.#lastSeq, time: this.now(), slot, requestSeq, blob };
    this.#append(entry, encodeServerMessage(entry));
  }

  /** Stops the ticks and forgets every member, without stamping exits (reflector shutdown). */
  dispose(): void {
    this.#disposed = true;
    this.#stopTicks();
    this.#clearRoundTimer();
    this.#members.clear();
  }

  #append(entry: StreamEntry, frame: Uint8Array): void {
    this.#log.push(entry);
    this.#sentSinceTick = true;
    this.#outbox.push(entry, frame);
    if (++this.#sinceSnapshot >= this.#policy.everyMessages && this.#round === undefined) this.requestSnapshot();
  }

  /** The latest snapshot, if any. */
  get snapshot(): SessionSnapshot | undefined {
    return this.#snapshot;
  }

  /** Entries kept since the latest snapshot (what a joiner replays). */
  get logLength(): number {
    return this.#log.length;
  }

  /**
   * Appends a SnapshotRequest entry: every member snapshots right after it and votes. Returns its
   * seq, or undefined if there is nobody to ask or a round is under way.
   */
  requestSnapshot(): number | undefined {
    if (this.#members.size === 0 || this.#round !== undefined || this.#disposed) return undefined;
    const entry: SnapshotRequestEntry = { type: MessageType.SnapshotRequest, seq: ++this.#lastSeq, time: this.now() };
    this.#round = new SnapshotRound(entry.seq, entry.time, this.#members.keys());
    this.#append(entry, encodeServerMessage(entry));
    this.#setRoundTimer(() => this.#concludeVotes());
    return entry.seq;
  }

  /** A member's vote for the snapshot at `seq`. */
  vote(member: SessionMember, seq: number, hash: Uint8Array): void {
    const round = this.#round;
    if (round === undefined || round.seq !== seq || round.majority !== undefined) return;
    if (round.vote(member.viewId, hash)) this.#concludeVotes();
  }

  /** A member's upload of the snapshot at `seq`. Kept only if its hash is the majority's. */
  upload(member: SessionMember, seq: number, hash: Uint8Array, bytes: Uint8Array): boolean {
    const round = this.#round;
    if (round === undefined || !round.accepts(seq, hash)) {
      this.#logger.warn("snapshot.rejected", { sessionId: this.id, viewId: member.viewId, seq, expected: round?.seq });
      return false;
    }
    this.#clearRoundTimer();
    this.#round = undefined;
    this.#snapshot = { seq, time: round.time, bytes: new Uint8Array(bytes) };
    let trim = 0;
    while (trim < this.#log.length && this.#log[trim]!.seq <= seq) trim++;
    this.#log.splice(0, trim);
    this.#sinceSnapshot = this.#log.length;
    this.#lastSnapshotTime = round.time;
    this.#logger.info("snapshot.stored", { sessionId: this.id, seq, bytes: bytes.length, viewId: member.viewId, logKept: this.#log.length });
    this.#storage?.putSnapshot(this.#snapshot).catch((error: unknown) => {
      // The log still holds every entry since the previous stored snapshot: nothing is lost.
      this.#logger.error("storage.snapshot.failed", { sessionId: this.id, seq, error });
    });
    // Under load, the entries that arrived during this round may already call for the next one.
    if (this.#snapshotDue()) this.requestSnapshot();
    return true;
  }

  #snapshotDue(): boolean {
    if (this.#round !== undefined || this.#sinceSnapshot === 0) return false;
    return this.#sinceSnapshot >= this.#policy.everyMessages || this.now() - this.#lastSnapshotTime >= this.#policy.everyMs;
  }

  #concludeVotes(): void {
    const round = this.#round;
    if (round === undefined) return;
    this.#clearRoundTimer();
    const decision = round.decide();
    if (decision === undefined) {
      this.#logger.warn("snapshot.abandoned", { sessionId: this.id, seq: round.seq, reason: "no votes" });
      this.#round = undefined;
      return;
    }
    if (decision.counts.size > 1) {
      this.#logger.warn("snapshot.divergence", { sessionId: this.id, seq: round.seq, votes: [...decision.counts.values()].sort((a, b) => b - a) });
      this.#broadcast(encodeServerMessage({ type: MessageType.Divergence, seq: round.seq, hash: Buffer.from(decision.majority, "hex") }));
    }
    this.#askForUpload();
  }

  #askForUpload(): void {
    const round = this.#round;
    if (round === undefined) return;
    const viewId = round.elect((id) => this.#members.has(id));
    if (viewId === undefined) {
      this.#logger.warn("snapshot.abandoned", { sessionId: this.id, seq: round.seq, reason: "no uploader" });
      this.#round = undefined;
      return;
    }
    this.#members.get(viewId)!.send(encodeServerMessage({ type: MessageType.UploadRequest, seq: round.seq }));
    this.#setRoundTimer(() => this.#askForUpload());
  }

  #setRoundTimer(fn: () => void): void {
    this.#clearRoundTimer();
    this.#roundTimer = setTimeout(() => {
      try {
        fn();
      } catch (error) {
        this.#logger.error("snapshot.failed", { sessionId: this.id, error });
      }
    }, this.#policy.voteTimeoutMs);
  }

  #clearRoundTimer(): void {
    if (this.#roundTimer !== undefined) clearTimeout(this.#roundTimer);
    this.#roundTimer = undefined;
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
      if (this.#snapshotDue()) this.requestSnapshot();
      // An entry carries its time; and a tick must never overtake an entry still being stored.
      if (this.#sentSinceTick || this.#outbox.pending) {
        this.#sentSinceTick = false;
        return;
      }
      this.#broadcast(encodeTick(this.now()));
    } catch (error) {
      this.#logger.error("tick.failed", { sessionId: this.id, error });
    }
  }
}
