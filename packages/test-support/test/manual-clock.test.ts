import { every, unrefTimer } from "@lockstep/protocol";
import { ManualClock } from "../src/manual-clock";

test("timers fire in time order, ties in the order they were set, each seeing its own time", async () => {
  const clock = new ManualClock();
  const fired: Array<[string, number]> = [];
  const at = (label: string) => () => fired.push([label, clock.now()]);
  clock.setTimeout(at("c@30"), 30);
  clock.setTimeout(at("a@10"), 10);
  clock.setTimeout(at("b1@20"), 20);
  clock.setTimeout(at("b2@20"), 20);
  clock.setTimeout(at("late@101"), 101);
  expect(clock.pending).toBe(5);
  await clock.advance(100);
  expect(fired).toEqual([
    ["a@10", 10],
    ["b1@20", 20],
    ["b2@20", 20],
    ["c@30", 30],
  ]);
  expect(clock.now()).toBe(100);
  expect(clock.pending).toBe(1);
  expect(clock.nextAt).toBe(101);
  await clock.advance(1);
  expect(fired.at(-1)).toEqual(["late@101", 101]);
  expect(clock.pending).toBe(0);
});

test("timers set by callbacks fire in the same advance when due, after the ones already due at that time", async () => {
  const clock = new ManualClock({ start: 1000 });
  const fired: string[] = [];
  clock.setTimeout(() => {
    fired.push("first");
    clock.setTimeout(() => fired.push("zero-delay from first"), 0);
    clock.setTimeout(() => fired.push("+5 from first"), 5);
    clock.setTimeout(() => fired.push("+500 from first"), 500);
  }, 10);
  clock.setTimeout(() => fired.push("second, same time"), 10);
  await clock.advance(20);
  expect(fired).toEqual(["first", "second, same time", "zero-delay from first", "+5 from first"]);
  expect(clock.now()).toBe(1020);
  expect(clock.pending).toBe(1);
});

test("clearTimeout cancels; clearing a fired, cleared or foreign handle does nothing", async () => {
  const clock = new ManualClock();
  const other = new ManualClock();
  const fired: string[] = [];
  const a = clock.setTimeout(() => fired.push("a"), 10);
  const b = clock.setTimeout(() => fired.push("b"), 10);
  const foreign = other.setTimeout(() => fired.push("foreign"), 10);
  clock.clearTimeout(a);
  clock.clearTimeout(a);
  clock.clearTimeout(foreign);
  clock.clearTimeout(undefined);
  clock.clearTimeout(42);
  expect(clock.pending).toBe(1);
  expect(other.pending).toBe(1);
  unrefTimer(b); // a no-op for fake handles
  await clock.advance(10);
  clock.clearTimeout(b); // already fired
  expect(fired).toEqual(["b"]);
  expect(clock.pending).toBe(0);
  await other.advance(10);
  expect(fired).toEqual(["b", "foreign"]);
});

test("many timers set and cancelled (a timeout pushed back on progress) keep order and count", async () => {
  const clock = new ManualClock();
  const fired: number[] = [];
  let handle = clock.setTimeout(() => fired.push(-1), 5000);
  for (let i = 0; i < 5000; i++) {
    clock.clearTimeout(handle);
    handle = clock.setTimeout(() => fired.push(i), 5000 + i);
    if (i % 1000 === 0) clock.setTimeout(() => fired.push(1e6 + i), i + 1);
  }
  expect(clock.pending).toBe(6);
  await clock.advance(20_000);
  expect(fired).toEqual([1e6, 1e6 + 1000, 1e6 + 2000, 1e6 + 3000, 1e6 + 4000, 4999]);
});

test("promise chains, microtasks and setImmediate started by a callback settle before the next callback", async () => {
  const clock = new ManualClock();
  const log: string[] = [];
  clock.setTimeout(() => {
    void (async () => {
      for (let i = 0; i < 20; i++) await Promise.resolve();
      log.push("chain done");
      await new Promise((resolve) => setImmediate(resolve));
      log.push("after an immediate");
      queueMicrotask(() => {
        log.push("microtask");
        setImmediate(() => clock.noteActivity()); // reported work: settle keeps waiting for it
      });
    })();
  }, 10);
  clock.setTimeout(() => log.push("next timer"), 10);
  await clock.advance(10);
  expect(log).toEqual(["chain done", "after an immediate", "microtask", "next timer"]);
});

test("advance settles work that was pending before it, and at its end", async () => {
  const clock = new ManualClock();
  let seenAt: number | undefined;
  void Promise.resolve().then(() => clock.setTimeout(() => (seenAt = clock.now()), 5));
  await clock.advance(5);
  expect(seenAt).toBe(5);
  let after = false;
  clock.setTimeout(() => void Promise.resolve().then(() => (after = true)), 1);
  await clock.advance(1);
  expect(after).toBe(true);
});

test("a timer that re-arms itself with no delay makes advance throw instead of hanging", async () => {
  const clock = new ManualClock({ maxCallbacks: 1000 });
  const loop = (): void => void clock.setTimeout(loop, 0);
  loop();
  await expect(clock.advance(1)).rejects.toThrow(/more than 1000 timer callbacks.*re-arming itself/);
});

test("a callback's exception rejects advance at that timer's time; the clock stays usable", async () => {
  const clock = new ManualClock();
  clock.setTimeout(() => {
    throw new Error("boom");
  }, 7);
  const later = jest.fn();
  clock.setTimeout(later, 9);
  await expect(clock.advance(10)).rejects.toThrow("boom");
  expect(clock.now()).toBe(7);
  expect(later).not.toHaveBeenCalled();
  await clock.advance(3);
  expect(later).toHaveBeenCalledTimes(1);
});

test("advance refuses to run inside another advance, and bad durations", async () => {
  const clock = new ManualClock();
  let nested: unknown;
  clock.setTimeout(() => {
    clock.advance(1).catch((error: unknown) => (nested = error));
  }, 1);
  await clock.advance(2);
  expect(String(nested)).toMatch(/already advancing/);
  expect(clock.now()).toBe(2);
  await expect(clock.advance(-1)).rejects.toThrow(RangeError);
  await expect(clock.advance(Number.NaN)).rejects.toThrow(RangeError);
});

test("every() from the protocol runs on it: 20 calls in 1000 ms at 50 ms, none after stop", async () => {
  const clock = new ManualClock();
  const calls: number[] = [];
  const stop = every(clock, 50, () => calls.push(clock.now()));
  await clock.advance(1000);
  expect(calls).toHaveLength(20);
  expect(calls[0]).toBe(50);
  expect(calls.at(-1)).toBe(1000);
  stop();
  expect(clock.pending).toBe(0);
  await clock.advance(1000);
  expect(calls).toHaveLength(20);
});

test("runUntil stops at the timer that made the condition true", async () => {
  const clock = new ManualClock();
  let count = 0;
  const stop = every(clock, 30, () => count++);
  await clock.runUntil(() => count === 4);
  expect(clock.now()).toBe(120);
  stop();
  let flag = false;
  clock.setTimeout(() => void Promise.resolve().then(() => (flag = true)), 1000);
  await clock.runUntil(() => flag, { stepMs: 100 });
  expect(clock.now()).toBe(1120);
});

test("runUntil with stepMs moves in steps of at most stepMs", async () => {
  const clock = new ManualClock();
  const seen: number[] = [];
  await clock.runUntil(() => {
    seen.push(clock.now());
    return clock.now() >= 250;
  }, { stepMs: 100 });
  expect(seen).toEqual([0, 100, 200, 300]);
});

test("runUntil throws a clear error with now() once maxMs passed", async () => {
  const clock = new ManualClock({ start: 500 });
  const stop = every(clock, 100, () => undefined);
  await expect(clock.runUntil(() => false, { maxMs: 1000 })).rejects.toThrow(/did not hold after 1000 ms of clock time \(from 500 to now\(\) = 1500 ms, 1 timers pending\)/);
  stop();
  await expect(new ManualClock().runUntil(() => false, { maxMs: 10 })).rejects.toThrow(/now\(\) = 10 ms/);
});

test("settle lets pending work finish without moving the clock", async () => {
  const clock = new ManualClock({ start: 3 });
  let done = false;
  void (async () => {
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.resolve();
    done = true;
  })();
  await clock.settle();
  expect(done).toBe(true);
  expect(clock.now()).toBe(3);
});

test("settle keeps going while work is reported, and ends when it stops", async () => {
  const clock = new ManualClock();
  let rounds = 0;
  const spin = (): void => {
    if (++rounds < 50) {
      clock.noteActivity();
      setImmediate(spin);
    }
  };
  setImmediate(spin);
  clock.noteActivity();
  await clock.settle();
  expect(rounds).toBe(50);
});
