/**
 * How a session keeps (or stops) its connection, with real clients on a real reflector core over
 * the in-memory link and every timer — the client's backoff, watchdog, autoSleep and frame loop,
 * the reflector's ticks and heartbeat — on one ManualClock. Nothing sleeps: a test advances the
 * clock, so "it did not happen" is checked at an exact clock time, and the backoff delays are
 * checked against their bounds. The real-socket tier of these behaviours is reconnect.int.test.ts.
 */
import { MessageType } from "@lockstep/protocol";
import { ManualClock } from "@lockstep/test-support";
import { Room } from "./room-model";
import { CLOSE_GRACE_MS, HEARTBEAT_MS, LONGEST_RETRY_MS, Net, RoomView, SILENCE_MS, WATCHDOG_MS, built, last, logged, quiet, retryBounds } from "./net-harness";

/** A room whose lines are persisted: going to sleep has something to save first. */
class SavedRoom extends Room {
  override write(line: string): void {
    super.write(line);
    this.persistSession(() => ({ lines: this.lines }));
  }
}
SavedRoom.register("ReconnectLink.SavedRoom");

afterEach(() => {
  jest.restoreAllMocks();
  delete (globalThis as { document?: unknown }).document;
});

test("a dropped connection resumes by itself: the same model and root view go on, the others see no exit, the replicas agree", async () => {
  const net = await Net.start();
  const a = await net.join("resume");
  const b = await net.join("resume");
  await net.write(a, "before", [a, b]);
  const view = a.session.view;
  const model = a.session.model;
  const warn = quiet("warn");
  const droppedAt = net.clock.now();
  last(a).link.drop();
  await net.write(b, "missed", [b]);
  await net.clock.runUntil(() => a.taps.length === 2 && a.session.status === "connected", { maxMs: 5000 });
  expect(logged(warn, "lost the connection to the reflector")).toBe(true);
  const [min, max] = retryBounds(0);
  expect(a.taps[1]!.openedAt - droppedAt).toBeGreaterThanOrEqual(min);
  expect(a.taps[1]!.openedAt - droppedAt).toBeLessThanOrEqual(max);
  // No reboot: the same objects, no new root view, and what it missed was applied to them.
  expect(a.session.view).toBe(view);
  expect(a.session.model).toBe(model);
  expect(view.detached).toBe(false);
  expect(built(a)).toBe(1);
  expect(model.lines).toEqual(["before", "missed"]);
  await net.write(a, "after", [a, b]);
  expect(b.session.model.exits).toEqual([]);
  expect(b.session.model.joins.filter((v) => v === a.session.viewId)).toHaveLength(1);
  await net.expectConverged([a, b]);
  await net.end([a, b]);
});

test("a connection lost for longer than the reflector's grace period rejoins afresh: the others see its exit and join, the replicas agree", async () => {
  const net = await Net.start({ viewGraceMs: 0 });
  const a = await net.join("drop");
  const b = await net.join("drop");
  await net.write(a, "before", [a, b]);
  const oldView = a.session.view;
  const warn = quiet("warn");
  const droppedAt = net.clock.now();
  last(a).link.drop();
  await net.clock.runUntil(() => built(a) === 2, { maxMs: 5000 });
  expect(logged(warn, "lost the connection to the reflector")).toBe(true);
  // One rejoin, after the first backoff delay.
  expect(a.taps).toHaveLength(2);
  const [min, max] = retryBounds(0);
  expect(a.taps[1]!.openedAt - droppedAt).toBeGreaterThanOrEqual(min);
  expect(a.taps[1]!.openedAt - droppedAt).toBeLessThanOrEqual(max);
  expect(oldView.detached).toBe(true);
  expect(a.session.view).not.toBe(oldView);
  await net.write(a, "after", [a, b]);
  // Nothing lost, nothing doubled; one exit for the dropped connection, then the rejoin.
  expect(a.session.model.lines).toEqual(["before", "after"]);
  expect(b.session.model.exits).toEqual([a.session.viewId]);
  expect(b.session.model.joins.filter((v) => v === a.session.viewId)).toHaveLength(2);
  expect(b.session.model.present).toEqual([b.session.viewId, a.session.viewId]); // a exited, then joined again
  await net.expectConverged([a, b]);
  await net.end([a, b]);
});

test("session.status and the views' synced event follow an outage, delivered at once even without frames", async () => {
  const net = await Net.start();
  const a = await net.join("status");
  const b = await net.join("status");
  expect(a.session.status).toBe("connected");
  expect(a.session.view.sessionId).toBe(a.session.id);
  expect(RoomView.synced.get(a.session.viewId)).toEqual(["1:true"]);
  const statuses: string[] = [];
  const stop = a.session.on("status", (s) => statuses.push(s));
  quiet("warn");
  await net.stop();
  // Told at once, in the same turn as the close: no frame ran in between.
  expect(statuses).toEqual(["reconnecting"]);
  expect(RoomView.synced.get(a.session.viewId)).toEqual(["1:true", "1:false"]);
  await net.clock.advance(2000);
  expect(a.session.status).toBe("reconnecting");
  await net.restart();
  await net.clock.runUntil(() => a.session.status === "connected" && b.session.status === "connected", { maxMs: LONGEST_RETRY_MS * 2 });
  expect(statuses).toEqual(["reconnecting", "syncing", "connected"]);
  expect(RoomView.synced.get(a.session.viewId)?.at(-1)).toMatch(/:true$/);
  stop();
  await net.write(a, "after", [a, b]);
  await net.end([a, b]);
  expect(a.session.status).toBe("ended");
  expect(statuses).toHaveLength(3); // stopped listening
  expect(() => a.session.on("nope" as "status", () => {})).toThrow(/unknown event "nope"/);
});

test("a connection that dies silently is noticed within the silence limit and replaced on the reflector", async () => {
  const net = await Net.start();
  expect(net.reflector.core.options.heartbeatMs).toBe(HEARTBEAT_MS);
  const a = await net.join("silent");
  const b = await net.join("silent");
  await net.write(a, "before", [a, b]);
  const old = last(a);
  const warn = quiet("warn");
  old.link.blackhole(); // frames, pings and closes are lost both ways; neither end is told
  const silentSince = old.heardAt!;
  // Just short of the limit: a still trusts the connection, and the reflector has not noticed.
  await net.clock.advance(silentSince + SILENCE_MS - net.clock.now());
  expect(old.closedBy).toBeUndefined();
  expect(a.taps).toHaveLength(1);
  expect(built(a)).toBe(1);
  expect(b.session.model.exits).toEqual([]);
  await net.clock.runUntil(() => a.taps.length === 2 && a.session.status === "connected", { maxMs: WATCHDOG_MS + retryBounds(0)[1] });
  // Given up on at the first watchdog check past the limit, and resumed after the first backoff delay.
  expect(old.closedBy).toMatchObject({ reason: "abandoned" });
  const silence = old.closedBy!.at - silentSince;
  expect(silence).toBeGreaterThan(SILENCE_MS);
  expect(silence).toBeLessThanOrEqual(SILENCE_MS + WATCHDOG_MS);
  expect(logged(warn, `nothing heard from the reflector for ${SILENCE_MS / 1000} s`)).toBe(true);
  expect(a.taps).toHaveLength(2);
  const [min, max] = retryBounds(0);
  expect(a.taps[1]!.openedAt - old.closedBy!.at).toBeGreaterThanOrEqual(min);
  expect(a.taps[1]!.openedAt - old.closedBy!.at).toBeLessThanOrEqual(max);
  // The reflector still held the old connection (its heartbeat is far off): the rejoin replaced it
  // (DuplicateView, sent into the void) and continued its view: the others saw no exit.
  expect(old.link.serverState).toBe("closing");
  expect(built(a)).toBe(1);
  expect(b.session.model.exits).toEqual([]);
  expect(b.session.model.present).toEqual([a.session.viewId, b.session.viewId]);
  await net.write(a, "after-silence", [a, b]);
  expect(a.session.model.lines).toEqual(["before", "after-silence"]);
  // The old socket never answers the close: the reflector cuts it off after the close grace.
  await net.clock.runUntil(() => old.link.serverState === "closed", { maxMs: 2 * CLOSE_GRACE_MS });
  expect(net.clock.now()).toBe(a.taps[1]!.openedAt + CLOSE_GRACE_MS);
  expect(net.reflector.core.stats().connections).toBe(2);
  await net.expectConverged([a, b]);
  await net.end([a, b]);
});

test("every client resumes on a restarted reflector (with backoff while it is down) and the session goes on from its stored state", async () => {
  const net = await Net.start();
  const a = await net.join("restart");
  const b = await net.join("restart");
  await net.write(a, "one", [a, b]);
  await net.write(b, "two", [a, b]);
  const warn = quiet("warn");
  await net.stop();
  for (const c of [a, b]) expect(c.taps[0]!.closeEvent).toMatchObject({ code: 4007 }); // ServerShutdown: worth rejoining
  // Down for a while: the clients retry and are refused a few times before it is back.
  await net.clock.advance(3000);
  // The publish of a disconnected client is queued, not thrown at the app (nor dropped).
  expect(() => a.session.view.publish("room", "write", "queued")).not.toThrow();
  expect(a.session.pendingEvents).toBe(1);
  expect(logged(warn, "not connected")).toBe(false);
  for (const c of [a, b]) {
    const refused = c.taps.slice(1);
    // 188..312, 375..625, 750..1250 ms: at least three attempts within 3 s, whatever the jitter.
    expect(refused.length).toBeGreaterThanOrEqual(3);
    for (const tap of refused) expect(tap.closeEvent).toMatchObject({ code: 1006, reason: expect.stringMatching(/^HTTP 503/) });
  }
  await net.restart();
  await net.clock.runUntil(() => a.session.status === "connected" && b.session.status === "connected", { maxMs: 2 * LONGEST_RETRY_MS });
  // Back within the grace period: both views were kept (no reboot, no exit).
  expect([built(a), built(b)]).toEqual([1, 1]);
  expect(a.session.model.exits).toEqual([]);
  for (const c of [a, b]) {
    // Every attempt, the one that got in included, came one backoff delay after the previous close.
    for (let i = 1; i < c.taps.length; i++) {
      const [min, max] = retryBounds(i - 1);
      const gap = c.taps[i]!.openedAt - c.taps[i - 1]!.closeEvent!.at;
      expect({ attempt: i, gap, ok: gap >= min && gap <= max }).toEqual({ attempt: i, gap, ok: true });
    }
    expect(last(c).link.clientState).toBe("open");
  }
  await net.write(b, "three", [a, b]);
  expect(a.session.model.lines).toEqual(["one", "two", "queued", "three"]);
  expect(a.session.pendingEvents).toBe(0);
  // A newcomer boots from what the restarted reflector stored and agrees.
  const c = await net.join("restart");
  await net.write(c, "four", [a, b, c]);
  expect(c.session.model.lines).toEqual(["one", "two", "queued", "three", "four"]);
  await net.expectConverged([a, b, c]);
  await net.end([a, b, c]);
});

test("a session left while it is reconnecting stops trying", async () => {
  const net = await Net.start();
  const a = await net.join("leave");
  quiet("warn");
  await net.stop();
  await net.clock.runUntil(() => a.taps.length >= 3, { maxMs: 5000 }); // a retried (twice) meanwhile
  await net.finish(a.session.leave());
  expect(() => a.session.view.publish("room", "write", "x")).toThrow(/left/);
  const attempts = a.taps.length;
  await net.restart();
  // Well past the longest backoff delay, several times over: a left client never comes back.
  await net.clock.advance(3 * LONGEST_RETRY_MS);
  expect(a.taps).toHaveLength(attempts);
  expect(a.taps.every((t) => t.link.clientState === "closed")).toBe(true);
  expect(net.reflector.core.stats().connections).toBe(0);
  await net.stop();
});

/** Just enough of a page's `document` for the visibility API. */
class FakeDocument extends EventTarget {
  visibilityState: "visible" | "hidden" = "visible";
  set(state: "visible" | "hidden"): void {
    this.visibilityState = state;
    this.dispatchEvent(new Event("visibilitychange"));
  }
}

function installDocument(): FakeDocument {
  const doc = new FakeDocument();
  (globalThis as { document?: unknown }).document = doc;
  return doc;
}

test("autoSleep: a page hidden for autoSleep seconds disconnects (its view exits for the others), and rejoins when visible again", async () => {
  const doc = installDocument();
  const log = quiet("log");
  const net = await Net.start();
  const a = await net.join("sleep", { autoSleep: 0.2, debug: "session" });
  const b = await net.join("sleep", { autoSleep: false });
  await net.write(a, "awake", [a, b]);
  const awake = last(a);
  doc.set("hidden");
  const hiddenAt = net.clock.now();
  await net.clock.advance(199);
  expect(awake.closedBy).toBeUndefined();
  expect(b.session.model.exits).toEqual([]);
  await net.clock.advance(1);
  // At exactly autoSleep seconds: nothing to save, so it disconnects at once.
  expect(awake.closedBy).toEqual({ at: hiddenAt + 200, code: 1000, reason: "asleep" });
  await net.clock.runUntil(() => b.session.model.exits.includes(a.session.viewId), { maxMs: 1000 });
  expect(logged(log, "Page hidden for 0.2 s")).toBe(true);
  expect(b.session.model.present).toEqual([b.session.viewId]);
  // Asleep stays asleep: no rejoin attempt however long the page stays hidden.
  await net.clock.advance(LONGEST_RETRY_MS + SILENCE_MS + WATCHDOG_MS);
  expect(a.taps).toHaveLength(1);
  expect(net.reflector.core.stats().connections).toBe(1);
  // Visible again: it rejoins at once (no backoff).
  const visibleAt = net.clock.now();
  doc.set("visible");
  await net.clock.runUntil(() => built(a) === 2, { maxMs: 1000 });
  expect(a.taps).toHaveLength(2);
  expect(a.taps[1]!.openedAt).toBe(visibleAt);
  await net.write(a, "awake again", [a, b]);
  expect(b.session.model.present).toEqual([b.session.viewId, a.session.viewId]); // a exited, then joined again
  // Hidden and visible again within autoSleep: nothing happens.
  doc.set("hidden");
  await net.clock.advance(150);
  doc.set("visible");
  await net.clock.advance(1000);
  expect(b.session.model.exits).toEqual([a.session.viewId]);
  expect(a.taps).toHaveLength(2);
  expect(last(a).closedBy).toBeUndefined();
  expect(built(a)).toBe(2);
  await net.expectConverged([a, b]);
  await net.end([a, b]);
});

test("a page being unloaded says Leave: the others see its view exit at once, not after the grace period", async () => {
  installDocument();
  const net = await Net.start({ viewGraceMs: 60_000 });
  // b joins before there is a page to watch: only a's page is unloaded.
  const b = await net.join("unload", { autoSleep: false });
  const page = new EventTarget();
  const g = globalThis as { addEventListener?: unknown; removeEventListener?: unknown };
  g.addEventListener = page.addEventListener.bind(page);
  g.removeEventListener = page.removeEventListener.bind(page);
  try {
    const a = await net.join("unload", { autoSleep: false });
    page.dispatchEvent(new Event("pagehide"));
    await net.clock.runUntil(() => b.session.model.exits.includes(a.session.viewId), { maxMs: 1000 });
    expect(b.session.model.present).toEqual([b.session.viewId]);
    // Unloaded is not lost: it does not come back by itself.
    await net.clock.advance(LONGEST_RETRY_MS);
    expect(a.session.status).toBe("disconnected");
    expect(b.session.model.present).toEqual([b.session.viewId]);
    // Unless the page comes back from the back/forward cache: then it rejoins.
    page.dispatchEvent(Object.assign(new Event("pageshow"), { persisted: true }));
    await net.clock.runUntil(() => a.session.status === "connected" && b.session.model.present.length === 2, { maxMs: 1000 });
    await net.end([a, b]);
  } finally {
    delete g.addEventListener;
    delete g.removeEventListener;
  }
});

test("a session ended by a fatal error stays ended: it does not rejoin by itself", async () => {
  const errors = quiet("error");
  const net = await Net.start();
  const a = await net.join("fatal");
  a.garble = true; // the next frame from the reflector (a tick) is malformed: fatal
  await net.clock.runUntil(() => logged(errors, "error in session"), { maxMs: 1000 });
  a.garble = false;
  expect(last(a).closedBy).toMatchObject({ code: 1000, reason: "session failed" });
  // Past the longest backoff delay and a silence limit: a rejoin would have opened a second link.
  await net.clock.advance(LONGEST_RETRY_MS + SILENCE_MS + WATCHDOG_MS);
  expect(a.taps).toHaveLength(1);
  expect(last(a).link.clientState).toBe("closed");
  expect(built(a)).toBe(1);
  expect(net.reflector.core.stats().connections).toBe(0);
  expect(() => a.session.view.publish("room", "write", "x")).toThrow(/failed/);
  // Reported once: the session ended with one clear error.
  expect(errors.mock.calls.filter(([line]) => String(line).includes("error in session"))).toHaveLength(1);
  await net.end([a]);
});

test("autoSleep: a page visible again while it saves before sleeping stays awake", async () => {
  const doc = installDocument();
  const net = await Net.start();
  const room = { model: SavedRoom };
  const a = await net.join("sleep-save", { ...room, autoSleep: 0.1 });
  const b = await net.join("sleep-save", { ...room, autoSleep: false });
  await net.write(a, "unsaved", [a, b]); // saved after its delay (1 s): not yet
  const link = last(a).link;
  doc.set("hidden");
  await net.clock.advance(99);
  // A slow link from here: what either side sends is held until resume().
  link.pause();
  await net.clock.advance(1);
  // Asleep is due: it saves first, and the upload waits on the link. Sealing it is WebCrypto's
  // (real time, off the manual clock): wait for the bytes without moving the clock.
  const sealedBy = Date.now() + 5000;
  while (link.client.bufferedAmount === 0 && Date.now() < sealedBy) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(link.client.bufferedAmount).toBeGreaterThan(0);
  expect(last(a).closedBy).toBeUndefined();
  await net.clock.advance(100);
  doc.set("visible");
  await net.clock.advance(100);
  const acks = last(a).types.filter((t) => t === MessageType.PersistAck).length;
  link.resume();
  await net.clock.runUntil(() => last(a).types.filter((t) => t === MessageType.PersistAck).length > acks, { maxMs: 1000 });
  expect(link.client.bufferedAmount).toBe(0);
  // Saved, and visible by then: it stays connected.
  await net.clock.advance(1000);
  expect(last(a).closedBy).toBeUndefined();
  expect(link.clientState).toBe("open");
  expect(a.taps).toHaveLength(1);
  expect(b.session.model.exits).toEqual([]);
  expect(built(a)).toBe(1);
  await net.write(a, "still here", [a, b]);
  await net.expectConverged([a, b]);
  await net.end([a, b]);
});
