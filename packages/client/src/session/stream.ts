import { MessageType, type StreamEntry, type SyncMessage, type TickMessage, type Timers } from "@lockstep/protocol";
import { SessionError } from "../errors";
import type { VirtualMachine } from "../kernel/vm";
import { LocalTicks } from "./local-ticks";
import type { TickRate } from "./tps";

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

  /** The next item, without taking it. */
  peek(): QueuedItem | undefined {
    return this.#items[this.#head];
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
export const CATCH_UP_SLICE_MS = 50;

/**
 * How one call to {@link Stream.feed} ended: everything received was processed, the visitor
 * asked to stop (the session changed state), the deadline passed with items left, or the items
 * left are later than the time limit (local ticks: {@link Stream.nextLocalTick}).
 */
export type FeedResult = "drained" | "stopped" | "paused" | "held";

/**
 * A session connection's stream as this client receives it: the queue of entries and ticks not
 * yet processed, and the reflector's time as last heard (views extrapolate from it). It feeds
 * the VM in order; what to do after each entry is the caller's (its `visit` function).
 */
export class Stream {
  readonly #timers: Timers;
  #queue = new StreamQueue();
  #historyLength = 0;
  #externalTime = 0;
  #externalAt = 0;
  readonly #afterEntry = new Set<(seq: number) => void>();
  #sliceScheduled = false;
  #soonScheduled = false;
  readonly #localTicks: LocalTicks | undefined;

  /** `rate`: with a multiplier, live feeding trails the stream in local ticks ({@link LocalTicks}). */
  constructor(timers: Timers, rate?: TickRate) {
    this.#timers = timers;
    this.#localTicks = rate !== undefined && rate.multiplier > 1 ? new LocalTicks(rate) : undefined;
  }

  /** The local time (`timers.now()`) at which the reflector was last heard from. */
  get heardAt(): number {
    return this.#externalAt;
  }

  /** The model time a live replica may run to now: the latest time heard, or less with local ticks. */
  liveLimit(): number {
    return this.#localTicks?.limit(this.#timers.now()) ?? Infinity;
  }

  /** The local time of the next local tick, if live feeding is held back by one. */
  nextLocalTick(): number | undefined {
    return this.#localTicks?.nextAt(this.#timers.now());
  }

  /** The reflector's time as last heard. */
  get externalTime(): number {
    return this.#externalTime;
  }

  /** The reflector's time now, extrapolated from when it was last heard. */
  extrapolatedTime(): number {
    return this.#externalTime + Math.max(0, this.#timers.now() - this.#externalAt);
  }

  /** How much of the history a Sync brought was processed (0–1). */
  get historyProgress(): number {
    return Math.min(1, this.#queue.taken / Math.max(1, this.#historyLength));
  }

  /** Checks that a Sync's history continues the VM booted from it (at `vmSeq`), and queues it. */
  history(sync: Pick<SyncMessage, "entries" | "seq" | "snapshot" | "time">, vmSeq: number): void {
    checkHistory(sync, vmSeq);
    this.#queue = new StreamQueue();
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

  /**
   * Feeds received entries and ticks to `vm`, in order, until drained, until `visit` (called after
   * each entry) returns true, until the clock passes `deadline`, or up to model time `limit`
   * (what is later stays queued; the VM is advanced to `limit`).
   */
  feed(vm: VirtualMachine, visit: (entry: StreamEntry) => boolean, deadline = Infinity, limit = Infinity): FeedResult {
    const queue = this.#queue;
    for (let n = 1; ; n++) {
      const ahead = queue.peek();
      if (ahead !== undefined && ahead.time > limit) {
        vm.advanceTo(limit);
        return "held";
      }
      const item = queue.next();
      if (item === undefined) break;
      if (item.type === MessageType.Tick) {
        vm.advanceTo(item.time);
      } else {
        vm.processEntry(item);
        if (this.#afterEntry.size > 0) for (const cb of this.#afterEntry) cb(item.seq);
        if (visit(item)) return "stopped";
      }
      // Every 64 items, entries or ticks (live ticks may alternate with entries).
      if ((n & 63) === 0 && this.#timers.now() > deadline) return "paused";
    }
    return "drained";
  }

  /**
   * Feeds for at most {@link CATCH_UP_SLICE_MS}; if time ran out with items left, calls `more` in
   * a later task (once, however often asked meanwhile), so catching up never blocks a page for long.
   */
  feedSlice(vm: VirtualMachine, visit: (entry: StreamEntry) => boolean, more: () => void): FeedResult {
    if (this.#sliceScheduled) return "paused";
    const result = this.feed(vm, visit, this.#timers.now() + CATCH_UP_SLICE_MS);
    if (result === "paused") {
      this.#sliceScheduled = true;
      this.#timers.setTimeout(() => {
        this.#sliceScheduled = false;
        more();
      }, 0);
    }
    return result;
  }

  /** Calls `fn` at the end of the current task (once, however often asked meanwhile): what arrives together is fed together. */
  soon(fn: () => void): void {
    if (this.#soonScheduled) return;
    this.#soonScheduled = true;
    queueMicrotask(() => {
      this.#soonScheduled = false;
      fn();
    });
  }

  #heardTime(time: number): void {
    this.#externalTime = time;
    this.#externalAt = this.#timers.now();
    this.#localTicks?.heard(time, this.#externalAt);
  }
}
