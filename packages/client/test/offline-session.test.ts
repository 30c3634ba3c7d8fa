/**
 * `debug: "offline"`: a session with no reflector, in one process — models run, ticks advance
 * model time, view events round-trip through the in-page stand-in, persisted data is acknowledged
 * and leaving is prompt.
 */
import { Model, Session, View } from "../src/index";
import { OFFLINE_REFLECTOR_URL, offlineSocketFactory } from "../src/session/offline";
import { SessionController } from "../src/session/controller";
import type { SocketLike } from "../src/session/connection";
import { debugFlags } from "../src/session/debug";
import { realTimers } from "@lockstep/protocol";
import { ManualClock } from "@lockstep/test-support";

class Clock extends Model {
  ticks = 0;
  count = 0;
  log: string[] = [];
  override init(): void {
    this.subscribe("counter", "add", this.add);
    this.subscribe(this.sessionId, "view-join", this.joined);
    this.future(100).tick();
  }
  tick(): void {
    this.ticks++;
    this.future(100).tick();
  }
  add(n: number): void {
    this.count += n;
    this.publish("counter", "changed", this.count);
  }
  joined(): void {
    this.log.push(`join@${this.now()}`);
  }
}
Clock.register("Test.Offline.Clock");

class ClockView extends View {
  seen: number[] = [];
  constructor(model: Clock) {
    super(model);
    this.subscribe("counter", "changed", (n: number) => this.seen.push(n));
  }
}

/** Resolves once `test()` holds, checked after every processed entry and every frame (no sleeps). */
function until(session: { afterEntry(cb: () => void): () => void; on(e: "change", cb: () => void): () => void }, test: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (test()) return resolve();
    const stops: Array<() => void> = [];
    const check = (): void => {
      if (!test()) return;
      for (const stop of stops) stop();
      resolve();
    };
    stops.push(session.afterEntry(check), session.on("change", check));
  });
}

class Saved extends Model {
  lines: string[] = [];
  override init(_options: unknown, persisted?: { lines: string[] }): void {
    if (persisted) this.lines = persisted.lines;
    this.subscribe("saved", "add", this.add);
  }
  add(line: string): void {
    this.lines.push(line);
    this.persistSession(() => ({ lines: this.lines }));
  }
}
Saved.register("Test.Offline.Saved");

describe('debug: "offline"', () => {
  test("persisted data is acknowledged by the stand-in: a flush resolves at once, and says it was saved", async () => {
    const lines: string[] = [];
    const log = jest.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    const session = await Session.join({ appId: "test.offline", name: "saved", password: "pw", model: Saved, debug: "offline,session" });
    try {
      session.view.publish("saved", "add", "kept");
      await until(session, () => (session.model as Saved).lines.length === 1);
      const started = Date.now();
      await session.flushPersistence();
      expect(Date.now() - started).toBeLessThan(1000);
      // The stand-in also stamps the save as durable in the stream (a Persisted entry), as a reflector does.
      await until(session, () => lines.some((l) => /^\[Lockstep\] Persistent data saved \(\d+B\)$/.test(l)));
    } finally {
      await session.leave();
      log.mockRestore();
    }
  });

  test("joins without a reflector; models run, ticks advance time, events round-trip, leave is prompt", async () => {
    const clock = new ManualClock();
    // A reflector URL that nothing listens on: offline must not try it.
    const session = await Session.join({ appId: "test.offline", name: "solo", password: "pw", model: Clock, view: ClockView, debug: "offline", reflector: "ws://127.0.0.1:9/", timers: clock, tps: 10 });
    try {
      const model = session.model as Clock;
      const view = session.view as ClockView;
      expect(model.log).toEqual(["join@0"]);
      expect(session.viewIds).toEqual([session.viewId]);

      // Ticks (10 per second): model time follows the clock with no input, and futures run on time.
      await clock.advance(350);
      expect(model.now()).toBe(300);
      expect(model.ticks).toBe(3);
      await clock.advance(50);
      expect(model.now()).toBe(400);
      expect(model.ticks).toBe(4);

      // A view event goes through the stand-in (ordered, stamped) and comes back to the views.
      view.publish("counter", "add", 2);
      view.publish("counter", "add", 3);
      await clock.runUntil(() => view.seen.length === 2, { maxMs: 1000 });
      expect(model.count).toBe(5);
      expect(view.seen).toEqual([2, 5]);
      expect(session.pendingEvents).toBe(0);
    } finally {
      // Prompt on real time too: the stand-in acknowledges the Leave's close at once.
      const started = Date.now();
      await session.leave();
      expect(Date.now() - started).toBeLessThan(1000);
    }
    expect(session.status).toBe("ended");
  });

  test("?debug=offline in the URL works like the option; nooffline in the URL turns it off", () => {
    expect(debugFlags(undefined, ["offline"]).has("offline")).toBe(true);
    expect(debugFlags("offline", ["nooffline"]).has("offline")).toBe(false);
  });

  test("the stand-in's session is shared by every socket of one factory: a rejoin replays or resumes it", async () => {
    const socket = offlineSocketFactory(realTimers);
    const join = (): Promise<SessionController> =>
      SessionController.create({
        ...baseParams(),
        socket,
      });
    const first = await join();
    await first.start({});
    const model = first.rootModel as Clock;
    const firstView = first.viewId;
    first.realm.publish("counter", "add", 7);
    await new Promise<void>((resolve) => {
      const stop = first.afterEntry(() => {
        if (model.count === 7) {
          stop();
          resolve();
        }
      });
    });
    await first.leave();

    // A second client of the same factory (the same page's session after a reload of its view):
    // it replays the whole stream, so it sees what the first one did and that it left.
    const second = await join();
    await second.start({});
    const again = second.rootModel as Clock;
    expect(again.count).toBe(7);
    expect(again.log).toHaveLength(2);
    expect(second.vm.viewIds).toEqual([second.viewId]);
    expect(second.vm.viewIds).not.toContain(firstView);
    await second.leave();
  });
});

test("a lost connection resumes: the same replica and root view go on, and the stand-in sends what was missed", async () => {
  const offline = offlineSocketFactory(realTimers);
  const sockets: SocketLike[] = [];
  const socket = async (url: string): Promise<SocketLike> => {
    const s = await offline(url);
    sockets.push(s);
    return s;
  };
  const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
  const c = await SessionController.create({ ...baseParams(), name: "resume", socket });
  try {
    await c.start({});
    const model = c.rootModel as Clock;
    const view = c.rootView;
    // The connection drops (not a Leave): the stand-in keeps the view for it to resume.
    sockets[0]!.close(1006, "gone");
    await new Promise<void>((resolve) => {
      const stop = c.status.on((status) => {
        if (status === "connected") {
          stop();
          resolve();
        }
      });
    });
    expect(sockets).toHaveLength(2);
    expect(c.rootModel).toBe(model);
    expect(c.rootView).toBe(view);
    expect(model.log).toHaveLength(1); // joined once, never exited
    c.realm.publish("counter", "add", 1);
    await new Promise<void>((resolve) => {
      const stop = c.afterEntry(() => model.count === 1 && (stop(), resolve()));
    });
  } finally {
    await c.leave();
    warn.mockRestore();
  }
});

function baseParams(): Parameters<typeof SessionController.create>[0] {
  return {
    appId: "test.offline",
    name: "shared",
    password: "pw",
    model: Clock,
    view: ClockView,
    options: {},
    viewOptions: undefined,
    viewData: undefined,
    tps: 20,
    step: "auto",
    debug: new Set(["offline"]),
    reflector: OFFLINE_REFLECTOR_URL,
    socket: offlineSocketFactory(realTimers),
    timers: realTimers,
    progressReporter: undefined,
    autoSleep: 0,
    ui: undefined,
    token: undefined,
    offline: false,
  };
}
