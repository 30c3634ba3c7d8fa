import { CloseCode, FrameSlab, MessageType, every, realTimers, encodeRelay, encodeServerMessage, encodeTick, type Timers } from "@lockstep/protocol";
import type { PersistDataEntry, PersistedEntry, SnapshotRequestEntry, StreamEntry, ViewExitEntry, ViewJoinEntry } from "@lockstep/protocol";
import { createHash, timingSafeEqual } from "node:crypto";
import { isFenced } from "./cluster/types";
import { Outbox } from "./outbox";
import { SessionLog } from "./session-log";
import type { JoinOutcome, SessionAccess, SessionLogCaps, SessionOptionsOf } from "./session-options";
import { SessionSnapshots, type SessionSnapshot, type SnapshotPolicy } from "./session-snapshots";
import type { Logger } from "./logger";
import { SessionTime } from "./session-time";
import { DEFAULT_VIEW_GRACE_MS, SessionViews, sendAway, type SessionMember } from "./session-views";
import { SeqWaiters } from "./seq-waiters";

export type { SessionSnapshot, SnapshotPolicy } from "./session-snapshots";
export type { SessionMember } from "./session-views";
export type { JoinOutcome, SessionAccess, SessionLogCaps } from "./session-options";
/** Options of a {@link Session}. */
export type SessionOptions = SessionOptionsOf<Session>;

const EMPTY = new Uint8Array(0);
const UNBOUNDED: SessionLogCaps = { maxLogBytes: Infinity, maxLogMemoryBytes: Infinity };

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
  /** The public persistentId it was created with ("" if unknown). */
  readonly persistentId: string;
  /** Ticks per second, fixed when the session was created. */
  readonly tps: number;
  readonly #time: SessionTime;
  readonly #logger: Logger;
  readonly #onEmpty: (session: Session) => void;
  readonly #access: SessionAccess;
  readonly #policy: SnapshotPolicy;
  readonly #caps: SessionLogCaps;
  #snapshot: SessionSnapshot | undefined;
  readonly #snapshots: SessionSnapshots;
  #lastSnapshotTime = 0;
  readonly #views: SessionViews;
  /** The views in the stream at each open snapshot request's seq (stored with the snapshot). */
  readonly #requestViews = new Map<number, readonly string[]>();
  readonly #log: SessionLog;
  readonly #frames = new FrameSlab();
  #lastSeq = 0;
  /** Seq of the last entry sent out (stamped entries wait for storage before that). */
  #relayedSeq = 0;
  readonly #outbox: Outbox;
  readonly #storage: SessionOptions["storage"];
  readonly #onBroken: ((session: Session) => void) | undefined;
  readonly #mayServe: (() => boolean) | undefined;
  #sentSinceTick = false;
  readonly #timers: Timers;
  /** Stops the tick timer while the session has members. */
  #stopTicker: (() => void) | undefined;
  readonly #onTick = (): void => this.#tick();
  #disposed = false;
  readonly #persisted: Uint8Array;
  #historyRead: Promise<readonly StreamEntry[]> | undefined;
  /** Resumes waiting for entries of the old connection to be relayed ({@link relayedThrough}). */
  readonly #relayWaiters = new SeqWaiters();

  constructor(options: SessionOptions) {
    this.id = options.sessionId;
    this.persistentId = options.persistentId ?? "";
    this.tps = options.tps;
    const restored = options.restored;
    this.#timers = options.timers ?? realTimers;
    const storage = options.storage;
    this.#time = new SessionTime({
      clock: options.clock,
      start: Math.max(restored?.lastTime ?? 0, restored?.timeWatermark ?? 0),
      save: storage && ((time, exact) => storage.putTime(time, exact)),
      logger: options.logger,
      sessionId: this.id,
    });
    this.#views = new SessionViews({
      timers: this.#timers,
      graceMs: options.viewGraceMs ?? DEFAULT_VIEW_GRACE_MS,
      stampExit: (viewId) => this.#stampExit(viewId),
      membersChanged: (size) => (size === 0 ? this.#stopTicks() : this.#startTicks()),
      idle: () => this.#onEmpty(this),
    });
    this.#logger = options.logger;
    this.#onEmpty = options.onEmpty;
    // Copies: the registered bytes may view a socket's receive buffer.
    this.#access = { verifier: new Uint8Array(options.access.verifier), check: new Uint8Array(options.access.check) };
    this.#policy = options.snapshots;
    this.#caps = options.caps ?? UNBOUNDED;
    this.#storage = options.storage;
    this.#onBroken = options.onBroken;
    this.#mayServe = options.mayServe;
    this.#persisted = options.persisted ?? EMPTY;
    // Without storage nothing could be read back, so everything stays in memory.
    this.#log = new SessionLog(options.storage ? this.#caps.maxLogMemoryBytes : Infinity, restored?.snapshot?.seq ?? 0);
    this.#snapshots = new SessionSnapshots({
      sessionId: this.id,
      logger: this.#logger,
      timers: this.#timers,
      policy: this.#policy,
      memberIds: () => this.#views.memberIds(),
      isMember: (viewId) => this.#views.has(viewId),
      sendTo: (viewId, frame) => this.#views.get(viewId)?.send(frame),
      broadcast: (frame) => this.#broadcast(frame),
      appendRequest: () => {
        const entry: SnapshotRequestEntry = { type: MessageType.SnapshotRequest, seq: ++this.#lastSeq, time: this.#time.now() };
        this.#append(entry, encodeServerMessage(entry));
        this.#requestViews.set(entry.seq, this.#views.inStream());
        // Rounds abandoned unanswered leave their record: keep the latest few.
        if (this.#requestViews.size > 4) this.#requestViews.delete(this.#requestViews.keys().next().value as number);
        return entry;
      },
      stored: (snapshot) => this.#stored(snapshot),
    });
    this.#outbox = new Outbox({
      persist: options.storage?.appendEntries,
      deliver: (frame, entry) => this.#delivered(frame, entry),
      deliverAll: (frames, entries) => this.#delivered(frames, entries[entries.length - 1]!),
      onError: (error, entries) => this.#storageFailed(error, entries),
      maxInFlight: options.storage?.appendsInFlight,
    });
    if (restored) {
      this.#snapshot = restored.snapshot;
      for (const e of restored.entries) this.#log.push(e);
      this.#lastSeq = this.#relayedSeq = restored.lastSeq;
      this.#lastSnapshotTime = restored.snapshot?.time ?? 0;
      this.#log.evict(this.#relayedSeq);
      this.#views.restore(restored.liveViews ?? []);
    }
  }

  /** Resolves once every stamped entry was written and relayed. */
  drained(): Promise<void> {
    return this.#outbox.drained();
  }

  #storageFailed(error: unknown, entries: readonly StreamEntry[]): void {
    if (isFenced(error)) return this.moved(error.message);
    this.#logger.error("storage.append.failed", { sessionId: this.id, firstSeq: entries[0]?.seq, count: entries.length, error });
    // Entries not durable were never relayed, and relaying later ones would leave a gap: clients reconnect to what storage has.
    this.#end(undefined, CloseCode.InternalError, "the reflector could not store the session; reconnect");
    this.#onBroken?.(this);
  }

  /** Another cluster node owns the session now (a write was fenced) or this node's lease is not fresh: ends it here, members sent away with 4018. */
  moved(reason: string): void {
    if (this.#disposed) return;
    this.#logger.info("session.moved", { sessionId: this.id, lastSeq: this.#lastSeq, relayedSeq: this.#relayedSeq, reason });
    this.#end(undefined, CloseCode.SessionMoved, "the session moved to another reflector node; reconnect at once");
    this.#onBroken?.(this);
  }

  /** Stamps nothing more (a draining cluster node): members still get what was stamped; their Sends are dropped (sent again after rejoining). */
  freeze(): void {
    this.#disposed = true;
    this.#stopTicks();
    this.#snapshots.dispose();
  }

  /** Hands the session over once {@link freeze frozen} and drained: members go to `url`, or get `ServerShutdown` without one. */
  handOver(url: string | undefined): void {
    this.#end(url, url === undefined ? CloseCode.ServerShutdown : CloseCode.SessionMoved, "the reflector node is shutting down; reconnect");
  }

  #end(url: string | undefined, code: number, message: string): void {
    const members = [...this.#views.members()];
    this.dispose();
    sendAway(members, url, code, message);
  }

  /** Number of joined members. */
  get size(): number {
    return this.#views.size;
  }

  /** Whether nobody is joined and no view is within its grace period (the session may be dropped). */
  get empty(): boolean {
    return this.#views.empty;
  }

  /** Sequence number of the last entry (0 before the first). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Session time to show a client now (a Pong), in integer ms since the session was created: never ahead of what storage holds. */
  now(): number {
    return this.#time.visible();
  }

  /** Stores the time shown so far (a clean stop), so a restart continues from exactly there. */
  saveTime(): Promise<void> {
    return this.#time.save();
  }

  /** Whether `token` proves key possession: SHA-256(token) equals the registered verifier (compared in constant time). */
  admits(token: Uint8Array): boolean {
    const digest = createHash("sha256").update(token).digest();
    return digest.length === this.#access.verifier.length && timingSafeEqual(digest, this.#access.verifier);
  }

  /** Whether a member with this view id is joined. */
  hasView(viewId: string): boolean {
    return this.#views.has(viewId);
  }

  /** The joined member with this view id, if any. */
  member(viewId: string): SessionMember | undefined {
    return this.#views.get(viewId);
  }

  /** Whether `member` is the one that joined first among those present (it uploads persisted data). */
  isFirst(member: SessionMember): boolean {
    return this.#views.first() === member;
  }

  /** Whether a joiner's Sync needs the log's older entries read back from storage ({@link readHistory}). */
  get needsHistory(): boolean {
    return this.#storage !== undefined && this.#log.needsStorage();
  }

  /**
   * Reads the stored log back (for {@link join} when older entries left memory). Joiners arriving
   * together share one read, so a burst of them costs one copy of the log, not one each.
   */
  readHistory(): Promise<readonly StreamEntry[]> {
    if (this.#storage === undefined) return Promise.resolve([]);
    this.#historyRead ??= this.#storage.readEntries().finally(() => (this.#historyRead = undefined));
    return this.#historyRead;
  }

  /**
   * Admits `member`: sends it a `Sync` with the log so far, then stamps its view-join and broadcasts
   * it to every member including the joiner. A view that was away (its connection dropped, or the
   * reflector restarted) gets its view-exit first, as its models start over. `"taken"` (and nothing
   * done) when the view id is already live; `"needs-history"` when older entries left memory and
   * `history` (from {@link readHistory}) does not cover them: read it, then call again. `resumeSeq` > 0
   * asks to continue the view: if it is away and the log holds every entry after `resumeSeq`, the
   * member gets a resumed Sync of just those and nothing is stamped (`"resumed"`).
   */
  join(member: SessionMember, viewData: Uint8Array, history?: readonly StreamEntry[], resumeSeq = 0): JoinOutcome {
    if (this.#disposed || this.#views.has(member.viewId)) return "taken";
    const resume = this.canResume(member.viewId, resumeSeq);
    const entries = this.#log.entries(this.#relayedSeq, history, resume ? resumeSeq : undefined);
    if (entries === undefined) return "needs-history";
    // Entries stamped but still being stored go out after the Sync and must not be behind its time.
    const time = this.#outbox.pending ? this.#time.shown : this.#time.visible();
    member.sendSync(
      encodeServerMessage({
        type: MessageType.Sync,
        sessionId: this.id,
        viewId: member.viewId,
        time,
        seq: this.#relayedSeq,
        // A resumed replica has the state already; after a snapshot, the state holds what init made of the persisted data.
        snapshot: resume ? EMPTY : (this.#snapshot?.bytes ?? EMPTY),
        persisted: resume || this.#snapshot !== undefined ? EMPTY : this.#persisted,
        auth: this.#access.check,
        resumed: resume,
        entries,
      }),
    );
    const wasAway = this.#views.add(member);
    if (resume) return "resumed";
    if (wasAway) this.#stampExit(member.viewId);
    // viewData views the socket's receive buffer (maybe a pooled Buffer, where slice() would not
    // copy); the log needs bytes of its own.
    const entry: ViewJoinEntry = { type: MessageType.ViewJoin, seq: ++this.#lastSeq, time: this.#time.now(), viewId: member.viewId, viewData: new Uint8Array(viewData) };
    this.#append(entry, encodeServerMessage(entry));
    return "joined";
  }

  /**
   * Whether a Join of `viewId` with `resumeSeq` would continue its view: it is away (or live on an
   * old connection about to be replaced), and every entry after `resumeSeq` is still in the log.
   */
  canResume(viewId: string, resumeSeq: number): boolean {
    return resumeSeq > 0 && (this.#views.isAway(viewId) || this.#views.has(viewId)) && resumeSeq >= this.#log.snapshotSeq && resumeSeq <= this.#relayedSeq;
  }

  /** Resolves once every entry up to `seq` was stored and relayed (at once if it was). */
  relayedThrough(seq: number): Promise<void> {
    return this.#relayedSeq >= seq || this.#disposed ? Promise.resolve() : this.#relayWaiters.wait(seq);
  }

  /** Whether the log since the last snapshot reached `maxLogBytes`: Sends are refused until a snapshot trims it. */
  get logFull(): boolean {
    return this.#log.bytes >= this.#caps.maxLogBytes;
  }

  /**
   * Stamps `payload` and relays it to every member, the sender included. Returns its sequence number, undefined
   * (nothing stamped) when the log is full, or 0 once the session ended or froze. `payload` may view a receive
   * buffer: it is copied once, into a frame of this session's FrameSlab (its log frees frames in order).
   */
  relay(payload: Uint8Array): number | undefined {
    if (this.#disposed) return 0;
    if (this.logFull) {
      this.#snapshotSoon();
      return undefined;
    }
    const seq = ++this.#lastSeq;
    const time = this.#time.now();
    const frame = encodeRelay(seq, time, payload, this.#frames);
    const stored = frame.subarray(frame.length - payload.length);
    this.#append({ type: MessageType.Relay, seq, time, payload: stored }, frame);
    return seq;
  }

  /**
   * Removes `member` for good (it left), stamps its view-exit and broadcasts it to the remaining
   * members. Returns `false` if it was not a member (so every view-join gets exactly one view-exit).
   */
  exit(member: SessionMember): boolean {
    if (!this.#views.remove(member)) return false;
    this.#snapshots.left(member.viewId);
    this.#stampExit(member.viewId);
    this.#views.checkIdle();
    return true;
  }

  /**
   * Removes `member` whose connection was lost: its view stays in the stream for the grace period,
   * so a client that comes back in time keeps it; after that its view-exit is stamped. Returns
   * `false` if it was not a member.
   */
  away(member: SessionMember): boolean {
    if (!this.#views.remove(member)) return false;
    this.#snapshots.left(member.viewId);
    this.#views.leaveAway(member.viewId);
    // If the round waited for its vote alone, it just ended with nothing: ask the members still here.
    if (this.#snapshotDue(false)) this.requestSnapshot();
    return true;
  }

  #stampExit(viewId: string): void {
    if (this.#disposed) return;
    const entry: ViewExitEntry = { type: MessageType.ViewExit, seq: ++this.#lastSeq, time: this.#time.now(), viewId };
    this.#append(entry, encodeServerMessage(entry));
  }

  /** Stamps a Persisted entry: data of `slot` taken right after entry `upTo` is durable. */
  appendPersisted(slot: string, upTo: number, size: number, hash: Uint8Array): void {
    if (this.#disposed) return;
    const entry: PersistedEntry = { type: MessageType.Persisted, seq: ++this.#lastSeq, time: this.#time.now(), slot, upTo, size, hash };
    this.#append(entry, encodeServerMessage(entry));
  }

  /**
   * Stamps a PersistData entry: the latest data of `slot`, answering the load named `requestSeq`.
   * Returns false (nothing stamped) when the log is full.
   */
  appendPersistData(slot: string, requestSeq: number, blob: Uint8Array): boolean {
    if (this.#disposed) return false;
    if (this.logFull) {
      this.#snapshotSoon();
      return false;
    }
    const entry: PersistDataEntry = { type: MessageType.PersistData, seq: ++this.#lastSeq, time: this.#time.now(), slot, requestSeq, blob };
    this.#append(entry, encodeServerMessage(entry));
    return true;
  }

  /** Stops the ticks and forgets every member, without stamping exits (reflector shutdown). */
  dispose(): void {
    this.#disposed = true;
    this.#stopTicks();
    this.#snapshots.dispose();
    this.#views.dispose();
    this.#relayWaiters.releaseAll();
  }

  #append(entry: StreamEntry, frame: Uint8Array): void {
    if (entry.type === MessageType.ViewJoin) this.#views.stamped("join", entry.viewId);
    else if (entry.type === MessageType.ViewExit) this.#views.stamped("exit", entry.viewId);
    this.#log.push(entry);
    this.#sentSinceTick = true;
    this.#outbox.push(entry, frame);
    this.#log.evict(this.#relayedSeq);
    if (this.#snapshotDue(false)) this.#snapshotSoon();
  }

  /** The latest snapshot, if any. */
  get snapshot(): SessionSnapshot | undefined {
    return this.#snapshot;
  }

  /** Entries kept since the latest snapshot (what a joiner replays). */
  get logLength(): number {
    return this.#log.length;
  }

  /** Bytes of the log since the latest snapshot. */
  get logBytes(): number {
    return this.#log.bytes;
  }

  /**
   * Appends a SnapshotRequest entry: every member snapshots right after it and votes. Returns its
   * seq, or undefined if there is nobody to ask or a round is under way.
   */
  requestSnapshot(): number | undefined {
    if (this.#views.size === 0 || this.#disposed) return undefined;
    return this.#snapshots.request();
  }

  #snapshotSoon(): void {
    if (!this.#snapshots.active) this.requestSnapshot();
  }

  /** A member's vote for the snapshot at `seq`. */
  vote(member: SessionMember, seq: number, hash: Uint8Array): void {
    this.#snapshots.vote(member.viewId, seq, hash);
  }

  /**
   * A chunk of a member's snapshot upload (a whole SnapshotUpload is one chunk). Kept only from
   * the elected uploader, for the round's seq and majority hash.
   * @throws {ProtocolError} if the elected uploader's chunks do not continue its upload.
   */
  uploadChunk(member: SessionMember, seq: number, hash: Uint8Array, total: number, offset: number, data: Uint8Array): boolean {
    return this.#snapshots.chunk(member.viewId, seq, hash, total, offset, data) !== undefined;
  }

  #stored(snapshot: SessionSnapshot): void {
    this.#snapshot = snapshot;
    this.#log.trim(snapshot.seq);
    this.#lastSnapshotTime = snapshot.time;
    this.#logger.info("snapshot.stored", { sessionId: this.id, seq: snapshot.seq, bytes: snapshot.bytes.length, logKept: this.#log.length });
    const views = this.#requestViews.get(snapshot.seq) ?? [];
    for (const seq of this.#requestViews.keys()) if (seq <= snapshot.seq) this.#requestViews.delete(seq);
    this.#storage?.putSnapshot(snapshot, views).catch((error: unknown) => {
      if (isFenced(error)) return this.moved("its snapshot write was fenced");
      // The log still holds every entry since the previous stored snapshot: nothing is lost.
      this.#logger.error("storage.snapshot.failed", { sessionId: this.id, seq: snapshot.seq, error });
    });
    // Under load, the entries that arrived during this round may already call for the next one.
    if (this.#snapshotDue()) this.requestSnapshot();
  }

  /**
   * Whether a snapshot is due: by entries, bytes or (`byTime`) time since the last one. While a view is away only
   * the byte bound counts (a snapshot trims the log it would resume from: it waits, at most the grace period).
   */
  #snapshotDue(byTime = true): boolean {
    if (this.#snapshots.active || this.#log.length === 0) return false;
    if (this.#log.bytes >= this.#caps.maxLogBytes / 2) return true;
    if (this.#views.anyAway) return false;
    return this.#log.length >= this.#policy.everyMessages || (byTime && this.#time.now() - this.#lastSnapshotTime >= this.#policy.everyMs);
  }

  /** Entries through `last` are stored: their frames (one, or a batch) go out. */
  #delivered(frames: Uint8Array | readonly Uint8Array[], last: StreamEntry): void {
    this.#relayedSeq = last.seq;
    this.#time.relayed(last.time);
    this.#broadcast(frames);
    this.#relayWaiters.reached(last.seq);
  }

  #broadcast(frames: Uint8Array | readonly Uint8Array[]): void {
    // A cluster node checks its lease before every send: after a pause it may no longer own the session.
    if (this.#mayServe !== undefined && !this.#mayServe()) return this.moved("this node's lease is not fresh");
    if (frames instanceof Uint8Array) this.#views.broadcast(frames);
    else this.#views.broadcastAll(frames);
  }

  #startTicks(): void {
    if (this.#stopTicker !== undefined || this.#disposed) return;
    this.#time.extend(); // before the first tick needs it
    this.#sentSinceTick = false;
    this.#stopTicker = every(this.#timers, 1000 / this.tps, this.#onTick);
  }

  #stopTicks(): void {
    if (this.#stopTicker === undefined) return;
    this.#stopTicker();
    this.#stopTicker = undefined;
  }

  #tick(): void {
    try {
      if (this.#snapshotDue()) this.requestSnapshot();
      // An entry carries its time; and a tick must never overtake an entry still being stored.
      if (this.#sentSinceTick || this.#outbox.pending) {
        this.#sentSinceTick = false;
        return;
      }
      this.#broadcast(encodeTick(this.#time.visible()));
    } catch (error) {
      this.#logger.error("tick.failed", { sessionId: this.id, error });
    }
  }
}
