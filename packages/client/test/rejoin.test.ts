/**
 * Unit tests of what keeps a session connected (session/rejoin.ts): the backoff, the silence
 * watchdog, the Rejoiner's timers and the page-visibility watch. Time is a ManualClock; the page
 * is a fake `document` installed for the visibility tests only.
 */
import { ManualClock, createRng, testSeed } from "@lockstep/test-support";
import {
  Backoff,
  DEFAULT_AUTO_SLEEP_S,
  FIRST_RETRY_MS,
  MAX_RETRY_MS,
  Rejoiner,
  silenceLimitMs,
  startWatchdog,
  watchVisibility,
  type RejoinerEvents,
} from "../src/session/rejoin";

/** The bases of the first attempts: doubling from 250 ms, capped at 10 s. */
const BASES = [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000];

describe("Backoff", () => {
  test("the delays double from 250 ms up to 10 s, at the low end of the jitter with random() = 0", () => {
    const backoff = new Backoff(() => 0);
    expect(FIRST_RETRY_MS).toBe(250);
    expect(MAX_RETRY_MS).toBe(10_000);
    const delays = BASES.map(() => backoff.next());
    expect(delays).toEqual([188, 375, 750, 1500, 3000, 6000, 7500, 7500, 7500]);
    expect(backoff.attempts).toBe(BASES.length);
  });

  test("at the high end of the jitter (random() = 0.999) each delay stays under +25 %", () => {
    const backoff = new Backoff(() => 0.999);
    const delays = BASES.map(() => backoff.next());
    expect(delays).toEqual([312, 625, 1250, 2499, 4998, 9996, 12_495, 12_495, 12_495]);
    delays.forEach((d, i) => expect(d).toBeLessThanOrEqual(BASES[i]! * 1.25));
  });

  test("with any random() in [0, 1) each delay is within ±25 % of its base", () => {
    const rng = createRng(testSeed("rejoin.test backoff jitter"));
    for (let round = 0; round < 50; round++) {
      const backoff = new Backoff(() => rng.next());
      for (const base of BASES) {
        const d = backoff.next();
        expect(d).toBeGreaterThanOrEqual(Math.floor(base * 0.75));
        expect(d).toBeLessThanOrEqual(Math.ceil(base * 1.25));
      }
    }
  });

  test("reset() starts again from the shortest wait", () => {
    const backoff = new Backoff(() => 0);
    backoff.next();
    backoff.next();
    backoff.next();
    expect(backoff.attempts).toBe(3);
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.next()).toBe(188);
    expect(backoff.next()).toBe(375);
  });
});

test("silenceLimitMs: ten missed ticks, but never less than 5 s", () => {
  expect(silenceLimitMs(20)).toBe(5000);
  expect(silenceLimitMs(60)).toBe(5000);
  expect(silenceLimitMs(2)).toBe(5000);
  expect(silenceLimitMs(1)).toBe(10_000);
  expect(silenceLimitMs(0.5)).toBe(20_000);
});

describe("startWatchdog", () => {
  test("fires only once the silence exceeds the limit", async () => {
    const clock = new ManualClock();
    const dead = jest.fn();
    const stop = startWatchdog(clock, () => 0, 5000, dead);
    await clock.advance(5000); // exactly the limit: not yet
    expect(dead).not.toHaveBeenCalled();
    await clock.advance(1000);
    expect(dead).toHaveBeenCalledTimes(1);
    stop();
  });

  test("a shorter limit is checked at least twice within it", async () => {
    const clock = new ManualClock();
    const dead = jest.fn();
    const stop = startWatchdog(clock, () => 0, 600, dead);
    await clock.advance(600);
    expect(dead).not.toHaveBeenCalled();
    await clock.advance(300);
    expect(dead).toHaveBeenCalledTimes(1);
    stop();
  });

  test("activity heard postpones it", async () => {
    const clock = new ManualClock();
    const dead = jest.fn();
    let heard = 0;
    const stop = startWatchdog(clock, () => heard, 5000, dead);
    await clock.advance(4000);
    heard = clock.now();
    await clock.advance(5000); // 9000: 5000 since heard, not more
    expect(dead).not.toHaveBeenCalled();
    await clock.advance(1000);
    expect(dead).toHaveBeenCalledTimes(1);
    stop();
  });

  test("stop() cancels it", async () => {
    const clock = new ManualClock();
    const dead = jest.fn();
    const stop = startWatchdog(clock, () => 0, 5000, dead);
    expect(clock.pending).toBe(1);
    stop();
    expect(clock.pending).toBe(0);
    await clock.advance(60_000);
    expect(dead).not.toHaveBeenCalled();
  });
});

function recorder() {
  const log: string[] = [];
  const events: RejoinerEvents = {
    rejoin: jest.fn(() => void log.push("rejoin")),
    silent: jest.fn((reason: string) => void log.push(`silent: ${reason}`)),
    sleep: jest.fn(() => void log.push("sleep")),
    wake: jest.fn(() => void log.push("wake")),
    pageHidden: jest.fn(() => void log.push("pagehide")),
  };
  return { log, events };
}

describe("Rejoiner", () => {
  test("retry() schedules a rejoin after exactly the backoff delay", async () => {
    const seed = testSeed("rejoin.test rejoiner delays");
    const clock = new ManualClock();
    const { events } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 20, autoSleep: 0, random: createRng(seed).next }, events);
    // The same random stream gives the delays the rejoiner waits.
    const expected = new Backoff(createRng(seed).next);
    for (let attempt = 1; attempt <= 4; attempt++) {
      const delay = expected.next();
      rejoiner.retry();
      expect(rejoiner.attempts).toBe(attempt);
      await clock.advance(delay - 1);
      expect(events.rejoin).toHaveBeenCalledTimes(attempt - 1);
      await clock.advance(1);
      expect(events.rejoin).toHaveBeenCalledTimes(attempt);
    }
    expect(clock.pending).toBe(0);
  });

  test("a second retry() while one is scheduled does not schedule another", async () => {
    const clock = new ManualClock();
    const { events } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 20, autoSleep: 0, random: () => 0 }, events);
    rejoiner.retry();
    rejoiner.retry();
    rejoiner.retry();
    expect(clock.pending).toBe(1);
    expect(rejoiner.attempts).toBe(1);
    await clock.advance(188);
    expect(events.rejoin).toHaveBeenCalledTimes(1);
    await clock.advance(60_000);
    expect(events.rejoin).toHaveBeenCalledTimes(1);
    // Once it fired, the next retry waits the next (longer) delay.
    rejoiner.retry();
    await clock.advance(374);
    expect(events.rejoin).toHaveBeenCalledTimes(1);
    await clock.advance(1);
    expect(events.rejoin).toHaveBeenCalledTimes(2);
  });

  test("joined() and woke() reset the backoff", async () => {
    const clock = new ManualClock();
    const { events } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 20, autoSleep: 0, random: () => 0 }, events);
    for (const delay of [188, 375, 750]) {
      rejoiner.retry();
      await clock.advance(delay);
    }
    expect(events.rejoin).toHaveBeenCalledTimes(3);
    rejoiner.joined();
    expect(rejoiner.attempts).toBe(0);
    rejoiner.retry();
    await clock.advance(187);
    expect(events.rejoin).toHaveBeenCalledTimes(3);
    await clock.advance(1);
    expect(events.rejoin).toHaveBeenCalledTimes(4);

    rejoiner.retry();
    await clock.advance(375);
    expect(rejoiner.attempts).toBe(2);
    rejoiner.woke();
    expect(rejoiner.attempts).toBe(0);
    rejoiner.retry();
    await clock.advance(188);
    expect(events.rejoin).toHaveBeenCalledTimes(6);
    rejoiner.stop();
  });

  test("connected() and then silence past the limit reports it, naming the seconds", async () => {
    const clock = new ManualClock({ start: 123_456 });
    const { events } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 20, autoSleep: 0 }, events);
    rejoiner.connected();
    await clock.advance(5000);
    expect(events.silent).not.toHaveBeenCalled();
    await clock.advance(1000);
    expect(events.silent).toHaveBeenCalledTimes(1);
    expect(events.silent).toHaveBeenCalledWith("nothing heard from the reflector for 5 s");
    rejoiner.stop();
  });

  test("the silence limit follows the tick rate", async () => {
    const clock = new ManualClock();
    const { events } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 0.5, autoSleep: 0 }, events);
    rejoiner.connected();
    await clock.advance(20_000);
    expect(events.silent).not.toHaveBeenCalled();
    await clock.advance(1000);
    expect(events.silent).toHaveBeenCalledWith("nothing heard from the reflector for 20 s");
    rejoiner.stop();
  });

  test("heard() postpones the silence, and a new connected() starts counting again", async () => {
    const clock = new ManualClock();
    const { events } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 20, autoSleep: 0 }, events);
    rejoiner.connected();
    await clock.advance(4500);
    rejoiner.heard();
    await clock.advance(4500);
    rejoiner.heard();
    await clock.advance(4500);
    expect(events.silent).not.toHaveBeenCalled();
    rejoiner.connected(); // a new socket: one watchdog, counting from now
    expect(clock.pending).toBe(1);
    await clock.advance(5000);
    expect(events.silent).not.toHaveBeenCalled();
    await clock.advance(1000);
    expect(events.silent).toHaveBeenCalledTimes(1);
    rejoiner.stop();
  });

  test("disconnected() stops the watchdog", async () => {
    const clock = new ManualClock();
    const { events } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 20, autoSleep: 0 }, events);
    rejoiner.connected();
    expect(clock.pending).toBe(1);
    rejoiner.disconnected();
    expect(clock.pending).toBe(0);
    await clock.advance(60_000);
    expect(events.silent).not.toHaveBeenCalled();
  });

  test("stop() cancels the watchdog and a scheduled rejoin", async () => {
    const clock = new ManualClock();
    const { events } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 20, autoSleep: 0, random: () => 0.5 }, events);
    rejoiner.connected();
    rejoiner.retry();
    expect(clock.pending).toBe(2);
    rejoiner.stop();
    expect(clock.pending).toBe(0);
    await clock.advance(60_000);
    expect(events.rejoin).not.toHaveBeenCalled();
    expect(events.silent).not.toHaveBeenCalled();
    // A retry after stop() is a fresh one (the cancelled timer does not block it).
    rejoiner.retry();
    expect(clock.pending).toBe(1);
    rejoiner.stop();
    expect(clock.pending).toBe(0);
  });
});

/** A page's `document`, as much of it as the visibility watch uses. */
class FakeDocument {
  visibilityState: "visible" | "hidden" = "visible";
  readonly listeners = new Set<() => void>();
  addEventListener(type: string, listener: () => void): void {
    if (type === "visibilitychange") this.listeners.add(listener);
  }
  removeEventListener(type: string, listener: () => void): void {
    if (type === "visibilitychange") this.listeners.delete(listener);
  }
  set(state: "visible" | "hidden"): void {
    this.visibilityState = state;
    for (const l of [...this.listeners]) l();
  }
}

describe("page visibility", () => {
  let doc: FakeDocument;
  const global = globalThis as { document?: unknown };

  beforeEach(() => {
    expect(global.document).toBeUndefined();
    doc = new FakeDocument();
    global.document = doc;
  });

  afterEach(() => {
    delete global.document;
  });

  test("without a document nothing is watched", () => {
    delete global.document;
    const clock = new ManualClock();
    const stop = watchVisibility(clock, 10, jest.fn(), jest.fn());
    expect(clock.pending).toBe(0);
    stop();
  });

  test("hidden for `seconds` → sleep, exactly then; visible again → wake", async () => {
    const clock = new ManualClock();
    const sleep = jest.fn();
    const wake = jest.fn();
    const stop = watchVisibility(clock, 10, sleep, wake);
    expect(doc.listeners.size).toBe(1);
    doc.set("hidden");
    await clock.advance(9999);
    expect(sleep).not.toHaveBeenCalled();
    await clock.advance(1);
    expect(sleep).toHaveBeenCalledTimes(1);
    expect(wake).not.toHaveBeenCalled();
    doc.set("visible");
    expect(wake).toHaveBeenCalledTimes(1);
    await clock.advance(60_000);
    expect(sleep).toHaveBeenCalledTimes(1);
    stop();
    expect(doc.listeners.size).toBe(0);
  });

  test("visible again before the delay → no sleep", async () => {
    const clock = new ManualClock();
    const sleep = jest.fn();
    const wake = jest.fn();
    const stop = watchVisibility(clock, 10, sleep, wake);
    doc.set("hidden");
    await clock.advance(9000);
    doc.set("visible");
    expect(clock.pending).toBe(0);
    await clock.advance(60_000);
    expect(sleep).not.toHaveBeenCalled();
    // Hidden again: the delay starts over.
    doc.set("hidden");
    await clock.advance(9999);
    expect(sleep).not.toHaveBeenCalled();
    await clock.advance(1);
    expect(sleep).toHaveBeenCalledTimes(1);
    stop();
  });

  test("a page already hidden when the watch starts sleeps after the delay", async () => {
    const clock = new ManualClock();
    const sleep = jest.fn();
    doc.visibilityState = "hidden";
    const stop = watchVisibility(clock, 3, sleep, jest.fn());
    await clock.advance(2999);
    expect(sleep).not.toHaveBeenCalled();
    await clock.advance(1);
    expect(sleep).toHaveBeenCalledTimes(1);
    stop();
  });

  test("stopping the watch cancels a pending sleep; seconds = 0 never sleeps", async () => {
    const clock = new ManualClock();
    const sleep = jest.fn();
    const stop = watchVisibility(clock, 10, sleep, jest.fn());
    doc.set("hidden");
    expect(clock.pending).toBe(1);
    stop();
    expect(clock.pending).toBe(0);
    expect(doc.listeners.size).toBe(0);
    await clock.advance(60_000);
    expect(sleep).not.toHaveBeenCalled();

    const stopNever = watchVisibility(clock, 0, sleep, jest.fn());
    expect(doc.listeners.size).toBe(0);
    doc.set("visible");
    doc.set("hidden");
    await clock.advance(60_000);
    expect(sleep).not.toHaveBeenCalled();
    stopNever();
  });

  test("Rejoiner: once joined, a page hidden for autoSleep seconds sleeps and wakes when visible", async () => {
    const clock = new ManualClock();
    const { events, log } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 20, autoSleep: DEFAULT_AUTO_SLEEP_S }, events);
    doc.set("hidden"); // not joined yet: nothing watches
    expect(doc.listeners.size).toBe(0);
    doc.set("visible");
    rejoiner.joined();
    rejoiner.joined(); // a rejoin does not watch twice
    expect(doc.listeners.size).toBe(1);
    doc.set("hidden");
    await clock.advance(DEFAULT_AUTO_SLEEP_S * 1000 - 1);
    expect(events.sleep).not.toHaveBeenCalled();
    expect(rejoiner.sleepWanted).toBe(false);
    await clock.advance(1);
    expect(events.sleep).toHaveBeenCalledTimes(1);
    expect(rejoiner.sleepWanted).toBe(true);
    doc.set("visible");
    expect(events.wake).toHaveBeenCalledTimes(1);
    expect(rejoiner.sleepWanted).toBe(false);
    expect(log).toEqual(["sleep", "wake"]);
    rejoiner.stop();
  });

  test("Rejoiner: visible before autoSleep seconds → no sleep", async () => {
    const clock = new ManualClock();
    const { events } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 20, autoSleep: 5 }, events);
    rejoiner.joined();
    doc.set("hidden");
    await clock.advance(4999);
    doc.set("visible");
    await clock.advance(60_000);
    expect(events.sleep).not.toHaveBeenCalled();
    expect(rejoiner.sleepWanted).toBe(false);
    rejoiner.stop();
  });

  test("Rejoiner: autoSleep 0 never sleeps", async () => {
    const clock = new ManualClock();
    const { events } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 20, autoSleep: 0 }, events);
    rejoiner.joined();
    doc.set("hidden");
    await clock.advance(600_000);
    expect(events.sleep).not.toHaveBeenCalled();
    rejoiner.stop();
  });

  test("Rejoiner.stop() cancels everything: watchdog, rejoin, pending sleep and the visibility listener", async () => {
    const clock = new ManualClock();
    const { events } = recorder();
    const rejoiner = new Rejoiner({ timers: clock, tps: 20, autoSleep: 10, random: () => 0 }, events);
    rejoiner.connected();
    rejoiner.joined();
    rejoiner.retry();
    doc.set("hidden");
    expect(clock.pending).toBe(3);
    rejoiner.stop();
    expect(clock.pending).toBe(0);
    expect(doc.listeners.size).toBe(0);
    await clock.advance(600_000);
    expect(events.rejoin).not.toHaveBeenCalled();
    expect(events.silent).not.toHaveBeenCalled();
    expect(events.sleep).not.toHaveBeenCalled();
    // Joined again after stop(): the watch is set up anew.
    rejoiner.joined();
    expect(doc.listeners.size).toBe(1);
    rejoiner.stop();
    expect(doc.listeners.size).toBe(0);
  });
});
