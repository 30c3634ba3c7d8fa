/**
 * Multisynq's debug flags: how the `debug` option and the URL combine (`noX` negates, the URL comes
 * last), and what each flag prints — checked on a real session run offline (`debug: "offline"`,
 * no reflector) on a manual clock, with the console spied on.
 */
import { ManualClock } from "@lockstep/test-support";
import { Model, Session, View, type LockstepSession } from "../src/index";
import { DEBUG_FLAGS, DebugLog } from "../src/kernel/debug-log";
import { debugFlags, urlDebugWords } from "../src/session/debug";

class Tally extends Model {
  total = 0;
  override init(): void {
    this.subscribe("tally", "add", this.add);
    this.subscribe("tally", "noop", this.noop);
    this.unsubscribe("tally", "noop");
  }
  add(n: number): void {
    this.total += n;
    this.publish("tally", "total", this.total);
  }
  noop(): void {}
}
Tally.register("Test.Debug.Tally");

class TallyView extends View {
  totals: number[] = [];
  constructor(model: Tally) {
    super(model);
    this.subscribe("tally", "total", this.showTotal);
  }
  showTotal(total: number): void {
    this.totals.push(total);
  }
}

describe("debugFlags: the option, then the URL", () => {
  test("a string, a comma-separated string or an array; words are trimmed and case-insensitive", () => {
    expect([...debugFlags("session", [])]).toEqual(["session"]);
    expect([...debugFlags(" session , Messages ", [])]).toEqual(["session", "messages"]);
    expect([...debugFlags(["sends", "ticks,hashing"], [])]).toEqual(["sends", "ticks", "hashing"]);
    expect(debugFlags(undefined, []).size).toBe(0);
  });

  test("singular and plural name the same flag", () => {
    expect([...debugFlags("message,send,tick,class,event,snapshots,sessions", [])]).toEqual(["messages", "sends", "ticks", "classes", "events", "snapshot", "session"]);
  });

  test("noX turns X off; the URL comes after the option, and the later word wins", () => {
    expect([...debugFlags("session,messages", ["nomessages"])]).toEqual(["session"]);
    expect(debugFlags("session", ["nosession"]).has("session")).toBe(false);
    expect(debugFlags("nosession", ["session"]).has("session")).toBe(true);
    expect(debugFlags(["session", "nosession"], []).has("session")).toBe(false);
    expect(debugFlags(undefined, ["ticks", "noticks", "ticks"]).has("ticks")).toBe(true);
  });

  test("the URL's words come from the query and the fragment's parameters", () => {
    expect(urlDebugWords({ search: "?q=room&debug=session,ticks", hash: "#pw=x&debug=nosession" })).toEqual(["session", "ticks", "nosession"]);
    expect(urlDebugWords({ search: "?debug=a&debug=b", hash: "" })).toEqual(["a", "b"]);
    expect(urlDebugWords(undefined)).toEqual([]);
  });

  test("an unknown word is kept and warned about once; a bad option type is a UsageError", () => {
    const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
    try {
      expect(debugFlags("sesion", []).has("sesion")).toBe(true);
      debugFlags("sesion", []);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toContain('unknown debug flag "sesion"');
    } finally {
      warn.mockRestore();
    }
    expect(() => debugFlags(42, [])).toThrow(/debug must be a string/);
    expect(() => debugFlags([1], [])).toThrow(/debug must be a string/);
  });

  test("DebugLog has a field per Multisynq flag and logs with the [Lockstep] prefix; its Data hook is silent when off", () => {
    const log = jest.spyOn(console, "log").mockImplementation(() => {});
    try {
      const all = new DebugLog(new Set(DEBUG_FLAGS));
      for (const flag of DEBUG_FLAGS) expect((all as unknown as Record<string, boolean>)[flag]).toBe(true);
      all.logData("store", { bytes: 2048, ms: 12.4, id: "abc" });
      expect(log).toHaveBeenLastCalledWith("[Lockstep] Data store: 2.0KB in 12 ms (id abc)");
      new DebugLog(new Set(["session"])).logData("fetch", { bytes: 1 });
      expect(log).toHaveBeenCalledTimes(1);
    } finally {
      log.mockRestore();
    }
  });
});

/** Runs a small offline session with `flags`, returns what it printed (each console.log call as one string). */
async function run(flags: string): Promise<string[]> {
  const lines: string[] = [];
  const format = (args: unknown[]): string => args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
  const log = jest.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(format(args)));
  const clock = new ManualClock();
  let session: LockstepSession | undefined;
  try {
    session = await Session.join({ appId: "test.debug", name: `flags-${flags}`, password: "pw", model: Tally, view: TallyView, debug: `offline,${flags}`, timers: clock, tps: 10 });
    const view = session.view as TallyView;
    await clock.advance(200);
    view.publish("tally", "add", 5);
    await clock.runUntil(() => view.totals.length === 1, { maxMs: 1000 });
    await clock.advance(100); // the frame after: view handlers ran
  } finally {
    await session?.leave();
    log.mockRestore();
  }
  return lines;
}

const has = (lines: string[], pattern: RegExp): boolean => lines.some((line) => pattern.test(line));

describe("what each flag prints", () => {
  test("no flags but offline: nothing", async () => {
    expect(await run("")).toEqual([]);
  });

  test("session: identity and connections", async () => {
    const lines = await run("session");
    expect(has(lines, /^\[Lockstep\] Joining session \(sessionId: [\w-]{43}, persistentId: /)).toBe(true);
    expect(has(lines, /^\[Lockstep\] connecting to offline:/)).toBe(true);
    expect(has(lines, /^\[Lockstep\] connected to offline:/)).toBe(true);
    expect(has(lines, /^\[Lockstep\] disconnected from offline: \(close code 1000/)).toBe(true);
  });

  test("messages: stream entries received, and relayed events decrypted", async () => {
    const lines = await run("messages");
    expect(has(lines, /^\[Lockstep\] received Sync \(\d+B\): session at #0, t=0, 0 entries/)).toBe(true);
    expect(has(lines, /^\[Lockstep\] received #1 \(t=0\): ViewJoin of view /)).toBe(true);
    expect(has(lines, /^\[Lockstep\] received #2 \(t=200\) from view [\w-]+ \(#1\): 1 event\(s\)/)).toBe(true);
    expect(lines).toContain('[Lockstep]   "tally:add" 5');
    expect(has(lines, /ViewExit/)).toBe(false); // the exit comes after this client left
  });

  test("sends: what views send, before encryption, and the frames", async () => {
    const lines = await run("sends");
    expect(lines).toContain('[Lockstep] sending "tally:add" 5');
    expect(has(lines, /^\[Lockstep\] sent Join as view [\w-]+$/)).toBe(true);
    expect(has(lines, /^\[Lockstep\] sent Send \(\d+B\)$/)).toBe(true);
    expect(has(lines, /^\[Lockstep\] sent Leave/)).toBe(true);
  });

  test("ticks: each tick", async () => {
    const lines = await run("ticks");
    expect(lines).toContain("[Lockstep] tick t=100");
    expect(lines).toContain("[Lockstep] tick t=200");
    expect(lines.every((line) => line.startsWith("[Lockstep] tick t="))).toBe(true);
  });

  test("subscribe: model and view subscriptions added and removed", async () => {
    const lines = await run("subscribe");
    expect(has(lines, /^\[Lockstep\] Tally#M1 subscribed to "tally:add" \(add\)$/)).toBe(true);
    expect(has(lines, /^\[Lockstep\] Tally#M1 unsubscribed from "tally:noop"$/)).toBe(true);
    expect(has(lines, /^\[Lockstep\] TallyView(#\S+)? subscribed to "tally:total" \(showTotal, queued\)$/)).toBe(true);
    expect(has(lines, /^\[Lockstep\] TallyView(#\S+)? unsubscribed from everything$/)).toBe(true); // detached on leave
  });

  test("publish: model and view publishes", async () => {
    const lines = await run("publish");
    expect(lines).toContain('[Lockstep] view published "tally:add" 5');
    expect(lines).toContain('[Lockstep] model published "tally:total" at t=200 5');
    expect(has(lines, /^\[Lockstep\] session published "[\w-]+:view-join" at t=0/)).toBe(true);
  });

  test("events: events reaching model and view handlers", async () => {
    const lines = await run("events");
    expect(lines).toContain('[Lockstep] event "tally:add" from a view → model handlers 5');
    expect(has(lines, /^\[Lockstep\] event "tally:total" → TallyView(#\S+)? \(queued\) 5$/)).toBe(true);
  });

  test("classes and hashing: what went into the session's ids", async () => {
    const classes = await run("classes");
    expect(has(classes, /registered class\(es\), in registration order:$/)).toBe(true);
    expect(classes).toContain('[Lockstep]   class Tally as "Test.Debug.Tally"');
    const hashing = await run("hashing");
    expect(has(hashing, /^\[Lockstep\] hashing: class "Test\.Debug\.Tally" \(Tally, \d+ chars of normalized source\) → [\w-]{43}$/)).toBe(true);
    expect(has(hashing, /^\[Lockstep\] hashing: Constants → [\w-]{43}$/)).toBe(true);
    expect(has(hashing, /^\[Lockstep\] hashing: versionId = H\(lockstep-\d+ \| \d+ class hash\(es\) \| Constants\) = [\w-]{43}$/)).toBe(true);
    expect(has(hashing, /^\[Lockstep\] hashing: persistentId = H\("test\.debug\/flags-hashing"\) = [\w-]{43}$/)).toBe(true);
    expect(has(hashing, /^\[Lockstep\] hashing: sessionId = H\(persistentId \| \{\} \| versionId\) = [\w-]{43}$/)).toBe(true);
  });

  test("write: a view writing model state throws, naming class and property", async () => {
    const clock = new ManualClock();
    const session = await Session.join({ appId: "test.debug", name: "write", password: "pw", model: Tally, view: TallyView, debug: "offline,write", timers: clock });
    try {
      expect(() => {
        (session.model as Tally).total = 1;
      }).toThrow(/debug=write: .*Tally\.total/);
    } finally {
      await session.leave();
    }
  });
});
