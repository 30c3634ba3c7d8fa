import type { TimerHandle, Timers } from "@lockstep/protocol";

/** Options of a {@link ManualClock}. */
export interface ManualClockOptions {
  /** What `now()` starts at, in ms. Default 0. */
  readonly start?: number;
  /**
   * Timer callbacks one `advance` may run before it gives up (a timer that keeps re-arming
   * itself with no delay would otherwise never let it return). Default 100 000.
   */
  readonly maxCallbacks?: number;
}

/** Options of {@link ManualClock.runUntil}. */
export interface RunUntilOptions {
  /** Clock time after which it gives up and throws, in ms. Default 60 000. */
  readonly maxMs?: number;
  /**
   * Longest single step, in ms. Default: none — each step jumps to the next pending timer, so the
   * condition is checked after every timer that could have changed it.
   */
  readonly stepMs?: number;
}

/** One pending timer; also the handle `setTimeout` returns. */
interface Entry {
  readonly clock: ManualClock;
  readonly time: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

// Captured at load: jest's fake timers replace the globals later, and settle() needs the real ones.
const realSetImmediate: (fn: () => void) => unknown = globalThis.setImmediate ?? ((fn: () => void) => setTimeout(fn, 0));
const nextMacrotask = (): Promise<void> => new Promise<void>((resolve) => void realSetImmediate(resolve));

/** Quiet rounds in a row after which settle() considers the work done. */
const QUIET_ROUNDS = 2;
/** Rounds after which settle() gives up (something keeps working without time passing). */
const MAX_SETTLE_ROUNDS = 10_000;

/**
 * A clock that moves only when told to, implementing the {@link Timers} the reflector and the
 * client take: nothing scheduled on it fires until {@link advance} (or {@link runUntil}) reaches
 * its time, so a test decides exactly when heartbeats, ticks and timeouts happen, with no sleeps.
 *
 * Timers fire in time order, ties in the order they were set. Between two callbacks and at the end
 * of every advance, the clock lets the work they started settle ({@link settle}): promise
 * continuations, `queueMicrotask` and `setImmediate` callbacks, and deliveries of in-memory
 * transports (which report them with {@link noteActivity}). Real I/O (sockets, files) is not waited
 * for. Do not combine with jest's fake timers.
 *
 * @example
 * ```ts
 * const clock = new ManualClock();
 * clock.setTimeout(() => fired.push(clock.now()), 50);
 * await clock.advance(100); // fired: [50]; clock.now() === 100
 * ```
 */
export class ManualClock implements Timers {
  #now: number;
  #seq = 0;
  /** Binary min-heap on (time, seq); cancelled entries are skipped when they surface. */
  readonly #heap: Entry[] = [];
  #pending = 0;
  /** Cancelled entries still in the heap. */
  #dead = 0;
  #activity = 0;
  #busy = false;
  readonly #maxCallbacks: number;

  constructor(options: ManualClockOptions = {}) {
    const start = options.start ?? 0;
    if (!Number.isFinite(start)) throw new RangeError(`ManualClock start must be a finite number of ms, got ${String(start)}`);
    this.#now = start;
    this.#maxCallbacks = options.maxCallbacks ?? 100_000;
  }

  /** The clock's time in ms. */
  now(): number {
    return this.#now;
  }

  /** Runs `fn` once the clock has advanced `ms` (a negative or non-finite delay counts as 0). */
  setTimeout(fn: () => void, ms: number): TimerHandle {
    if (typeof fn !== "function") throw new TypeError("ManualClock.setTimeout needs a function");
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const entry: Entry = { clock: this, time: this.#now + delay, seq: this.#seq++, fn, cancelled: false };
    this.#push(entry);
    this.#pending++;
    this.#activity++;
    return entry;
  }

  /** Cancels a timer; a handle that already fired, was cancelled, or is not this clock's is ignored. */
  clearTimeout(handle: TimerHandle): void {
    const entry = handle as Entry | undefined;
    if (entry === undefined || entry === null || typeof entry !== "object" || entry.clock !== this || entry.cancelled) return;
    entry.cancelled = true;
    this.#pending--;
    this.#dead++;
    this.#activity++;
    // Timers re-set over and over (timeouts pushed back on progress) would otherwise pile up.
    if (this.#dead > 1024 && this.#dead > this.#heap.length / 2) this.#compact();
  }

  /** Timers set and not yet fired or cancelled. */
  get pending(): number {
    return this.#pending;
  }

  /** When the next pending timer is due, or undefined if none is. */
  get nextAt(): number | undefined {
    this.#skipCancelled();
    return this.#heap[0]?.time;
  }

  /**
   * Tells the clock that work happened outside its timers (an in-memory transport delivered a
   * frame), so {@link settle} keeps waiting until such work stops.
   */
  noteActivity(): void {
    this.#activity++;
  }

  /**
   * Moves the clock forward by `ms`, running every timer due by then in order: `now()` reads each
   * timer's own time during its callback, and the work it starts settles before the next one runs.
   * Ends at exactly `now() + ms`, settled.
   * @throws (as a rejection) what a callback threw (the clock stays at that timer's time), or an
   *   Error when more than `maxCallbacks` timers ran (a timer re-arming itself with no delay).
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`advance needs a finite number of ms ≥ 0, got ${String(ms)}`);
    this.#enter("advance");
    try {
      await this.settle();
      const target = this.#now + ms;
      let ran = 0;
      for (;;) {
        const entry = this.#popDue(target);
        if (entry === undefined) break;
        if (++ran > this.#maxCallbacks) {
          throw new Error(`ManualClock.advance ran more than ${this.#maxCallbacks} timer callbacks before reaching ${target} ms (now() = ${this.#now}): a timer keeps re-arming itself with no delay?`);
        }
        if (entry.time > this.#now) this.#now = entry.time;
        entry.fn();
        await this.settle();
      }
      this.#now = target;
      await this.settle();
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Advances until `pred()` holds (checked after settling, and after every step), in steps that
   * end at each next pending timer (or `stepMs`, if smaller).
   * @throws (as a rejection) an Error naming `now()` when `maxMs` of clock time passed and `pred()` still fails.
   */
  async runUntil(pred: () => boolean, options: RunUntilOptions = {}): Promise<void> {
    const maxMs = options.maxMs ?? 60_000;
    const stepMs = options.stepMs;
    if (!(maxMs >= 0)) throw new RangeError(`runUntil maxMs must be ≥ 0, got ${String(maxMs)}`);
    if (stepMs !== undefined && !(stepMs > 0)) throw new RangeError(`runUntil stepMs must be > 0, got ${String(stepMs)}`);
    if (this.#busy) throw new Error("runUntil: the clock is already advancing; await that first");
    await this.settle();
    const started = this.#now;
    const deadline = started + maxMs;
    while (!pred()) {
      if (this.#now >= deadline) {
        throw new Error(`runUntil: the condition still did not hold after ${maxMs} ms of clock time (from ${started} to now() = ${this.#now} ms, ${this.#pending} timers pending)`);
      }
      let to = deadline;
      const next = this.nextAt;
      if (next !== undefined && next < to) to = Math.max(next, this.#now);
      if (stepMs !== undefined) to = Math.min(to, this.#now + stepMs);
      await this.advance(to - this.#now);
    }
  }

  /**
   * Lets pending work finish without moving the clock: yields to the event loop (each turn runs
   * every promise continuation and microtask, then `setImmediate` callbacks) until a couple of
   * turns pass with no timer set or cleared and no {@link noteActivity}.
   * @throws (as a rejection) if work never stops (10 000 turns).
   */
  async settle(): Promise<void> {
    let quiet = 0;
    for (let round = 0; round < MAX_SETTLE_ROUNDS; round++) {
      const before = this.#activity;
      await nextMacrotask();
      if (this.#activity !== before) quiet = 0;
      else if (++quiet >= QUIET_ROUNDS) return;
    }
    throw new Error(`ManualClock.settle: work kept going for ${MAX_SETTLE_ROUNDS} event-loop turns without the clock moving (now() = ${this.#now})`);
  }

  #enter(what: string): void {
    if (this.#busy) throw new Error(`${what}: the clock is already advancing; await the running advance() or runUntil() first`);
    this.#busy = true;
  }

  #compact(): void {
    const live = this.#heap.filter((e) => !e.cancelled);
    this.#heap.length = 0;
    this.#dead = 0;
    for (const e of live) this.#push(e);
  }

  /** The earliest pending timer due at or before `target`, taken off the heap. */
  #popDue(target: number): Entry | undefined {
    this.#skipCancelled();
    const top = this.#heap[0];
    if (top === undefined || top.time > target) return undefined;
    this.#pop();
    this.#pending--;
    top.cancelled = true; // fired: a later clearTimeout is a no-op
    return top;
  }

  #skipCancelled(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) {
      this.#pop();
      this.#dead--;
    }
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
