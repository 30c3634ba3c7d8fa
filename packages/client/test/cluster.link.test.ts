/**
 * A client among the nodes of a cluster (PROTOCOL.md §17), with real clients and real reflector
 * cores on one shared store over the in-memory link, every timer on one ManualClock: which URL
 * each attempt goes to, what happens at once and what waits a backoff delay — checked in clock
 * time and in attempts, with no sleeps. The real-socket tier is cluster.int.test.ts.
 */
import { JoinError } from "../src/errors";
import { MAX_HOPS_AT_ONCE, OPEN_TIMEOUT_MS } from "../src/session/reflectors";
import { Cluster, ClusterView, type R } from "./cluster-harness";
import type { FakeSocket } from "./fake-socket";
import { SILENCE_MS, logged, quiet, retryBounds } from "./net-harness";

const A = "ws://node-a.test/";
const B = "ws://node-b.test/";
const ROUTER = "ws://router.test/";
const DOWN = "ws://down.test/";
const PAUSED = "ws://paused.test/";

const built = (s: R): number => ClusterView.built.get(s.viewId) ?? 0;

afterEach(() => jest.restoreAllMocks());

test("a first join through a node that redirects ends live on the owner: the model works, and agrees with a client that joined the owner directly", async () => {
  const net = new Cluster();
  await net.start([A]);
  net.redirectors.set(ROUTER, A);
  const log = quiet("log");
  const direct = await net.join("routed", A);
  const routed = await net.join("routed", ROUTER, { debug: "session" });
  // The redirect was followed at once: no clock time passed.
  expect(net.urls).toEqual([A, ROUTER, A]);
  expect(net.clock.now()).toBe(0);
  expect(routed.status).toBe("connected");
  expect(logged(log, `[Lockstep] Session moved to ${A} (redirected by the reflector)`)).toBe(true);
  await net.write(routed, "hello", [direct, routed]);
  await net.write(direct, "hi", [direct, routed]);
  expect(routed.model.lines).toEqual(["hello", "hi"]);
  expect(direct.model.present).toEqual([direct.viewId, routed.viewId]);
  await net.expectSame([direct, routed]);
  await net.end([direct, routed]);
});

test(`a redirect loop is followed at once ${MAX_HOPS_AT_ONCE} times, then only after growing backoff delays, until the node names a real owner`, async () => {
  const net = new Cluster();
  await net.start([A]);
  net.redirectors.set(ROUTER, ROUTER);
  const joining = net.join("loop", ROUTER);
  let settled = false;
  void joining.then(() => (settled = true));
  await net.whenOpened(1 + MAX_HOPS_AT_ONCE);
  // The first attempt and five redirects at once; the sixth waits.
  expect(net.opened).toHaveLength(1 + MAX_HOPS_AT_ONCE);
  expect(new Set(net.opened.map((o) => o.at))).toEqual(new Set([0]));
  for (let attempt = 0; attempt < 2; attempt++) {
    const before = net.opened.length;
    // The last attempt was redirected at once: the delay counts from then.
    const from = net.opened.at(-1)!.at;
    const [min, max] = retryBounds(attempt);
    await net.clock.advance(from + min - 1 - net.clock.now());
    expect(net.opened).toHaveLength(before);
    await net.clock.advance(from + max - net.clock.now());
    expect(net.opened).toHaveLength(before + 1);
  }
  expect(settled).toBe(false);
  // The node learns the owner: the next redirect goes there, and the join completes.
  net.redirectors.set(ROUTER, A);
  const s = await net.finish(joining);
  expect(net.urls.slice(-2)).toEqual([ROUTER, A]);
  expect(s.status).toBe("connected");
  await net.end([s]);
});

test("a list whose first URL is dead joins on the next one at once; with every URL dead the join fails and names them all", async () => {
  const net = new Cluster();
  await net.start([A]);
  net.dead.add(DOWN);
  const s = await net.join("dead-first", `${DOWN}, ${A}`);
  expect(net.urls).toEqual([DOWN, A]);
  expect(net.clock.now()).toBe(0);
  expect(s.status).toBe("connected");
  await net.end([s]);

  net.dead.add(B);
  quiet("error");
  const failed = await net.join("all-dead", [DOWN, B]).catch((e: unknown) => e);
  expect(failed).toBeInstanceOf(JoinError);
  expect((failed as Error).message).toMatch(/^cannot reach any of the Lockstep reflectors at ws:\/\/down\.test\/, ws:\/\/node-b\.test\/: are they running\?/);
  expect(net.urls.slice(-2)).toEqual([DOWN, B]);
});

test(`a node that accepts and never answers is abandoned after ${OPEN_TIMEOUT_MS} ms, and the join goes on at the next URL`, async () => {
  const net = new Cluster();
  await net.start([A]);
  net.paused.add(PAUSED);
  const joining = net.join("paused", `${PAUSED} ${A}`);
  let settled = false;
  void joining.then(() => (settled = true));
  await net.whenOpened(1);
  await net.clock.advance(OPEN_TIMEOUT_MS - 1);
  expect(net.opened).toHaveLength(1);
  expect(settled).toBe(false);
  await net.clock.advance(1);
  const s = await net.finish(joining);
  expect(net.urls).toEqual([PAUSED, A]);
  expect(net.opened[1]!.at).toBe(OPEN_TIMEOUT_MS);
  // The stalled socket was closed, not left hanging.
  expect((net.opened[0]!.socket as FakeSocket).closeCalls).toEqual([{ code: 1000, reason: "abandoned" }]);
  await net.end([s]);
});

test("a drained node closes with SessionMoved: its clients rejoin at once through the next URL, resume there, and what they published meanwhile arrives exactly once", async () => {
  const net = new Cluster();
  await net.start([A, B]);
  const warn = quiet("warn");
  const x = await net.join("moved", `${A}, ${B}`);
  const y = await net.join("moved", `${A}, ${B}`);
  expect(net.urls).toEqual([A, A]);
  await net.write(x, "before", [x, y]);
  const view = x.view;
  const statuses: string[] = [];
  x.on("status", (status) => {
    statuses.push(status);
    // Published while not connected: queued, sent once it is.
    if (status === "reconnecting") x.view.publish("room", "write", "queued");
  });
  // On its way as the node stops: it is applied once, whether the node relayed it or not.
  x.view.publish("room", "write", "in flight");
  await net.drain(A);
  const movedAt = net.clock.now();
  await net.clock.runUntil(() => x.status === "connected" && y.status === "connected" && x.model.lines.length === 3, { maxMs: 5000 });
  // Both went to the next URL at once: no backoff delay.
  expect(net.opened.slice(2).map((o) => [o.url, o.at])).toEqual([
    [B, movedAt],
    [B, movedAt],
  ]);
  expect(statuses).toEqual(["reconnecting", "syncing", "connected"]);
  // Resumed: the same view, no view-exit or second view-join anyone saw.
  expect(x.view).toBe(view);
  expect(built(x)).toBe(1);
  expect(x.model.lines).toEqual(["before", "in flight", "queued"]);
  expect(y.model.exits).toEqual([]);
  expect(y.model.joins).toEqual([x.viewId, y.viewId]);
  // Moving is no trouble: nothing was reported as a lost connection.
  expect(logged(warn, "lost the connection")).toBe(false);
  await net.write(y, "after", [x, y]);
  await net.expectSame([x, y]);
  await net.end([x, y]);
});

test("SessionMoved during a first join moves it on to the next URL at once", async () => {
  const net = new Cluster();
  await net.start([A]);
  net.movers.add(ROUTER);
  const s = await net.join("moved-early", `${ROUTER}, ${A}`);
  expect(net.urls).toEqual([ROUTER, A]);
  expect(net.clock.now()).toBe(0);
  expect(s.status).toBe("connected");
  await net.end([s]);
});

test("a redirect whose target is down goes back to the list after a backoff delay", async () => {
  const net = new Cluster();
  await net.start([A]);
  net.dead.add(DOWN);
  net.redirectors.set(ROUTER, DOWN);
  const joining = net.join("down-owner", ROUTER);
  await net.whenOpened(2);
  expect(net.urls).toEqual([ROUTER, DOWN]);
  // The owner is down; the node will name the new owner (here A) once it has one.
  net.redirectors.set(ROUTER, A);
  const [min, max] = retryBounds(0);
  await net.clock.advance(min - 1);
  expect(net.opened).toHaveLength(2);
  await net.clock.advance(max - min + 1);
  const s = await net.finish(joining);
  expect(net.urls).toEqual([ROUTER, DOWN, ROUTER, A]);
  await net.end([s]);
});

test("rejoins start at the URL that last worked and move to the next one at once after a failed attempt; a whole pass failing waits the backoff delay", async () => {
  const net = new Cluster();
  await net.start([A]);
  net.dead.add(DOWN);
  quiet("warn");
  const s = await net.join("rotate", `${A}, ${DOWN}`);
  const live = (): Promise<void> => net.clock.runUntil(() => s.status === "connected", { maxMs: 30_000 });
  net.opened.at(-1)!.link!.drop();
  await live();
  expect(net.urls).toEqual([A, A]);
  // A stops answering for a while: A fails, the next URL at once, then (both failed) A after a delay.
  net.dead.add(A);
  net.opened.at(-1)!.link!.drop();
  await net.clock.runUntil(() => net.opened.length >= 4, { maxMs: 30_000 });
  expect(net.opened[3]!.at).toBe(net.opened[2]!.at);
  net.dead.delete(A);
  await live();
  expect(net.urls).toEqual([A, A, A, DOWN, A]);
  const [min, max] = retryBounds(1);
  expect(net.opened[4]!.at - net.opened[3]!.at).toBeGreaterThanOrEqual(min);
  expect(net.opened[4]!.at - net.opened[3]!.at).toBeLessThanOrEqual(max);
  await net.end([s]);
});

test("a live connection redirected by its node follows at once and resumes; a Redirect naming no usable node is an ordinary lost connection", async () => {
  const net = new Cluster();
  await net.start([A]);
  net.redirectors.set(ROUTER, A);
  quiet("warn");
  const s = await net.join("live-redirect", ROUTER);
  expect(net.urls).toEqual([ROUTER, A]);
  const view = s.view;
  // A blip: the rejoin goes straight back to the owner it was live on, not through the router.
  net.opened.at(-1)!.link!.drop();
  await net.clock.runUntil(() => s.status === "connected", { maxMs: 5000 });
  expect(net.urls).toEqual([ROUTER, A, A]);

  const at = net.clock.now();
  net.redirectLive(net.opened.at(-1)!, A);
  await net.whenOpened(4);
  expect(net.opened[3]!).toMatchObject({ url: A, at });
  await net.clock.runUntil(() => s.status === "connected", { maxMs: 5000 });
  expect(s.view).toBe(view);

  const lostAt = net.clock.now();
  net.redirectLive(net.opened.at(-1)!, "http://elsewhere.test/");
  await net.clock.runUntil(() => net.opened.length >= 5, { maxMs: 30_000 });
  // Not followed: after the backoff delay, through the configured list again.
  expect(net.opened[4]!.url).toBe(ROUTER);
  expect(net.opened[4]!.at - lostAt).toBeGreaterThanOrEqual(retryBounds(0)[0]);
  await net.clock.runUntil(() => s.status === "connected", { maxMs: 5000 });
  expect(net.urls.slice(-2)).toEqual([ROUTER, A]);
  expect(s.view).toBe(view);
  await net.end([s]);
});

test("a node that goes silent (paused) is left for the next URL: the rejoin after the watchdog does not go back to it first", async () => {
  const net = new Cluster();
  await net.start([A]);
  net.redirectors.set(ROUTER, A);
  quiet("warn");
  const s = await net.join("silent", `${A}, ${ROUTER}`);
  const view = s.view;
  // Frames, pings and closes are lost both ways from now on: a paused process.
  net.opened.at(-1)!.link!.blackhole();
  const silentAt = net.clock.now();
  await net.clock.runUntil(() => net.opened.length >= 2, { maxMs: 30_000 });
  expect(net.opened[1]!.url).toBe(ROUTER);
  expect(net.opened[1]!.at - silentAt).toBeGreaterThanOrEqual(SILENCE_MS);
  await net.clock.runUntil(() => s.status === "connected", { maxMs: 5000 });
  expect(net.urls).toEqual([A, ROUTER, A]);
  expect(s.view).toBe(view);
  await net.end([s]);
});
