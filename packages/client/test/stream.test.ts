/**
 * Unit tests of the session's stream (session/stream.ts): the queue of received entries and ticks,
 * the check of a Sync's history, and the order in which a Stream feeds the VM. No reflector and
 * no sockets: the VM is a fake that records what it is fed, and time is a ManualClock.
 */
import { MessageType, type SnapshotRequestEntry, type StreamEntry, type TickMessage } from "@lockstep/protocol";
import { ManualClock, testRng } from "@lockstep/test-support";
import { SessionError } from "../src/errors";
import type { VirtualMachine } from "../src/kernel/vm";
import { CATCH_UP_SLICE_MS, Stream, StreamQueue, checkHistory, type QueuedItem } from "../src/session/stream";

const entry = (seq: number, time = seq * 10): SnapshotRequestEntry => ({ type: MessageType.SnapshotRequest, seq, time });
const tick = (time: number): TickMessage => ({ type: MessageType.Tick, time });
const entries = (from: number, to: number): StreamEntry[] => Array.from({ length: to - from + 1 }, (_, i) => entry(from + i));
const NO_SNAPSHOT = new Uint8Array(0);
const SOME_SNAPSHOT = new Uint8Array([1, 2, 3]);

/** What a fake VM was fed, in order. */
type Call = ["advanceTo", number] | ["processEntry", number];

/**
 * A VM that only records calls. `work` ms of (simulated) processing time pass on `clock` per
 * entry, so a feed can run past its deadline.
 */
function fakeVM(clock?: WorkClock, work = 0) {
  const calls: Call[] = [];
  const vm = {
    advanceTo(time: number): void {
      calls.push(["advanceTo", time]);
    },
    processEntry(e: StreamEntry): void {
      calls.push(["processEntry", e.seq]);
      if (clock) clock.work += work;
    },
  };
  return { vm: vm as unknown as VirtualMachine, calls, processed: () => calls.filter((c) => c[0] === "processEntry").map((c) => c[1]) };
}

/**
 * A ManualClock whose `now()` also counts synchronous work done inside a feed (advance() is
 * asynchronous, so it cannot move the clock in the middle of a synchronous loop). Timers stay on
 * the manual clock's own time.
 */
class WorkClock extends ManualClock {
  work = 0;
  override now(): number {
    return super.now() + this.work;
  }
}

function drain(queue: StreamQueue): QueuedItem[] {
  const out: QueuedItem[] = [];
  for (let item = queue.next(); item !== undefined; item = queue.next()) out.push(item);
  return out;
}

const never = (): boolean => false;

describe("StreamQueue", () => {
  test("a gap in live entries throws a SessionError naming the expected seq", () => {
    const queue = new StreamQueue();
    expect(() => queue.pushEntry(entry(2))).toThrow(SessionError);
    expect(() => queue.pushEntry(entry(2))).toThrow("stream gap: expected message #1, got #2");
    queue.pushEntry(entry(1));
    queue.pushEntry(entry(2));
    expect(() => queue.pushEntry(entry(4))).toThrow("expected message #3, got #4");
    // A repeat is a gap too (backwards), and nothing was queued by the failed pushes.
    expect(() => queue.pushEntry(entry(2))).toThrow("expected message #3, got #2");
    expect(queue.lastSeq).toBe(2);
    expect(drain(queue)).toEqual([entry(1), entry(2)]);
  });

  test("live entries continue the queued history", () => {
    const queue = new StreamQueue();
    queue.pushHistory(entries(6, 8), 8, 500);
    expect(queue.lastSeq).toBe(8);
    expect(() => queue.pushEntry(entry(8))).toThrow("expected message #9, got #8");
    queue.pushEntry(entry(9));
    expect(drain(queue)).toEqual([...entries(6, 8), tick(500), entry(9)]);
  });

  test("consecutive unprocessed ticks collapse into the latest", () => {
    const queue = new StreamQueue();
    queue.pushTick(tick(10));
    queue.pushTick(tick(20));
    queue.pushTick(tick(30));
    expect(drain(queue)).toEqual([tick(30)]);
  });

  test("a tick after an entry is kept, and only the ticks that follow it collapse", () => {
    const queue = new StreamQueue();
    queue.pushEntry(entry(1));
    queue.pushTick(tick(15));
    queue.pushEntry(entry(2));
    queue.pushTick(tick(25));
    queue.pushTick(tick(26));
    queue.pushTick(tick(27));
    expect(drain(queue)).toEqual([entry(1), tick(15), entry(2), tick(27)]);
  });

  test("a tick already taken is not replaced by the next one", () => {
    const queue = new StreamQueue();
    queue.pushEntry(entry(1));
    queue.pushTick(tick(10));
    expect(queue.next()).toEqual(entry(1));
    expect(queue.next()).toEqual(tick(10));
    queue.pushTick(tick(20)); // the tick at 10 was processed: this one must still be delivered
    expect(queue.next()).toEqual(tick(20));
    expect(queue.next()).toBeUndefined();
  });

  test("the history's own tick collapses with ticks that arrive before it is fed", () => {
    const queue = new StreamQueue();
    queue.pushHistory(entries(1, 2), 2, 100);
    queue.pushTick(tick(120));
    expect(drain(queue)).toEqual([entry(1), entry(2), tick(120)]);
  });

  test("after everything was taken the queue keeps working, and `taken` counts every item", () => {
    const queue = new StreamQueue();
    queue.pushHistory(entries(1, 3), 3, 40);
    expect(drain(queue)).toHaveLength(4);
    expect(queue.taken).toBe(4);
    expect(queue.next()).toBeUndefined();
    queue.pushEntry(entry(4));
    queue.pushTick(tick(50));
    queue.pushTick(tick(60));
    expect(drain(queue)).toEqual([entry(4), tick(60)]);
    expect(queue.taken).toBe(6);
  });

  test("a random interleaving keeps every entry in order and collapses only tick runs", () => {
    const rng = testRng("stream.test queue interleaving");
    const queue = new StreamQueue();
    const expected: QueuedItem[] = [];
    let seq = 0;
    let time = 0;
    for (let i = 0; i < 500; i++) {
      time += rng.int(5);
      if (rng.bool(0.4)) {
        const e = entry(++seq, time);
        queue.pushEntry(e);
        expected.push(e);
      } else {
        const t = tick(time);
        queue.pushTick(t);
        if (expected.length > 0 && expected[expected.length - 1]!.type === MessageType.Tick) expected[expected.length - 1] = t;
        else expected.push(t);
      }
    }
    expect(drain(queue)).toEqual(expected);
  });
});

describe("checkHistory", () => {
  test("history continuing a snapshot at vmSeq up to the Sync's seq passes", () => {
    expect(() => checkHistory({ entries: entries(6, 9), seq: 9, snapshot: SOME_SNAPSHOT }, 5)).not.toThrow();
    expect(() => checkHistory({ entries: entries(1, 3), seq: 3, snapshot: NO_SNAPSHOT }, 0)).not.toThrow();
    // No history at all: the snapshot is the latest state.
    expect(() => checkHistory({ entries: [], seq: 5, snapshot: SOME_SNAPSHOT }, 5)).not.toThrow();
    expect(() => checkHistory({ entries: [], seq: 0, snapshot: NO_SNAPSHOT }, 0)).not.toThrow();
  });

  test("history that does not start right after the snapshot is refused", () => {
    expect(() => checkHistory({ entries: entries(7, 9), seq: 9, snapshot: SOME_SNAPSHOT }, 5)).toThrow(SessionError);
    expect(() => checkHistory({ entries: entries(7, 9), seq: 9, snapshot: SOME_SNAPSHOT }, 5)).toThrow(
      "reflector sent history starting at #7, but the snapshot ends at #5",
    );
    expect(() => checkHistory({ entries: entries(5, 9), seq: 9, snapshot: SOME_SNAPSHOT }, 5)).toThrow("starting at #5, but the snapshot ends at #5");
    expect(() => checkHistory({ entries: entries(2, 3), seq: 3, snapshot: NO_SNAPSHOT }, 0)).toThrow(
      "reflector sent history starting at #2, but the session starts at #0",
    );
  });

  test("entries missing after the snapshot, with no history sent, are refused", () => {
    expect(() => checkHistory({ entries: [], seq: 8, snapshot: SOME_SNAPSHOT }, 5)).toThrow("history starting at #9, but the snapshot ends at #5");
  });

  test("a gap inside the history names the first missing seq", () => {
    const gappy = [entry(6), entry(7), entry(9), entry(10)];
    expect(() => checkHistory({ entries: gappy, seq: 10, snapshot: SOME_SNAPSHOT }, 5)).toThrow(SessionError);
    expect(() => checkHistory({ entries: gappy, seq: 10, snapshot: SOME_SNAPSHOT }, 5)).toThrow("history has a gap at #8");
    const repeated = [entry(1), entry(2), entry(2), entry(3)];
    expect(() => checkHistory({ entries: repeated, seq: 3, snapshot: NO_SNAPSHOT }, 0)).toThrow("history has a gap at #3");
  });

  test("history ending anywhere but at the Sync's seq is refused", () => {
    expect(() => checkHistory({ entries: entries(6, 8), seq: 9, snapshot: SOME_SNAPSHOT }, 5)).toThrow("history ends at #8, reflector says #9");
    expect(() => checkHistory({ entries: entries(6, 8), seq: 7, snapshot: SOME_SNAPSHOT }, 5)).toThrow("history ends at #8, reflector says #7");
  });
});

describe("Stream", () => {
  test("feeds history, live entries and ticks to the VM in arrival order", () => {
    const clock = new ManualClock();
    const stream = new Stream(clock);
    const { vm, calls } = fakeVM();
    stream.history({ entries: entries(4, 5), seq: 5, snapshot: SOME_SNAPSHOT, time: 100 }, 3);
    stream.entry(entry(6, 110));
    stream.tick(tick(120));
    stream.tick(tick(130));
    stream.entry(entry(7, 140));
    stream.tick(tick(150));
    const visited: number[] = [];
    expect(stream.feed(vm, (e) => (visited.push(e.seq), false))).toBe("drained");
    expect(calls).toEqual([
      ["processEntry", 4],
      ["processEntry", 5],
      ["advanceTo", 100],
      ["processEntry", 6],
      ["advanceTo", 130],
      ["processEntry", 7],
      ["advanceTo", 150],
    ]);
    expect(visited).toEqual([4, 5, 6, 7]);
    // Fed is gone: feeding again does nothing.
    expect(stream.feed(vm, never)).toBe("drained");
    expect(calls).toHaveLength(7);
  });

  test("a history that does not continue the VM is refused, and live entries must follow it", () => {
    const stream = new Stream(new ManualClock());
    expect(() => stream.history({ entries: entries(5, 6), seq: 6, snapshot: SOME_SNAPSHOT, time: 0 }, 3)).toThrow("starting at #5, but the snapshot ends at #3");
    stream.history({ entries: entries(1, 2), seq: 2, snapshot: NO_SNAPSHOT, time: 0 }, 0);
    expect(() => stream.entry(entry(4))).toThrow(SessionError);
    expect(() => stream.entry(entry(4))).toThrow("expected message #3, got #4");
  });

  test("a visitor returning true stops the feed right after that entry; the rest stays queued", () => {
    const stream = new Stream(new ManualClock());
    const { vm, calls, processed } = fakeVM();
    stream.history({ entries: entries(1, 5), seq: 5, snapshot: NO_SNAPSHOT, time: 60 }, 0);
    expect(stream.feed(vm, (e) => e.seq === 2)).toBe("stopped");
    expect(processed()).toEqual([1, 2]);
    expect(stream.feed(vm, never)).toBe("drained");
    expect(calls).toEqual([...[1, 2, 3, 4, 5].map((s): Call => ["processEntry", s]), ["advanceTo", 60]]);
  });

  test("past the deadline the feed pauses, checking every 64 items, and resumes where it stopped", () => {
    const clock = new WorkClock();
    const stream = new Stream(clock);
    const { vm, processed } = fakeVM(clock, 1);
    stream.history({ entries: entries(1, 200), seq: 200, snapshot: NO_SNAPSHOT, time: 5000 }, 0);
    // The deadline passes after the first entry, but the clock is only read every 64 items.
    expect(stream.feed(vm, never, clock.now() + 0.5)).toBe("paused");
    expect(processed()).toEqual(entries(1, 64).map((e) => e.seq));
    // 100 ms of budget: still within it at the 64th item of this feed, past it at the 128th.
    expect(stream.feed(vm, never, clock.now() + 100)).toBe("paused");
    expect(processed()).toHaveLength(64 + 128);
    expect(stream.feed(vm, never)).toBe("drained");
    expect(processed()).toEqual(entries(1, 200).map((e) => e.seq));
  });

  // Live frames arriving while a client catches up put a tick after every entry: the deadline
  // check must count ticks too, or no entry ever lands on a checked position.
  test("past the deadline the feed pauses even when entries and ticks alternate", () => {
    const clock = new WorkClock();
    const stream = new Stream(clock);
    const { vm, processed } = fakeVM(clock, 1);
    stream.history({ entries: [], seq: 0, snapshot: NO_SNAPSHOT, time: 0 }, 0);
    expect(stream.feed(vm, never)).toBe("drained"); // the Sync's tick
    for (let seq = 1; seq <= 300; seq++) {
      stream.entry(entry(seq));
      stream.tick(tick(seq * 10 + 5));
    }
    expect(stream.feed(vm, never, clock.now() + 10)).toBe("paused");
    expect(processed().length).toBeLessThanOrEqual(64);
  });

  test("a feed that finishes within its deadline drains", () => {
    const clock = new WorkClock();
    const stream = new Stream(clock);
    const { vm, processed } = fakeVM(clock, 1);
    stream.history({ entries: entries(1, 200), seq: 200, snapshot: NO_SNAPSHOT, time: 5000 }, 0);
    expect(stream.feed(vm, never, clock.now() + 1000)).toBe("drained");
    expect(processed()).toHaveLength(200);
  });

  test("feedSlice schedules `more` once on the timers when paused, never synchronously", async () => {
    const clock = new WorkClock();
    const stream = new Stream(clock);
    const { vm, processed } = fakeVM(clock, 1); // 64 entries take longer than a slice
    expect(64).toBeGreaterThan(CATCH_UP_SLICE_MS);
    stream.history({ entries: entries(1, 150), seq: 150, snapshot: NO_SNAPSHOT, time: 5000 }, 0);
    const more = jest.fn();
    expect(stream.feedSlice(vm, never, more)).toBe("paused");
    expect(processed()).toHaveLength(64);
    expect(clock.pending).toBe(1);
    // Asked again before the next slice is due: nothing is fed and nothing more is scheduled.
    expect(stream.feedSlice(vm, never, more)).toBe("paused");
    expect(stream.feedSlice(vm, never, more)).toBe("paused");
    expect(processed()).toHaveLength(64);
    expect(clock.pending).toBe(1);
    await clock.settle();
    expect(more).not.toHaveBeenCalled();
    await clock.advance(0);
    expect(more).toHaveBeenCalledTimes(1);
    expect(clock.pending).toBe(0);
    // The next slice goes on where the last one paused.
    expect(stream.feedSlice(vm, never, more)).toBe("paused");
    expect(processed()).toHaveLength(128);
    await clock.advance(0);
    expect(more).toHaveBeenCalledTimes(2);
    expect(stream.feedSlice(vm, never, more)).toBe("drained");
    expect(processed()).toEqual(entries(1, 150).map((e) => e.seq));
    expect(clock.pending).toBe(0);
    await clock.advance(1000);
    expect(more).toHaveBeenCalledTimes(2);
  });

  test("feedSlice that drains or stops schedules nothing", async () => {
    const clock = new WorkClock();
    const stream = new Stream(clock);
    const { vm } = fakeVM(clock, 0);
    stream.history({ entries: entries(1, 150), seq: 150, snapshot: NO_SNAPSHOT, time: 5000 }, 0);
    const more = jest.fn();
    expect(stream.feedSlice(vm, (e) => e.seq === 100, more)).toBe("stopped");
    expect(stream.feedSlice(vm, never, more)).toBe("drained");
    expect(clock.pending).toBe(0);
    await clock.advance(1000);
    expect(more).not.toHaveBeenCalled();
  });

  test("soon() runs its function once at the end of the current task, however often asked", async () => {
    const clock = new ManualClock();
    const stream = new Stream(clock);
    const fn = jest.fn();
    stream.soon(fn);
    stream.soon(fn);
    stream.soon(fn);
    expect(fn).not.toHaveBeenCalled();
    await clock.settle();
    expect(fn).toHaveBeenCalledTimes(1);
    // Asked again later: it runs again.
    stream.soon(fn);
    await clock.settle();
    expect(fn).toHaveBeenCalledTimes(2);
    expect(clock.pending).toBe(0);
  });

  test("afterEntry callbacks run after each entry (not ticks), before the visitor, until removed", () => {
    const stream = new Stream(new ManualClock());
    const log: string[] = [];
    const vm = {
      advanceTo: (time: number) => log.push(`tick ${time}`),
      processEntry: (e: StreamEntry) => log.push(`process ${e.seq}`),
    } as unknown as VirtualMachine;
    const removeA = stream.afterEntry((seq) => log.push(`a ${seq}`));
    stream.afterEntry((seq) => log.push(`b ${seq}`));
    stream.history({ entries: entries(1, 2), seq: 2, snapshot: NO_SNAPSHOT, time: 25 }, 0);
    stream.feed(vm, (e) => (log.push(`visit ${e.seq}`), false));
    expect(log).toEqual(["process 1", "a 1", "b 1", "visit 1", "process 2", "a 2", "b 2", "visit 2", "tick 25"]);
    log.length = 0;
    removeA();
    stream.entry(entry(3));
    stream.feed(vm, never);
    expect(log).toEqual(["process 3", "b 3"]);
  });

  test("externalTime is the reflector's time as last heard; extrapolatedTime adds the clock's time since", async () => {
    const clock = new ManualClock({ start: 10_000 });
    const stream = new Stream(clock);
    expect(stream.externalTime).toBe(0);
    stream.history({ entries: entries(1, 1), seq: 1, snapshot: NO_SNAPSHOT, time: 400 }, 0);
    expect(stream.externalTime).toBe(400);
    expect(stream.extrapolatedTime()).toBe(400);
    await clock.advance(30);
    expect(stream.externalTime).toBe(400);
    expect(stream.extrapolatedTime()).toBe(430);
    stream.tick(tick(450));
    expect(stream.externalTime).toBe(450);
    expect(stream.extrapolatedTime()).toBe(450);
    await clock.advance(7);
    expect(stream.extrapolatedTime()).toBe(457);
    stream.entry(entry(2, 470));
    expect(stream.externalTime).toBe(470);
    expect(stream.extrapolatedTime()).toBe(470);
    await clock.advance(100);
    expect(stream.extrapolatedTime()).toBe(570);
  });

  test("historyProgress goes from 0 to 1 as the history is fed", () => {
    const stream = new Stream(new ManualClock());
    const { vm } = fakeVM();
    stream.history({ entries: entries(1, 10), seq: 10, snapshot: NO_SNAPSHOT, time: 200 }, 0);
    expect(stream.historyProgress).toBe(0);
    stream.feed(vm, (e) => e.seq === 5);
    expect(stream.historyProgress).toBeCloseTo(0.5);
    stream.feed(vm, (e) => e.seq === 9);
    expect(stream.historyProgress).toBeCloseTo(0.9);
    stream.entry(entry(11));
    stream.entry(entry(12));
    stream.feed(vm, never);
    expect(stream.historyProgress).toBe(1);
    // A new Sync starts over.
    stream.history({ entries: entries(13, 16), seq: 16, snapshot: SOME_SNAPSHOT, time: 300 }, 12);
    expect(stream.historyProgress).toBe(0);
    stream.feed(vm, (e) => e.seq === 14);
    expect(stream.historyProgress).toBeCloseTo(0.5);
  });

  test("reset() drops what was received and not fed", () => {
    const stream = new Stream(new ManualClock());
    const { vm, calls } = fakeVM();
    stream.history({ entries: entries(1, 3), seq: 3, snapshot: NO_SNAPSHOT, time: 40 }, 0);
    stream.feed(vm, (e) => e.seq === 1);
    stream.entry(entry(4));
    stream.reset();
    expect(stream.feed(vm, never)).toBe("drained");
    expect(calls).toEqual([["processEntry", 1]]);
  });
});
