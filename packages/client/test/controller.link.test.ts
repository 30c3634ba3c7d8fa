/** The session controller's transitions against the real reflector core over the in-memory link, on a manual clock. */
import { CloseCode, MessageType } from "@lockstep/protocol";
import { SessionError, UsageError } from "../src/errors";
import { SessionController } from "../src/session/controller";
import { FIRST_RETRY_MS } from "../src/session/rejoin";
import { REFLECTOR_URL, built, clock, dropClient, droppedWarnings, error, expectConverged, expectSameHistory, jitter, joinedView, lostWarnings, memClient, memReflector, modelOf, track, useControllerHarness } from "./controller-harness";

useControllerHarness();

describe("SessionController against the reflector core (memory link, manual clock)", () => {
  test("connecting → syncing → joined: the join resolves only once its own view-join was processed; the root view is built once", async () => {
    const mem = await memReflector();
    const progress: number[] = [];
    const a = await memClient(mem, "a", { progressReporter: (p) => progress.push(p) });
    const trace: string[] = [];
    let resolved = false;
    const where = (): string => `${a.c.state} model=${a.c.rootModel ? "yes" : "no"} view=${a.c.rootView ? "yes" : "no"} resolved=${resolved}`;
    a.onFrame = (msg, phase) => {
      if (msg?.type === MessageType.Sync) trace.push(`${phase} Sync: ${where()}`);
      if (msg?.type === MessageType.ViewJoin && msg.viewId === a.c.viewId) trace.push(`${phase} own ViewJoin: ${where()}`);
    };

    expect(a.c.state).toBe("connecting");
    expect(a.c.rootModel).toBeUndefined();
    expect(a.c.rootView).toBeUndefined();
    await a.c.start(a.handle).then(() => {
      resolved = true;
      trace.push(`resolved: ${where()}`);
    });

    expect(a.opens).toEqual([{ state: "connecting", at: 0 }]);
    expect(trace).toEqual([
      "before Sync: syncing model=no view=no resolved=false",
      "after Sync: syncing model=yes view=no resolved=false",
      "before own ViewJoin: syncing model=yes view=no resolved=false",
      "after own ViewJoin: joined model=yes view=yes resolved=false",
      "resolved: joined model=yes view=yes resolved=true",
    ]);
    expect(a.sent.map((m) => m.type)).toEqual([MessageType.Join]);
    expect(built).toHaveLength(1);
    const view = joinedView(a);
    expect(view.model).toBe(a.c.rootModel);
    expect(view.session).toBe(a.handle);
    expect(modelOf(a).members).toEqual([a.c.viewId]);
    expect(a.ui.joined).toEqual([a.c.viewId]);
    expect(progress.at(-1)).toBe(1);

    // A second client joins the same session; both stay joined, with one root view each.
    const b = await memClient(mem, "b");
    await b.c.start(b.handle);
    expect(built).toHaveLength(2);
    await expectConverged([a, b]);
    expect(modelOf(a).members).toEqual([a.c.viewId, b.c.viewId]);
    expect(built.map((v) => v.detached)).toEqual([0, 0]);
  });

  test("lost connection: joined → disconnected (view and model kept) → after the backoff connecting → syncing (old view detached at the new Sync) → joined with a new root view", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    joinedView(b).publish("tally", "add", 2);
    await expectConverged([a, b]);
    const oldView = joinedView(a);
    const oldModel = a.c.rootModel;

    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");
    expect(a.c.rootView).toBe(oldView);
    expect(a.c.rootModel).toBe(oldModel);
    expect(oldView.detached).toBe(0);
    expect(lostWarnings()).toEqual(["[Lockstep] lost the connection to the reflector (close code 1006); reconnecting"]);
    expect(a.ui.messages).toEqual([["warning", "Connection lost: reconnecting…"]]);

    // B goes on meanwhile.
    joinedView(b).publish("tally", "add", 3);
    const trace: string[] = [];
    a.onFrame = (msg, phase) => {
      const view = a.c.rootView === oldView ? "old" : a.c.rootView === undefined ? "none" : "new";
      const model = a.c.rootModel === oldModel ? "old" : "new";
      if (msg?.type === MessageType.Sync) trace.push(`${phase} Sync: ${a.c.state} view=${view} model=${model} oldDetached=${oldView.detached}`);
      if (msg?.type === MessageType.ViewJoin && msg.viewId === a.c.viewId) trace.push(`${phase} own ViewJoin: ${a.c.state} view=${view} model=${model}`);
    };

    const lostAt = clock.now();
    const delay = a.jitter.lastDelay(0);
    await clock.advance(delay - 1);
    expect(a.c.state).toBe("disconnected");
    expect(a.opens).toHaveLength(1);
    await clock.advance(1);
    expect(a.opens).toEqual([
      { state: "connecting", at: 0 },
      { state: "connecting", at: lostAt + delay },
    ]);
    await clock.runUntil(() => a.c.state === "joined", { maxMs: 1000 });
    expect(trace).toEqual([
      "before Sync: syncing view=old model=old oldDetached=0",
      "after Sync: syncing view=none model=new oldDetached=1",
      "before own ViewJoin: syncing view=none model=new",
      "after own ViewJoin: joined view=new model=new",
    ]);
    expect(built).toHaveLength(3); // a, b, and a's new root view
    expect(a.c.rootView).toBe(built[2]);
    expect(oldView.detached).toBe(1);
    expect(a.ui.messages).toEqual([
      ["warning", "Connection lost: reconnecting…"],
      ["status", "Reconnected"],
    ]);
    expect(a.sent.filter((m) => m.type === MessageType.Join)).toHaveLength(2);
    await expectConverged([a, b]);
    expect(modelOf(a).total).toBe(5);
    expect(modelOf(a).members).toEqual([b.c.viewId, a.c.viewId]);
  });

  test("a close for a reason worth naming (a full log, a rate limit, capacity, a restart) says so on the page, and rejoins like a lost connection", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    const cases: [number, string][] = [
      [CloseCode.LogFull, "The session's log is full until a snapshot succeeds: reconnecting…"],
      [CloseCode.RateLimited, "Sending faster than the reflector allows: reconnecting…"],
      [CloseCode.Overloaded, "The reflector is at capacity: reconnecting…"],
      [CloseCode.ServerShutdown, "The reflector is shutting down: reconnecting…"],
    ];
    for (const [code, message] of cases) {
      a.ui.messages.length = 0;
      dropClient(mem, a, code);
      await clock.settle();
      expect(a.c.state).toBe("disconnected");
      expect(a.ui.messages).toEqual([["warning", message]]);
      expect(lostWarnings().at(-1)).toBe(`[Lockstep] lost the connection to the reflector (close code ${code}); reconnecting`);
      joinedView(b).publish("tally", "add", 1);
      await clock.runUntil(() => a.c.state === "joined", { maxMs: 120_000 });
      expect(a.ui.messages).toEqual([["warning", message], ["status", "Reconnected"]]);
    }
    await expectConverged([a, b]);
    expect(modelOf(a).total).toBe(cases.length);
  });

  test("a rejoin whose socket cannot open stays disconnected and retries with growing backoff (reset once joined)", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    const view = joinedView(a);
    const model = a.c.rootModel;

    a.down = true;
    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");
    for (let attempt = 0; attempt < 5; attempt++) {
      const delay = a.jitter.lastDelay(attempt);
      const opens = a.opens.length;
      await clock.advance(delay - 1);
      expect({ attempt, state: a.c.state, opens: a.opens.length }).toEqual({ attempt, state: "disconnected", opens });
      await clock.advance(1);
      // The attempt was made, failed (alternately: the factory threw, the socket closed before opening), and the next is scheduled.
      expect({ attempt, state: a.c.state, opens: a.opens.length }).toEqual({ attempt, state: "disconnected", opens: opens + 1 });
      expect(a.opens.at(-1)!.state).toBe("connecting");
      expect(a.c.rootView).toBe(view);
      expect(a.c.rootModel).toBe(model);
      joinedView(b).publish("tally", "add", 1);
    }
    // After the third failed attempt the user is told it keeps trying, once.
    expect(a.ui.messages.filter(([level]) => level === "warning")).toEqual([
      ["warning", "Connection lost: reconnecting…"],
      ["warning", `Still trying to reach the reflector at ${REFLECTOR_URL}…`],
    ]);
    expect(error).not.toHaveBeenCalled();

    a.down = false;
    await clock.advance(a.jitter.lastDelay(5));
    await clock.runUntil(() => a.c.state === "joined", { maxMs: 1000 });
    expect(view.detached).toBe(1);
    await expectConverged([a, b]);
    expect(modelOf(a).total).toBe(5);

    // Joined again: the next loss starts over from the shortest wait.
    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");
    const opens = a.opens.length;
    const delay = a.jitter.lastDelay(0);
    await clock.advance(delay - 1);
    expect(a.opens).toHaveLength(opens);
    await clock.advance(1);
    expect(a.opens).toHaveLength(opens + 1);
    await expectConverged([a, b]);
  });

  test("a fatal close while joined fails the session: views stay, no rejoin even 60 s later", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    joinedView(a).publish("tally", "add", 4);
    await expectConverged([a, b]);
    const view = joinedView(a);

    dropClient(mem, a, CloseCode.DuplicateView);
    await clock.settle();
    expect(a.c.state).toBe("failed");
    expect(a.c.rootView).toBe(view);
    expect(view.detached).toBe(0);
    const message = "this view rejoined the session on another connection; this one stops";
    expect(a.ui.messages).toEqual([["error", message]]);
    expect(a.ui.ended).toBe(1);
    expect(error).toHaveBeenCalledWith("[Lockstep] error in session:", expect.objectContaining({ name: "SessionError", message, code: CloseCode.DuplicateView }));
    expect(lostWarnings()).toEqual([]);

    joinedView(b).publish("tally", "add", 1);
    await clock.advance(60_000);
    b.c.step();
    expect(a.opens).toHaveLength(1);
    expect(a.c.state).toBe("failed");
    expect(() => view.publish("tally", "add", 1)).toThrow(UsageError);
    expect(() => view.publish("tally", "add", 1)).toThrow('cannot publish "tally:add": the session is failed');
    // Replicas agree up to where A stopped; B goes on alone.
    expectSameHistory([a, b]);
    expect(b.lastSeq).toBeGreaterThan(a.lastSeq);

    await a.c.leave();
    expect(a.c.state).toBe("left");
    expect(view.detached).toBe(1);
    await expectConverged([b]);
  });

  test("leave() on a connection that died silently resolves after 2 s of the clock: the socket that never finishes closing is abandoned", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    await a.c.start(a.handle);
    a.links[0]!.blackhole();
    const leaving = track(a.c.leave());
    await clock.advance(1999);
    expect(leaving.settled).toBe(false);
    await clock.advance(1);
    expect(leaving.settled).toBe(true);
    expect(leaving.error).toBeUndefined();
    expect(a.c.state).toBe("left");
  });

  test("leave() from joined: Leave frame sent, socket closed, resolves only after the close; the others see the view-exit", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    await expectConverged([a, b]);
    const view = joinedView(a);
    const order: string[] = [];
    const link = a.links[0]!;
    const onclose = link.client.onclose;
    link.client.onclose = (ev) => {
      order.push(`close ${ev.code}`);
      onclose?.(ev);
    };

    const leaving = a.c.leave().then(() => order.push(`left ${a.c.state}`));
    expect(a.c.leave()).toBe(a.c.leave()); // one leave, however often asked
    await clock.runUntil(() => order.length === 2, { maxMs: 1000 });
    await leaving;
    expect(order).toEqual(["close 1000", "left left"]);
    expect(a.sent.at(-1)).toEqual({ type: MessageType.Leave });
    expect(a.closes).toEqual([{ code: 1000, reason: "leave" }]);
    expect(a.c.state).toBe("left");
    expect(view.detached).toBe(1);
    expect(a.ui.ended).toBe(1);
    expect(() => view.publish("tally", "add", 1)).toThrow('cannot publish "tally:add": the session is left');

    await clock.advance(60_000);
    expect(a.opens).toHaveLength(1);
    await expectConverged([b]);
    expect(modelOf(b).members).toEqual([b.c.viewId]);
    expectSameHistory([a, b]);
  });

  test("leave() while disconnected: left at once, the scheduled rejoin never happens", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    await a.c.start(a.handle);
    const view = joinedView(a);
    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");

    await a.c.leave();
    expect(a.c.state).toBe("left");
    expect(view.detached).toBe(1);
    expect(a.ui.ended).toBe(1);
    await clock.advance(60_000);
    expect(a.opens).toHaveLength(1);
    expect(a.c.state).toBe("left");
  });

  test("publish(): joined sends a Send frame; disconnected queues it and sends it once rejoined; after leave it throws", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    const local: number[] = [];
    const view = joinedView(a);
    view.subscribe("tally", "add", (n: number) => local.push(n));

    view.publish("tally", "add", 7);
    await Promise.resolve(); // publishes of one turn go out together at its end
    expect(a.sent.map((m) => m.type)).toEqual([MessageType.Join, MessageType.Send]);
    a.c.step(); // view subscribers hear it on the next frame, before it came back from the reflector
    expect(local).toEqual([7]);
    await expectConverged([a, b]);
    expect([modelOf(a).total, modelOf(b).total]).toEqual([7, 7]);

    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");
    const sends = a.sent.length;
    view.publish("tally", "add", 100);
    view.publish("tally", "add", 100);
    expect(a.sent).toHaveLength(sends);
    expect(a.c.pendingEvents).toBe(2);
    expect(droppedWarnings()).toEqual([]);

    await clock.runUntil(() => a.c.state === "joined", { maxMs: 5000 });
    joinedView(a).publish("tally", "add", 1);
    await expectConverged([a, b]);
    // Queued while disconnected, applied once each after the rejoin, before what came after.
    expect([modelOf(a).total, modelOf(b).total]).toEqual([208, 208]);
    expect(a.c.pendingEvents).toBe(0);

    await a.c.leave();
    expect(() => joinedView(a).publish("tally", "add", 1)).toThrow(UsageError);
    expect(() => view.publish("tally", "add", 1)).toThrow('cannot publish "tally:add": the session is left');
  });

  test("the frame loop (step: auto) runs only while joined", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a", { step: "auto" });
    await a.c.start(a.handle);
    const view = joinedView(a);
    await clock.advance(160);
    expect(view.updates).toBe(10); // every 16 ms
    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");
    const updates = view.updates;
    await clock.advance(Math.floor(FIRST_RETRY_MS * 0.75) - 1); // before the earliest rejoin
    expect(view.updates).toBe(updates);
    await clock.runUntil(() => a.c.state === "joined", { maxMs: 5000 });
    const fresh = joinedView(a);
    expect(fresh).not.toBe(view);
    await clock.advance(160);
    expect(fresh.updates).toBeGreaterThanOrEqual(9);
    expect(view.updates).toBe(updates);
  });

  describe("page visibility (a fake globalThis.document)", () => {
    class FakeDocument {
      visibilityState: "visible" | "hidden" = "visible";
      readonly listeners = new Set<() => void>();
      addEventListener(_type: string, listener: () => void): void {
        this.listeners.add(listener);
      }
      removeEventListener(_type: string, listener: () => void): void {
        this.listeners.delete(listener);
      }
      set(state: "visible" | "hidden"): void {
        this.visibilityState = state;
        for (const l of [...this.listeners]) l();
      }
    }
    let doc: FakeDocument;
    beforeEach(() => {
      doc = new FakeDocument();
      (globalThis as { document?: unknown }).document = doc;
    });
    afterEach(() => {
      delete (globalThis as { document?: unknown }).document;
    });

    test("hidden for autoSleep s → sleeping (socket closed 1000 \"asleep\"); visible → connecting → joined", async () => {
      const mem = await memReflector();
      const a = await memClient(mem, "a", { autoSleep: 3 });
      const b = await memClient(mem, "b", { autoSleep: 0 });
      await a.c.start(a.handle);
      await b.c.start(b.handle);
      expect(doc.listeners.size).toBe(1); // only A watches (B never sleeps)
      const view = joinedView(a);
      const model = a.c.rootModel;

      doc.set("hidden");
      await clock.advance(2999);
      expect(a.c.state).toBe("joined");
      await clock.advance(1);
      expect(a.c.state).toBe("sleeping");
      expect(a.closes).toEqual([{ code: 1000, reason: "asleep" }]);
      expect(a.c.rootView).toBe(view);
      expect(a.c.rootModel).toBe(model);
      expect(view.detached).toBe(0);
      expect(lostWarnings()).toEqual([]);
      expect(b.c.state).toBe("joined");

      // Asleep it stays, however long: no rejoin attempts; B goes on.
      joinedView(b).publish("tally", "add", 6);
      await clock.advance(60_000);
      expect(a.c.state).toBe("sleeping");
      expect(a.opens).toHaveLength(1);
      expect(() => view.publish("tally", "add", 1)).not.toThrow(); // queued, not refused
      expect(a.c.pendingEvents).toBe(1);
      expect(droppedWarnings()).toEqual([]);

      doc.set("visible");
      expect(a.c.state).toBe("connecting");
      expect(a.c.rootView).toBe(view);
      await clock.runUntil(() => a.c.state === "joined", { maxMs: 1000 });
      expect(a.opens.map((o) => o.state)).toEqual(["connecting", "connecting"]);
      expect(view.detached).toBe(1);
      expect(a.c.rootView).not.toBe(view);
      await expectConverged([a, b]);
      expect(modelOf(a).total).toBe(7); // with the event published while asleep

      // Hidden, then visible again before autoSleep passed: it stays awake.
      doc.set("hidden");
      await clock.advance(2000);
      doc.set("visible");
      await clock.advance(5000);
      expect(a.c.state).toBe("joined");
      expect(a.opens).toHaveLength(2);

      await a.c.leave();
      expect(doc.listeners.size).toBe(0); // the watch ends with the session
      await expectConverged([b]);
    });
  });

  test("the silence watchdog: nothing heard for the silence limit abandons the connection and schedules a rejoin", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    await expectConverged([a, b]);
    const view = joinedView(a);

    a.links[0]!.blackhole(); // a dead connection that never says so
    const deadSince = a.lastFrameAt;
    await clock.runUntil(() => a.c.state !== "joined", { maxMs: 20_000, stepMs: 100 });
    expect(a.c.state).toBe("disconnected");
    // 20 tps: 5 s of silence, checked every second.
    const silent = clock.now() - deadSince;
    expect(silent).toBeGreaterThan(5000);
    expect(silent).toBeLessThanOrEqual(6000 + 100);
    expect(a.closes).toEqual([{ code: 1000, reason: "abandoned" }]);
    expect(lostWarnings()).toEqual(["[Lockstep] lost the connection to the reflector (close code 1006: nothing heard from the reflector for 5 s); reconnecting"]);
    expect(a.c.rootView).toBe(view);

    joinedView(b).publish("tally", "add", 9);
    await clock.runUntil(() => a.c.state === "joined", { maxMs: 2000 });
    expect(a.opens).toHaveLength(2);
    expect(view.detached).toBe(1);
    await expectConverged([a, b]);
    expect(modelOf(a).total).toBe(9);
  });
});
