/** The session controller's transitions against a scripted fake reflector: exact protocol-level cases a real one would not produce. */
import { CloseCode, MessageType } from "@lockstep/protocol";
import { JoinError, SessionError } from "../src/errors";
import { SessionController } from "../src/session/controller";
import { View } from "../src/view/view";
import { syncFor, viewJoin } from "./fake-socket";
import { MALFORMED, Tally, TallyView, built, clock, error, fakeClient, jitter, joinFake, lostWarnings, rejectionOf, rejoinAfterBackoff, startJoin, track, useControllerHarness, waitFor } from "./controller-harness";

useControllerHarness();

describe("SessionController against a scripted fake reflector", () => {
  test("the join completes exactly at this client's own live view-join: not at the Sync, another view's join, a tick, or its join in the history", async () => {
    const progress: number[] = [];
    const f = await fakeClient({ progressReporter: (p) => progress.push(p) });
    const { joining, outcome, socket } = await startJoin(f);
    const join = socket.join;
    expect(join).toMatchObject({ type: MessageType.Join, viewId: f.c.viewId, tps: 20 });
    expect(f.c.rootModel).toBeUndefined();

    // A history with this view's join from an earlier connection (#1), and another view's (#2).
    socket.deliver(syncFor(join, { entries: [viewJoin(1, f.c.viewId), viewJoin(2, "other-view")] }));
    expect(f.c.state).toBe("syncing");
    expect((f.c.rootModel as Tally).members).toEqual([f.c.viewId, "other-view"]);
    expect(f.c.rootView).toBeUndefined();
    socket.deliver(viewJoin(3, "third-view"));
    socket.deliver({ type: MessageType.Tick, time: 1100 });
    await clock.settle();
    expect(f.c.state).toBe("syncing");
    expect(outcome.settled).toBe(false);
    expect(built).toHaveLength(0);

    socket.deliver(viewJoin(4, f.c.viewId));
    expect(f.c.state).toBe("joined");
    expect(built).toHaveLength(1);
    await joining;
    expect(f.c.rootView).toBe(built[0]);
    expect((f.c.rootModel as Tally).members).toEqual([f.c.viewId, "other-view", "third-view", f.c.viewId]);
    expect(progress.at(-1)).toBe(1);
    expect(f.ui.joined).toEqual([f.c.viewId]);
    expect(socket.sent).toHaveLength(1); // only the Join

    // Live: entries queue until a frame (step: manual); a view-join of this view's again builds nothing.
    socket.deliver(viewJoin(5, "late-view"));
    f.c.step();
    expect((f.c.rootModel as Tally).members).toContain("late-view");
    expect(built).toHaveLength(1);
  });

  test("entries and ticks before the Sync are ignored; the join then completes normally", async () => {
    const f = await fakeClient();
    const { joining, outcome, socket } = await startJoin(f);
    socket.deliver(viewJoin(7, "early-view"));
    socket.deliver({ type: MessageType.Tick, time: 50 });
    socket.deliver(viewJoin(8, f.c.viewId)); // own view-join before any Sync: not the join
    await clock.settle();
    expect(f.c.state).toBe("syncing");
    expect(f.c.rootModel).toBeUndefined();
    expect(outcome.settled).toBe(false);

    socket.deliver(syncFor(socket.join)); // seq 0: what came before is not expected to continue
    socket.deliver(viewJoin(1, f.c.viewId));
    await joining;
    expect(f.c.state).toBe("joined");
    expect((f.c.rootModel as Tally).members).toEqual([f.c.viewId]);
    expect(error).not.toHaveBeenCalled();
  });

  test("a malformed frame while joining rejects the join with a JoinError", async () => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliverBytes(MALFORMED);
    const e = await rejectionOf(joining);
    expect(e).toBeInstanceOf(JoinError);
    expect((e as JoinError).message).toBe("could not join: the reflector sent a malformed frame");
    expect((e as JoinError).cause).toBeInstanceOf(SessionError);
    expect(f.c.state).toBe("left");
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "join failed" }]);
    expect(f.ui.joined).toEqual([]);
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1);
  });

  test("a malformed frame while joined fails the session; its close brings nothing back", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    const view = f.c.rootView;
    socket.deliverBytes(MALFORMED);
    expect(f.c.state).toBe("failed");
    expect(f.c.rootView).toBe(view);
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "session failed" }]);
    expect(f.ui.messages).toEqual([["error", "the reflector sent a malformed frame"]]);
    expect(f.ui.ended).toBe(1);
    socket.finishClose();
    await clock.advance(60_000);
    expect(f.c.state).toBe("failed");
    expect(f.server.calls).toBe(1);
  });

  test("a text frame is malformed too", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    socket.onmessage?.({ data: "hello" });
    expect(f.c.state).toBe("failed");
    expect(error).toHaveBeenCalledWith("[Lockstep] error in session:", expect.objectContaining({ cause: expect.objectContaining({ message: "reflector sent a text frame" }) }));
  });

  // A failed session is over: what its socket still delivers before the close must not fail it again.
  test("a second bad frame after the session failed reports nothing more (one error toast, ui.ended once)", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    socket.deliverBytes(MALFORMED);
    socket.deliverBytes(MALFORMED); // in flight before the client's close took effect
    expect(f.c.state).toBe("failed");
    expect(f.ui.messages).toEqual([["error", "the reflector sent a malformed frame"]]);
    expect(f.ui.ended).toBe(1);
    expect(error).toHaveBeenCalledTimes(1);
  });

  test.each([
    [CloseCode.TokenRejected, "bad signature", "could not join: the reflector refused the app token: bad signature (TokenRejected). Pass Session.join({ token }) a token your app's backend issued for this appId and session name"],
    [CloseCode.SessionDamaged, "its log does not continue its snapshot", "could not join: the session's stored data is damaged; the reflector's operator must restore it (its log does not continue its snapshot (SessionDamaged))"],
    [CloseCode.Overloaded, "too many sessions created", "could not join: the reflector is at capacity (too many sessions created (Overloaded)): join again in a moment"],
    [CloseCode.VersionMismatch, "speak version 1", "could not join: connection to the reflector closed: speak version 1 (VersionMismatch)"],
  ])("an Error frame (%i) then its close while joining rejects the join with that code", async (code, text, message) => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliver({ type: MessageType.Error, code, message: text });
    expect(f.c.state).toBe("syncing"); // the close decides
    socket.closed(code, "closing");
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e).toBeInstanceOf(JoinError);
    expect(e.message).toBe(message);
    expect(e.code).toBe(code);
    expect(e.closeCode).toBe(code);
    expect(f.c.state).toBe("left");
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1); // a first join never retries
  });

  test("a plain close (1006) while joining rejects the join: JoinError.closeCode 1006, no Lockstep code", async () => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.closed(1006);
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e.message).toBe("could not join: connection to the reflector closed: close code 1006");
    expect(e.code).toBeUndefined();
    expect(e.closeCode).toBe(1006);
    expect(f.c.state).toBe("left");
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1);
  });

  test.each(["refuse", "throw"] as const)("a first join whose socket cannot open (%s) says the reflector is unreachable", async (mode) => {
    const f = await fakeClient();
    f.server.mode = mode;
    const e = (await rejectionOf(f.c.start(f.handle))) as JoinError;
    expect(e).toBeInstanceOf(JoinError);
    expect(e.message).toMatch(/^cannot reach the Lockstep reflector at mem:\/\/controller-test\/: is it running\?/);
    expect(f.c.state).toBe("left");
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1);
  });

  describe("AuthFailed while joining: the JoinError names the wrong password", () => {
    test("the access token refused (Error frame, then close 4008)", async () => {
      const f = await fakeClient();
      const { joining, socket } = await startJoin(f);
      socket.deliver({ type: MessageType.Error, code: CloseCode.AuthFailed, message: "access token does not match the session's verifier" });
      socket.closed(CloseCode.AuthFailed, "auth failed");
      const e = (await rejectionOf(joining)) as JoinError;
      expect(e).toBeInstanceOf(JoinError);
      expect(e.message).toBe(
        `wrong password for session "room" of test.controller (sessionId ${f.c.identity.sessionId}): the reflector refused this client's access token, ` +
          "although the session's id comes from this password. The reflector's operator should check its storage",
      );
      expect(e.code).toBe(CloseCode.AuthFailed);
      expect((e.cause as Error).message).toBe("access token does not match the session's verifier (AuthFailed)");
      expect(f.c.state).toBe("left");
    });

    test("the persisted data's slot refused", async () => {
      const f = await fakeClient();
      const { joining, socket } = await startJoin(f);
      socket.deliver({ type: MessageType.Error, code: CloseCode.AuthFailed, message: "the persisted data's slot token does not match" });
      socket.closed(CloseCode.AuthFailed);
      const e = (await rejectionOf(joining)) as JoinError;
      expect(e.message).toMatch(new RegExp(`^wrong password for the persisted data of session "room" of test\\.controller \\(persistentId ${f.c.identity.persistentId}\\)`));
      expect(e.code).toBe(CloseCode.AuthFailed);
    });

    test("a bare close 4008 (no Error frame)", async () => {
      const f = await fakeClient();
      const { joining, socket } = await startJoin(f);
      socket.closed(CloseCode.AuthFailed);
      const e = (await rejectionOf(joining)) as JoinError;
      expect(e.message).toMatch(/^wrong password for session "room" of test\.controller/);
      expect((e.cause as Error).message).toBe("close code 4008");
      expect(e.code).toBe(CloseCode.AuthFailed);
    });
  });

  test.each([
    ["another session", { sessionId: "someone-elses-session" }, (viewId: string, wire: string) => `could not join: reflector answered for session someone-elses-session/${viewId}, expected ${wire}/${viewId}`],
    ["another view", { viewId: "not-this-view" }, (viewId: string, wire: string) => `could not join: reflector answered for session ${wire}/not-this-view, expected ${wire}/${viewId}`],
  ])("a Sync answering %s rejects the join", async (_what, over, message) => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliver(syncFor(socket.join, over));
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e).toBeInstanceOf(JoinError);
    expect(e.message).toBe(message(f.c.viewId, socket.join.sessionId));
    expect(e.cause).toBeInstanceOf(SessionError);
    expect(f.c.state).toBe("left");
    expect(f.c.rootModel).toBeUndefined();
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "join failed" }]);
  });

  test("a Sync whose check envelope does not open (another password's) rejects the join as a misbehaving reflector", async () => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliver(syncFor(socket.join, { auth: new Uint8Array(48).fill(7) }));
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e.message).toMatch(/^wrong password for session "room" of test\.controller .*the reflector is misbehaving; nothing was joined$/);
    expect(e.code).toBe(CloseCode.AuthFailed);
    expect(f.c.state).toBe("left");
  });

  test("a Sync whose history has a gap rejects the join", async () => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliver(syncFor(socket.join, { entries: [viewJoin(1, "a"), viewJoin(3, "b")] }));
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e.message).toBe("could not join: history has a gap at #2");
    expect(f.c.state).toBe("left");
  });

  test("a Sync arriving twice: while catching up it rejects the join; while joined it fails the session", async () => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliver(syncFor(socket.join));
    socket.deliver(syncFor(socket.join));
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e.message).toBe("could not join: unexpected sync from reflector");
    expect(f.c.state).toBe("left");

    const g = await fakeClient();
    const live = await joinFake(g);
    live.deliver(syncFor(live.join, { seq: 1, entries: [viewJoin(1, g.c.viewId)] }));
    expect(g.c.state).toBe("failed");
    expect(g.ui.messages).toEqual([["error", "unexpected sync from reflector"]]);
    expect(live.closeCalls).toEqual([{ code: 1000, reason: "session failed" }]);
    await clock.advance(60_000);
    expect(g.server.calls).toBe(1);
  });

  test("a stream gap fails the session (joining: rejects the join)", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    socket.deliver(viewJoin(2, "fine"));
    socket.deliver(viewJoin(4, "skipped-3"));
    expect(f.c.state).toBe("failed");
    expect(f.ui.messages).toEqual([["error", "stream gap: expected message #3, got #4"]]);
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1);

    const g = await fakeClient();
    const { joining, socket: s } = await startJoin(g);
    s.deliver(syncFor(s.join));
    s.deliver(viewJoin(2, g.c.viewId));
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e.message).toBe("could not join: stream gap: expected message #1, got #2");
    expect(g.c.state).toBe("left");
  });

  test("an Error frame then a fatal close while joined: failed with that code's message, views kept until leave, no rejoin", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    const view = f.c.rootView!;
    socket.deliver({ type: MessageType.Error, code: CloseCode.SessionDamaged, message: "snapshot #40 does not decrypt" });
    expect(f.c.state).toBe("joined");
    socket.closed(CloseCode.SessionDamaged, "session damaged");
    expect(f.c.state).toBe("failed");
    const message = "the session's stored data is damaged; the reflector's operator must restore it (snapshot #40 does not decrypt (SessionDamaged))";
    expect(f.ui.messages).toEqual([["error", message]]);
    expect(error).toHaveBeenCalledWith("[Lockstep] error in session:", expect.objectContaining({ name: "SessionError", message, code: CloseCode.SessionDamaged }));
    expect(f.c.rootView).toBe(view);
    expect(() => view.publish("tally", "add", 1)).toThrow('cannot publish "tally:add": the session is failed');
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1);
    await f.c.leave(); // the socket is gone: nothing to wait for
    expect(f.c.state).toBe("left");
    expect((view as TallyView).detached).toBe(1);
  });

  test("a retryable close while joined (with its Error frame) rejoins; the Error's code, not the close's, decides", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    socket.deliver({ type: MessageType.Error, code: CloseCode.SlowReader, message: "unsent data passed the cap" });
    socket.closed(CloseCode.SlowReader);
    expect(f.c.state).toBe("disconnected");
    expect(lostWarnings()).toEqual(["[Lockstep] lost the connection to the reflector (unsent data passed the cap (SlowReader)); reconnecting"]);
    const next = await rejoinAfterBackoff(f);
    // The Error frame was of the old connection: this one closes with 1006 and rejoins again.
    next.closed(1006);
    expect(f.c.state).toBe("disconnected");
  });

  test("a rejoin, frame by frame: the old view stays until the new Sync; a close while syncing goes back to disconnected", async () => {
    const f = await fakeClient();
    const first = await joinFake(f);
    const oldView = f.c.rootView as TallyView;
    const oldModel = f.c.rootModel;
    first.closed(1006);
    expect(f.c.state).toBe("disconnected");

    // Attempt 1: it asks to resume from what it applied; the reflector cannot (a full Sync): the
    // Sync boots a new replica (the old view goes), then the connection drops.
    const second = await rejoinAfterBackoff(f, 0);
    expect(second.join).toEqual({ ...first.join, resumeSeq: 1 });
    expect(f.c.rootView).toBe(oldView);
    second.deliver(syncFor(second.join, { seq: 1, entries: [viewJoin(1, f.c.viewId)] }));
    expect(f.c.state).toBe("syncing");
    expect(oldView.detached).toBe(1);
    expect(f.c.rootView).toBeUndefined();
    const bootedModel = f.c.rootModel;
    expect(bootedModel).not.toBe(oldModel);
    second.closed(1006);
    expect(f.c.state).toBe("disconnected");
    expect(f.c.rootView).toBeUndefined();
    expect(f.c.rootModel).toBe(bootedModel);
    expect(lostWarnings()).toHaveLength(1); // only the loss of a live session is announced

    // Attempt 2 (a longer wait: not joined in between) completes. Its view was never live on the
    // new replica, so there is nothing to resume.
    const third = await rejoinAfterBackoff(f, 1);
    expect(third.join.resumeSeq).toBe(0);
    third.deliver(syncFor(third.join, { seq: 1, entries: [viewJoin(1, f.c.viewId)] }));
    third.deliver(viewJoin(2, f.c.viewId));
    expect(f.c.state).toBe("joined");
    expect(built).toHaveLength(2);
    expect(f.c.rootView).toBe(built[1]);
    expect(built[1]!.detached).toBe(0);
    expect(oldView.detached).toBe(1);
    expect(f.ui.messages.at(-1)).toEqual(["status", "Reconnected"]);
    expect((f.c.rootModel as Tally).members).toEqual([f.c.viewId, f.c.viewId]);
  });

  test("a resume, frame by frame: the same replica and root view go on from the resumed Sync's entries; no own view-join", async () => {
    const f = await fakeClient();
    const first = await joinFake(f);
    const view = f.c.rootView as TallyView;
    const model = f.c.rootModel as Tally;
    first.closed(1006);
    const second = await rejoinAfterBackoff(f, 0);
    expect(second.join.resumeSeq).toBe(1);
    second.deliver(syncFor(second.join, { resumed: true, seq: 3, entries: [viewJoin(2, "other"), viewJoin(3, "third")] }));
    expect(f.c.state).toBe("joined");
    expect(f.c.rootView).toBe(view);
    expect(f.c.rootModel).toBe(model);
    expect(view.detached).toBe(0);
    expect(built).toHaveLength(1);
    expect(model.members).toEqual([f.c.viewId, "other", "third"]);
    second.deliver(viewJoin(4, "fourth"));
    f.c.step();
    expect(model.members.at(-1)).toBe("fourth");
  });

  test("a resumed Sync that does not continue the replica ends the session with a clear error", async () => {
    const f = await fakeClient();
    const first = await joinFake(f);
    first.closed(1006);
    const second = await rejoinAfterBackoff(f, 0);
    second.deliver(syncFor(second.join, { resumed: true, seq: 5, entries: [viewJoin(5, "other")] }));
    expect(f.c.state).toBe("failed");
    expect(error.mock.calls.flat().map(String).join(" ")).toMatch(/history|continue|seq/i);
  });

  test("the silence watchdog, exactly: the first check past 5 s of silence abandons the socket; a frame heard pushes it back", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f); // opened and heard at t = 0
    await clock.advance(4000);
    socket.deliver({ type: MessageType.Tick, time: 5000 }); // heard at 4000: silent from then
    // Checked every second from the open: silent 6 s > 5 s first at t = 10 000.
    await clock.advance(5999);
    expect(f.c.state).toBe("joined");
    expect(socket.closeCalls).toEqual([]);
    await clock.advance(1);
    expect(f.c.state).toBe("disconnected");
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "abandoned" }]);
    expect(socket.onmessage).toBeNull(); // it reports nothing any more
    expect(socket.onclose).toBeNull();
    expect(lostWarnings()).toEqual(["[Lockstep] lost the connection to the reflector (close code 1006: nothing heard from the reflector for 5 s); reconnecting"]);
    const next = await rejoinAfterBackoff(f);
    next.deliver(syncFor(next.join, { seq: 1, entries: [viewJoin(1, f.c.viewId)] }));
    next.deliver(viewJoin(2, f.c.viewId));
    expect(f.c.state).toBe("joined");
  });

  test("the silence limit follows tps: 10 missed ticks at 1 tps", async () => {
    const f = await fakeClient({ tps: 1 });
    const socket = await joinFake(f);
    await clock.advance(10_000);
    expect(f.c.state).toBe("joined");
    await clock.advance(1000);
    expect(f.c.state).toBe("disconnected");
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "abandoned" }]);
  });

  test("leave() from joined: Leave frame, close(1000, \"leave\"), and the promise waits for the close event", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    const view = f.c.rootView as TallyView;
    const leaving = f.c.leave();
    const outcome = track(leaving);
    await clock.settle();
    expect(f.c.state).toBe("left");
    expect(socket.sent.at(-1)).toEqual({ type: MessageType.Leave });
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "leave" }]);
    expect(view.detached).toBe(1);
    expect(outcome.settled).toBe(false);
    await clock.advance(1000);
    expect(outcome.settled).toBe(false);
    socket.finishClose();
    await leaving;
    expect(f.ui.ended).toBe(1);
  });

  test("leave() while a rejoin's socket is opening: left at once; the socket that opens late is closed without a Join", async () => {
    const f = await fakeClient();
    const first = await joinFake(f);
    first.closed(1006);
    f.server.mode = "manual";
    await clock.advance(f.jitter.lastDelay(0));
    await waitFor(() => f.server.sockets.length === 2, "the rejoin's socket was made");
    expect(f.c.state).toBe("connecting");
    const view = f.c.rootView as TallyView;
    expect(view.detached).toBe(0);

    await f.c.leave();
    expect(f.c.state).toBe("left");
    expect(view.detached).toBe(1);
    const late = f.server.last;
    late.open();
    await clock.settle();
    expect(late.sent).toEqual([]);
    expect(late.closeCalls).toEqual([{ code: 1000, reason: "left" }]);
    await clock.advance(60_000);
    expect(f.server.calls).toBe(2);
  });

  // Apps publish from the root view's constructor (an initial request, a "hello"): it is built
  // right after the own view-join, before the state says joined, and its events must go out.
  test("a root view that publishes from its constructor joins, and its event reaches the session", async () => {
    class Greeter extends View {
      constructor(model: Tally) {
        super(model);
        this.publish("tally", "add", 1);
      }
    }
    const f = await fakeClient({ view: Greeter });
    const { joining, socket } = await startJoin(f);
    socket.deliver(syncFor(socket.join));
    socket.deliver(viewJoin(1, f.c.viewId));
    await joining;
    expect(f.c.state).toBe("joined");
    expect(socket.sentOf(MessageType.Send)).toHaveLength(1);
  });
});
