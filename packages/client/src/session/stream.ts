import { MessageType, type StreamEntry, type SyncMessage, type TickMessage } from "@lockstep/protocol";
import { SessionError } from "./errors";
import type { VirtualMachine } from "./vm";

/** What waits to be fed to the VM: stream entries and ticks, in arrival order. */
export type QueuedItem = StreamEntry | TickMessage;

/**
 * The received-but-not-yet-processed part of a session's stream. It checks that entries arrive
 * gap-free and keeps only the latest of consecutive unprocessed ticks (they only advance time).
 */
export class StreamQueue {
  #items: QueuedItem[] = [];
  #head = 0;
  #lastSeq = 0;
  #taken = 0;

  /** Seq of the last entry received. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Items taken since the history was queued (for catch-up progress). */
  get taken(): number {
    return this.#taken;
  }

  /** Queues the history a Sync brought (already checked by {@link checkHistory}) and the time it was sent at. */
  pushHistory(entries: readonly StreamEntry[], lastSeq: number, time: number): void {
    for (const e of entries) this.#items.push(e);
    this.#items.push({ type: MessageType.Tick, time });
    this.#lastSeq = lastSeq;
  }

  /** Queues a live entry. @throws {SessionError} if it does not follow the last one. */
  pushEntry(entry: StreamEntry): void {
    if (entry.seq !== this.#lastSeq + 1) throw new SessionError(`stream gap: expected message #${this.#lastSeq + 1}, got #${entry.seq}`);
    this.#lastSeq = entry.seq;
    this.#items.push(entry);
  }

  pushTick(tick: TickMessage): void {
    const last = this.#items.length - 1;
    if (last >= this.#head && this.#items[last]!.type === MessageType.Tick) this.#items[last] = tick;
    else this.#items.push(tick);
  }

  /** The next item, or undefined when everything received was taken. */
  next(): QueuedItem | undefined {
    if (this.#head < this.#items.length) {
      this.#taken++;
      return this.#items[this.#head++];
    }
    if (this.#head > 0) {
      this.#items = [];
      this.#head = 0;
    }
    return undefined;
  }
}

/**
 * Checks that the history a Sync brought continues the VM booted from it (at `vmSeq`: the end of
 * its snapshot, or the start of the session) and runs without gaps up to the Sync's seq. The
 * reflector is not trusted to get this right: a replica fed a broken history would diverge.
 * @throws {SessionError} naming the first inconsistency.
 */
export function checkHistory(sync: Pick<SyncMessage, "entries" | "seq" | "snapshot">, vmSeq: number): void {
  const { entries } = sync;
  const first = entries[0]?.seq ?? sync.seq + 1;
  if (first !== vmSeq + 1) {
    throw new SessionError(`reflector sent history starting at #${first}, but the ${sync.snapshot.length > 0 ? "snapshot ends" : "session starts"} at #${vmSeq}`);
  }
  entries.forEach((e, i) => {
    if (e.seq !== first + i) throw new SessionError(`history has a gap at #${first + i}`);
  });
  const last = entries[entries.length - 1];
  if (last !== undefined && last.seq !== sync.seq) throw new SessionError(`history ends at #${last.seq}, reflector says #${sync.seq}`);
}

/** How long one slice of catching up may block before yielding to the event loop, in ms. */
const CATCH_UP_SLICE_MS = 50;

/**
 * What a {@link StreamFeeder} asks of its session controller, which owns the session's state.
 * `phase` and `processed` are asked again after every step because feeding can change the state.
 */
export interface FeedHooks {
  readonly clock: () => number;
  /** The VM to feed: the one the latest Sync booted. */
  vm(): VirtualMachine;
  /** Whether the session is catching up, live, or neither (then timers feed nothing). */
  phase(): "syncing" | "joined" | "other";
  /** An entry was just processed; true stops feeding (the session ended meanwhile). */
  processed(entry: StreamEntry): boolean;
  /** A live session was fed everything received so far. */
  drained(): void;
  /** How far catching up got, below 1. */
  progress(fraction: number): void;
}

/**
 * Feeds the received stream to the VM, in order: while catching up a time slice at a time, so a
 * browser stays responsive, with progress; while live, once per microtask for whatever arrived
 * meanwhile. Also keeps the reflector's time as last heard, which views extrapolate from.
 */
export class StreamFeeder {
  readonly #hooks: FeedHooks;
  #queue = new StreamQueue();
  #historyLength = 0;
  #catchUpScheduled = false;
  #feedScheduled = false;
  #externalTime = 0;
  #externalAt = 0;
  readonly #afterEntry = new Set<(seq: number) => void>();

  constructor(hooks: FeedHooks) {
    this.#hooks = hooks;
  }

  /** The reflector's time as last heard. */
  get externalTime(): number {
    return this.#externalTime;
  }

  /** The reflector's time now, extrapolated from when it was last heard. */
  extrapolatedTime(): number {
    return this.#externalTime + Math.max(0, this.#hooks.clock() - this.#externalAt);
  }

  /** Checks that a Sync's history continues the VM booted from it (at `vmSeq`), and queues it. */
  history(sync: Pick<SyncMessage, "entries" | "seq" | "snapshot" | "time">, vmSeq: number): void {
    checkHistory(sync, vmSeq);
    this.#historyLength = sync.entries.length;
    this.#heardTime(sync.time);
    this.#queue.pushHistory(sync.entries, sync.seq, sync.time);
  }

  /** Queues a live entry. @throws {SessionError} if it does not follow the last one. */
  entry(entry: StreamEntry): void {
    this.#queue.pushEntry(entry);
    this.#heardTime(entry.time);
  }

  /** Queues a tick; it only advances time, so it replaces a queued tick that nothing followed yet. */
  tick(tick: TickMessage): void {
    this.#heardTime(tick.time);
    this.#queue.pushTick(tick);
  }

  /** The connection is gone: what it brought and was not fed yet goes with it. */
  reset(): void {
    this.#queue = new StreamQueue();
  }

  /** Registers a callback run right after each entry is processed (with its seq). */
  afterEntry(cb: (seq: number) => void): () => void {
    this.#afterEntry.add(cb);
    return () => this.#afterEntry.delete(cb);
  }

  /** Feeds everything received while live, at the end of the current task. */
  feedSoon(): void {
    if (this.#feedScheduled) return;
    this.#feedScheduled = true;
    queueMicrotask(() => {
      this.#feedScheduled = false;
      if (this.#hooks.phase() === "joined") this.feed();
    });
  }

  /**
   * Fast-forwards through the history while joining, one slice now and the rest in later tasks,
   * reporting progress; the controller completes the join at this client's own view-join.
   */
  catchUp(): void {
    if (this.#catchUpScheduled) return;
    const drained = this.feed(this.#hooks.clock() + CATCH_UP_SLICE_MS);
    if (this.#hooks.phase() !== "syncing") return;
    this.#hooks.progress(Math.min(0.99, this.#queue.taken / Math.max(1, this.#historyLength)));
    if (!drained) {
      this.#catchUpScheduled = true;
      setTimeout(() => {
        this.#catchUpScheduled = false;
        if (this.#hooks.phase() === "syncing") this.catchUp();
      }, 0);
    }
  }

  /** Feeds received entries and ticks to the VM, in order, until drained (true) or past `deadline`. */
  feed(deadline = Infinity): boolean {
    const hooks = this.#hooks;
    const vm = hooks.vm();
    for (let item = this.#queue.next(), n = 1; item !== undefined; item = this.#queue.next(), n++) {
      if (item.type === MessageType.Tick) {
        vm.advanceTo(item.time);
        continue;
      }
      vm.processEntry(item);
      if (this.#afterEntry.size > 0) for (const cb of this.#afterEntry) cb(item.seq);
      if (hooks.processed(item)) return true;
      if ((n & 63) === 0 && hooks.clock() > deadline) return false;
    }
    if (hooks.phase() === "joined") hooks.drained();
    return true;
  }

  #heardTime(time: number): void {
    this.#externalTime = time;
    this.#externalAt = this.#hooks.clock();
  }
}
