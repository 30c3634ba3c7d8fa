/*
 * Storage layout (keys in the BlobStore; <id> is the sessionId):
 *
 *   sessions/<id>/meta            JSON {format: 1, sessionId, persistentId, tps, verifier, check
 *                                 (base64), createdAt}. Written once by create(); its presence is
 *                                 what makes a session exist.
 *   sessions/<id>/persisted       The persisted data (opaque) the session started from, if any: the
 *                                 slot's latest version when the session was created. Written
 *                                 before meta, never changed.
 *   sessions/<id>/snapshot        "S", format 2, varUint seq, varUint time, varUint view count,
 *                                 each live view id as a length-prefixed UTF-8 string, then the
 *                                 opaque snapshot bytes. Replaced whole by putSnapshot(). Format 1
 *                                 (no view count or ids) is still read: its live views are unknown.
 *   sessions/<id>/clock           "C", format 1, varUint time: the time watermark, a promise that
 *                                 no client ever saw session time beyond it. Replaced whole by
 *                                 putTime(), never lowered; absent until the first putTime().
 *   sessions/<id>/log/<seq16>     One segment per appendEntries() call: "L", format 1, then
 *                                 encodeEntries(entries). <seq16> is the segment's first seq,
 *                                 zero-padded to 16 digits so key order is seq order. Appends never
 *                                 rewrite old data, and a retried append overwrites its own key.
 *   sessions/<id>/data/<blob>.<n>  A Data API blob of n bytes (opaque ciphertext), written once by
 *                                 DataStore (data-store.ts); deleted with the session.
 *   activity/<id>                 Last activity, wall-clock ms as decimal ASCII. A flat index, so
 *                                 sessionIds() and collectGarbage() never walk session logs.
 *
 * Crash safety rests on each put being atomic and durable, and on ordering:
 * - create() writes activity before meta, so every session has an activity record; leftovers of
 *   an interrupted deletion are removed before meta is written.
 * - putSnapshot() writes the snapshot before trimming; segments a crash left behind that lie
 *   wholly at or below the snapshot are skipped by load() and removed by the next snapshot.
 * - putTime() is one put of the clock record, so a crash leaves the old watermark or the new one;
 *   either is a promise kept, as the caller lets clients see a time only once its put resolved.
 *   It lives under sessions/<id>/, so deletion and create()'s cleanup remove it with the rest.
 * - deletion removes meta first (the session is gone), then the rest, then activity; an activity
 *   record without meta is an orphan that collectGarbage() removes once it is old.
 * - load() cuts a log whose tail is damaged back to its last good entry, in a crash-safe order (see
 *   log.ts, which also says why that loses only unacknowledged entries after a torn write). Any
 *   other damage (meta, snapshot, a damaged or missing segment before good ones) is a
 *   SessionDamagedError: permanent until the operator restores or deletes the session's keys.
 *
 * One process writes a given store at a time: lastSeq is cached in memory per session.
 */
import type { StreamEntry } from "@lockstep/protocol";
import type { BlobStore } from "./blob-store";
import { checkAppend, checkMeta, checkSessionId, checkSnapshot } from "./checks";
import { StorageError } from "./errors";
import { KeyedQueue, mapLimit } from "./keyed-queue";
import { replayLiveViews } from "./live-views";
import { parseSegmentKeys, readLog, type SessionRecovery } from "./log";
import {
  ACTIVITY_PREFIX,
  activityKey,
  clockKey,
  logPrefix,
  metaKey,
  persistedKey,
  segmentKey,
  sessionPrefix,
  snapshotKey,
  tailOf,
  unknownSession,
  type Read,
  type Tail,
} from "./session-layout";
import {
  decodeActivity,
  decodeClock,
  decodeMeta,
  decodeSnapshot,
  encodeActivity,
  encodeClock,
  encodeMeta,
  encodeSegment,
  encodeSnapshot,
  isCount,
  type StoredSessionMeta,
  type StoredSnapshot,
} from "./records";

/** Everything a restarted reflector needs to continue a session. */
export interface StoredSession {
  readonly meta: StoredSessionMeta;
  readonly snapshot: StoredSnapshot | undefined;
  /** Entries after the snapshot's seq (or from seq 1), contiguous and in order. */
  readonly entries: StreamEntry[];
  /** Seq of the last entry stored (or of the snapshot; 0 for a new session). */
  readonly lastSeq: number;
  /** Time of the last entry stored (or of the snapshot; 0 for a new session). */
  readonly lastTime: number;
  /**
   * The highest session time any client may have seen: the larger of the watermark last stored by
   * {@link SessionStore.putTime} (0 if none) and `lastTime`. A restarted session must not start
   * its clock below it, or time would run backwards for clients that saw it.
   */
  readonly timeWatermark: number;
  /**
   * The views joined in the stream and not exited after the last stored entry, in first-join
   * order: the snapshot's views (none without a snapshot) updated by the ViewJoin and ViewExit
   * entries after it. `undefined` if the snapshot is a format-1 record, which did not store them.
   */
  readonly liveViews: readonly string[] | undefined;
  /** The persisted data the session started from (opaque), or empty. */
  readonly persisted: Uint8Array;
  /**
   * Set when the log's tail was damaged and loading cut it back to the last good entry: what was
   * lost, for the caller to log. `undefined` when nothing was lost.
   */
  readonly recovered?: SessionRecovery;
}

/** Options of a {@link SessionStore}. */
export interface SessionStoreOptions {
  /** Wall clock in ms for last activity and retention. Default `Date.now`. */
  readonly now?: () => number;
  /** Sessions not active for longer than this (ms) are collected. Default 30 days. */
  readonly retentionMs?: number;
}

/** Default {@link SessionStoreOptions.retentionMs}: 30 days. */
export const DEFAULT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/** What {@link SessionStore}'s read returns when the log's tail needs a repair it was not allowed to make. */
const REPAIR = Symbol("repair");
/** How many blobs collectGarbage() and sessionIds() read at once. */
const SCAN_CONCURRENCY = 8;
/** Appends of one session in flight at once on an ordered store (each a batch of the reflector's outbox). */
const APPENDS_IN_FLIGHT = 4;

/**
 * The reflector's storage subsystem: sessions' admission data, latest snapshot and ordered message
 * log, plus retention. It owns the layout (see the top of this file) and the ordering that keeps
 * it consistent across crashes; the {@link BlobStore} underneath only moves bytes.
 *
 * A session's appends must continue each other. On a store with {@link BlobStore.orderedWrites}
 * up to {@link appendsInFlight} may be in flight at once (they land in order, and when one fails
 * the later ones fail too); otherwise each must be awaited before the next. Different sessions
 * proceed concurrently.
 *
 * @example
 * ```ts
 * const sessions = new SessionStore(await createFsStore("./data"), { retentionMs: 7 * 86_400_000 });
 * await sessions.create({ sessionId, persistentId, tps: 20, verifier, check, createdAt: Date.now() });
 * await sessions.appendEntries(sessionId, [{ type: MessageType.Relay, seq: 1, time: 0, payload }]);
 * const stored = await sessions.load(sessionId); // after a restart: snapshot + entries since
 * ```
 */
export class SessionStore {
  readonly #store: BlobStore;
  readonly #now: () => number;
  readonly #retentionMs: number;
  readonly #tails = new Map<string, Tail>();
  readonly #loading = new Map<string, Promise<Read<StoredSession> | undefined>>();
  /** Recoveries made by a read that was not a load() (an append before any load): the next load() reports them. */
  readonly #unreported = new Map<string, SessionRecovery>();
  /** Serializes create, load, snapshot, putTime, touch and delete per session. */
  readonly #maintenance = new KeyedQueue();
  /** Serializes appends per session, apart from maintenance so a snapshot's trimming never delays them. */
  readonly #appends = new KeyedQueue();

  constructor(store: BlobStore, options: SessionStoreOptions = {}) {
    const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    if (!(retentionMs >= 0)) throw new StorageError(`retentionMs must be a non-negative number of ms, got ${retentionMs}`);
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#retentionMs = retentionMs;
  }

  /**
   * Registers a new session with its admission data and the persisted data it starts from (if
   * any), and marks it active now.
   * @throws {StorageError} if the session already exists, or the meta is malformed.
   */
  async create(meta: StoredSessionMeta, persisted: Uint8Array = new Uint8Array(0)): Promise<void> {
    const id = checkSessionId(meta.sessionId);
    checkMeta(meta);
    return this.#maintenance.run(id, async () => {
      const keys = await this.#store.list(sessionPrefix(id));
      if (keys.includes(metaKey(id))) {
        throw new StorageError(`session ${id} already exists; load() it instead of creating it`, { key: metaKey(id) });
      }
      // Leftovers of a deletion interrupted by a crash must not leak into the new session.
      for (const key of keys) await this.#store.delete(key);
      await this.#store.put(activityKey(id), encodeActivity(this.#wallClock()));
      if (persisted.length > 0) await this.#store.put(persistedKey(id), persisted);
      await this.#store.put(metaKey(id), encodeMeta(meta));
      this.#tails.set(id, { lastSeq: 0, lastTime: 0, snapshotSeq: 0, timeFromEntry: false, segments: [], writes: 0 });
    });
  }

  /**
   * Loads everything a restarted reflector needs to continue the session: meta, snapshot and the
   * entries after it (entries at or below the snapshot's seq are dropped), the time watermark and
   * the views live at the end of the log.
   *
   * A log whose tail is damaged (the last segments truncated, garbage, or with wrong seqs or times,
   * and nothing valid after the damage) is cut back to its last good entry, durably, and the result
   * says what was lost in {@link StoredSession.recovered}.
   * @returns `undefined` if the session is not stored.
   * @throws {SessionDamagedError} naming the key, if the meta, snapshot, clock or a log segment
   *   before good ones is damaged, or the log has a gap: permanent, see {@link isDamaged}.
   * @throws {StorageError} if storage cannot be read (may be transient).
   */
  async load(sessionId: string): Promise<StoredSession | undefined> {
    const id = checkSessionId(sessionId);
    return this.#maintenance.run(id, async () => {
      // A live session's log is read back for joiners too, so reading must not hold its appends up
      // (puts are atomic: a concurrent append cannot look like damage). Only a repair holds them,
      // and reads again first, so it never races an append.
      let read = await this.#read(id, false);
      if (read === REPAIR) read = await this.#appends.run(id, () => this.#read(id, true));
      if (read === undefined || read === REPAIR) return undefined;
      const loaded = read.session;
      const recovered = loaded.recovered ?? this.#unreported.get(id);
      this.#unreported.delete(id);
      // After a recovery the stored log ends earlier than any tail cached before the damage.
      if (loaded.recovered !== undefined || !this.#tails.has(id)) this.#tails.set(id, tailOf(read));
      return recovered === undefined ? loaded : { ...loaded, recovered };
    });
  }

  /**
   * Appends `entries` (contiguous, continuing the stored lastSeq) durably, with one put.
   * @throws {StorageError} if the session is unknown, the entries do not continue the log, or the write fails.
   */
  async appendEntries(sessionId: string, entries: readonly StreamEntry[]): Promise<void> {
    const id = checkSessionId(sessionId);
    if (entries.length === 0) return;
    const first = entries[0] as StreamEntry;
    const last = entries[entries.length - 1] as StreamEntry;
    if (this.#store.orderedWrites !== true) {
      return this.#appends.run(id, async () => {
        const tail = await this.#tail(id);
        checkAppend(id, tail.lastSeq, tail.timeFromEntry ? tail.lastTime : 0, entries);
        await this.#store.put(segmentKey(id, first.seq), encodeSegment(entries));
        tail.lastSeq = last.seq;
        tail.lastTime = last.time;
        tail.timeFromEntry = true;
        tail.segments?.push(first.seq);
      });
    }
    // The store lands writes in order and fails every later one after a failure: the queue covers
    // the check and the start of the write only, so the session's next segment is written while
    // this one is in flight. The tail moves on at once; if the write fails, it is dropped and read
    // again from what the store holds.
    const { tail, written } = await this.#appends.run(id, async () => {
      const tail = await this.#tail(id);
      checkAppend(id, tail.lastSeq, tail.timeFromEntry ? tail.lastTime : 0, entries);
      const written = this.#store.put(segmentKey(id, first.seq), encodeSegment(entries));
      written.catch(() => undefined); // awaited below, once the queue released the session
      tail.writes++;
      tail.lastSeq = last.seq;
      tail.lastTime = last.time;
      tail.timeFromEntry = true;
      tail.segments?.push(first.seq);
      return { tail, written };
    });
    try {
      await written;
    } catch (error) {
      if (this.#tails.get(id) === tail) this.#tails.delete(id);
      throw error;
    } finally {
      tail.writes--;
    }
  }

  /**
   * Drops what this store caches of a session its caller no longer serves: its tail and the list of
   * its log segments, which would otherwise stay for every session served since the start (the
   * list holds a number per segment since the last snapshot). The next operation reads the session
   * again. With an operation on the session still under way, only the segment list goes (a trim
   * then lists them), so nothing read before that operation lands is ever trusted.
   */
  forget(sessionId: string): void {
    const id = checkSessionId(sessionId);
    const tail = this.#tails.get(id);
    if (tail === undefined) return;
    if (tail.writes > 0 || this.#appends.busy(id) || this.#maintenance.busy(id) || this.#loading.has(id)) tail.segments = undefined;
    else this.#tails.delete(id);
  }

  /** How many appends of one session may be in flight at once: more than one only on a store with {@link BlobStore.orderedWrites}. */
  get appendsInFlight(): number {
    return this.#store.orderedWrites === true ? APPENDS_IN_FLIGHT : 1;
  }

  /**
   * Atomically replaces the session's snapshot, then removes log segments whose entries are all at
   * or below `snapshot.seq`. `snapshot.views` (the views live at `snapshot.seq`) is stored as `[]`
   * when not given; pass it, or {@link StoredSession.liveViews} misses views joined before the snapshot.
   * @throws {StorageError} if the snapshot is ahead of the stored log or older than the stored
   *   snapshot, or its views are not distinct strings.
   */
  async putSnapshot(sessionId: string, snapshot: StoredSnapshot): Promise<void> {
    const id = checkSessionId(sessionId);
    checkSnapshot(id, snapshot);
    return this.#maintenance.run(id, async () => {
      const tail = await this.#tail(id);
      if (snapshot.seq > tail.lastSeq) {
        throw new StorageError(`putSnapshot(${id}): snapshot at seq ${snapshot.seq} is ahead of the stored log (last seq ${tail.lastSeq}); store the entries first`);
      }
      if (snapshot.seq < tail.snapshotSeq) {
        throw new StorageError(`putSnapshot(${id}): snapshot at seq ${snapshot.seq} is older than the stored one (seq ${tail.snapshotSeq}); keep only newer snapshots`);
      }
      await this.#store.put(snapshotKey(id), encodeSnapshot(snapshot));
      tail.snapshotSeq = snapshot.seq;
      await this.#trim(id, snapshot.seq, tail);
    });
  }

  /**
   * Durably records a time watermark: a promise that no client of the session ever saw session time
   * beyond `time`. Call it, and let its put resolve, before letting clients see times past the
   * stored watermark; {@link StoredSession.timeWatermark} returns it after a restart. A `time` at or
   * below the stored watermark is ignored (it never decreases), unless `exact`: at a clean stop the
   * reflector stores the latest time it actually showed, so a restart continues from exactly there
   * (no client saw past it, so lowering the promise is safe). Serialized with the session's other
   * maintenance, never with its appends, so it does not delay them.
   * @example
   * ```ts
   * await sessions.putTime(sessionId, now + 10_000); // clients may now see times up to now + 10 s
   * const { timeWatermark } = (await sessions.load(sessionId))!; // after a restart: start no lower
   * ```
   * @throws {StorageError} if the session is not stored, `time` is not a non-negative integer, or
   *   the write fails; a {@link SessionDamagedError} naming the key if the stored clock record is corrupt.
   */
  async putTime(sessionId: string, time: number, options: { readonly exact?: boolean } = {}): Promise<void> {
    const id = checkSessionId(sessionId);
    if (!isCount(time)) throw new StorageError(`putTime(${id}): time must be a non-negative integer (session ms), got ${String(time)}`);
    return this.#maintenance.run(id, async () => {
      if (!this.#tails.has(id) && (await this.#store.get(metaKey(id))) === undefined) throw unknownSession(id);
      // Read, not cached: only maintenance (this queue) writes or removes the key, so what is read is exact.
      const stored = await this.#store.get(clockKey(id));
      if (stored !== undefined && !options.exact && time <= decodeClock(clockKey(id), stored)) return;
      await this.#store.put(clockKey(id), encodeClock(time));
    });
  }

  /**
   * Marks the session active now, so retention keeps it.
   * @throws {StorageError} if the session is not stored.
   */
  async touch(sessionId: string): Promise<void> {
    const id = checkSessionId(sessionId);
    return this.#maintenance.run(id, async () => {
      if (!this.#tails.has(id) && (await this.#store.get(metaKey(id))) === undefined) throw unknownSession(id);
      await this.#store.put(activityKey(id), encodeActivity(this.#wallClock()));
    });
  }

  /**
   * Deletes every session whose last activity is more than `retentionMs` ago, except those in
   * `keep` (pass the live ones). An unreadable activity record is rewritten as "now" rather than
   * trusted either way, so corruption can neither delete a session early nor keep it forever.
   * @returns how many sessions were deleted.
   */
  async collectGarbage(keep: ReadonlySet<string> = new Set()): Promise<number> {
    const ids = await this.#activityIds();
    const deleted = await mapLimit(ids, SCAN_CONCURRENCY, (id) => {
      if (keep.has(id)) return Promise.resolve(false);
      // Re-read inside the queue: a touch() that got there first wins.
      return this.#maintenance.run(id, async () => {
        if (keep.has(id)) return false;
        const bytes = await this.#store.get(activityKey(id));
        if (bytes === undefined) return false;
        const now = this.#wallClock();
        const lastActive = decodeActivity(bytes);
        if (lastActive === undefined) {
          await this.#store.put(activityKey(id), encodeActivity(now));
          return false;
        }
        if (now - lastActive <= this.#retentionMs) return false;
        await this.#delete(id);
        return true;
      });
    });
    return deleted.filter(Boolean).length;
  }

  /** The ids of the sessions stored, sorted ascending. */
  async sessionIds(): Promise<string[]> {
    const ids = await this.#activityIds();
    const exists = await mapLimit(ids, SCAN_CONCURRENCY, async (id) => (await this.#store.get(metaKey(id))) !== undefined);
    return ids.filter((_, i) => exists[i]);
  }

  #wallClock(): number {
    const now = Math.floor(this.#now());
    return Number.isSafeInteger(now) && now > 0 ? now : 0;
  }

  async #activityIds(): Promise<string[]> {
    const keys = await this.#store.list(ACTIVITY_PREFIX);
    return keys.map((key) => key.slice(ACTIVITY_PREFIX.length)).filter((id) => !id.includes("/"));
  }

  /** The cached tail of a session, loading it once if this process has not seen the session yet. */
  async #tail(id: string): Promise<Tail> {
    const cached = this.#tails.get(id);
    if (cached !== undefined) return cached;
    let pending = this.#loading.get(id);
    if (pending === undefined) {
      // No append can be in flight: appends need this tail first. So the read may repair at once.
      pending = this.#read(id, true).then((read) => (read === REPAIR ? undefined : read)).finally(() => this.#loading.delete(id));
      this.#loading.set(id, pending);
    }
    const read = await pending;
    if (read === undefined) throw unknownSession(id);
    if (read.session.recovered !== undefined) this.#unreported.set(id, read.session.recovered);
    // Another caller may have filled the cache meanwhile; its tail is at least as new as ours.
    let tail = this.#tails.get(id);
    if (tail === undefined) {
      tail = tailOf(read);
      this.#tails.set(id, tail);
    }
    return tail;
  }

  /** Reads a session; with `repair` false, a damaged log tail returns {@link REPAIR} instead of being cut. */
  async #read(id: string, repair: boolean): Promise<Read<StoredSession> | undefined | typeof REPAIR> {
    const metaBytes = await this.#store.get(metaKey(id));
    if (metaBytes === undefined) return undefined;
    const meta = decodeMeta(metaKey(id), metaBytes, id);
    const snapshotBytes = await this.#store.get(snapshotKey(id));
    const snapshot = snapshotBytes === undefined ? undefined : decodeSnapshot(snapshotKey(id), snapshotBytes);
    const clockBytes = await this.#store.get(clockKey(id));
    const clock = clockBytes === undefined ? 0 : decodeClock(clockKey(id), clockBytes);
    const persisted = (await this.#store.get(persistedKey(id))) ?? new Uint8Array(0);
    const segments = parseSegmentKeys(logPrefix(id), await this.#store.list(logPrefix(id)), true);
    const log = await readLog(this.#store, id, segments, (snapshot?.seq ?? 0) + 1, repair);
    if (log === undefined) return REPAIR;
    const lastEntry = log.entries[log.entries.length - 1];
    const lastTime = lastEntry?.time ?? snapshot?.time ?? 0;
    const session: StoredSession = {
      meta,
      snapshot,
      entries: log.entries,
      lastSeq: log.lastSeq,
      lastTime,
      timeWatermark: Math.max(clock, lastTime),
      liveViews: replayLiveViews(snapshot, log.entries),
      persisted,
      ...(log.recovery === undefined ? {} : { recovered: log.recovery }),
    };
    // A repair deleted or rewrote segments: what was listed is no longer what is stored.
    return { session, segments: log.recovery === undefined ? segments.map((segment) => segment.first) : undefined };
  }

  /** Deletes segments wholly at or below `snapshotSeq`, oldest first. */
  async #trim(id: string, snapshotSeq: number, tail: Tail): Promise<void> {
    const firsts = tail.segments ?? parseSegmentKeys(logPrefix(id), await this.#store.list(logPrefix(id)), false).map((segment) => segment.first);
    let covered = 0;
    // A segment ends where the next begins; the last at the cached lastSeq (which covers appends in flight).
    while (covered < firsts.length && (covered + 1 < firsts.length ? (firsts[covered + 1] as number) <= snapshotSeq + 1 : tail.lastSeq <= snapshotSeq)) covered++;
    if (covered === 0) return;
    const trimmed = firsts.slice(0, covered).map((first) => segmentKey(id, first));
    await this.#deleteInOrder(trimmed);
    // Appends only add at the end, so the first `covered` are the ones deleted (unless the tail was dropped meanwhile).
    if (tail.segments === firsts) firsts.splice(0, covered);
  }

  /** Removes a session: meta first (it no longer exists), then its other keys (clock included), then its activity record. */
  async #delete(id: string): Promise<void> {
    this.#tails.delete(id);
    this.#unreported.delete(id);
    const keys = (await this.#store.list(sessionPrefix(id))).filter((key) => key !== metaKey(id));
    await this.#deleteInOrder([metaKey(id), ...keys, activityKey(id)]);
  }

  /**
   * Deletes `keys` oldest first, so that a crash leaves a suffix of them (a log without holes). On
   * a store with {@link BlobStore.orderedWrites} they are issued at once, which keeps that order and
   * lets them share one write: a snapshot trims a segment per batch since the last one (a thousand
   * at 2,000 messages/s), and a flush for each took a third of the filesystem store's writes.
   */
  async #deleteInOrder(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    if (this.#store.deleteMany !== undefined) return this.#store.deleteMany(keys);
    if (this.#store.orderedWrites === true) {
      const deleted = keys.map((key) => this.#store.delete(key));
      for (const done of deleted) done.catch(() => undefined); // the first failure is thrown below
      for (const done of deleted) await done;
      return;
    }
    for (const key of keys) await this.#store.delete(key);
  }
}
