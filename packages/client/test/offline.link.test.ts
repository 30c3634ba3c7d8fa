/**
 * Input made while the session cannot send it, and input whose relay was lost with the
 * connection: queued, sent again in order once the session is live, and applied exactly once on
 * every replica (the replicated sender table says what of it was applied already). Real clients and
 * a real reflector core over the in-memory link, on a ManualClock.
 */
import { LONGEST_RETRY_MS, Net, last, logged, quiet, type Client } from "./net-harness";

/** Waits until every client's model has exactly `lines` (in that order) and nothing is pending. */
async function settledOn(net: Net, all: Client[], lines: string[]): Promise<void> {
  await net.clock.runUntil(() => all.every((c) => c.session.status === "connected" && c.session.model.lines.length >= lines.length && c.session.pendingEvents === 0), {
    maxMs: 4 * LONGEST_RETRY_MS,
  });
  await net.clock.advance(200);
  for (const c of all) expect(c.session.model.lines).toEqual(lines);
  await net.expectConverged(all);
}

const range = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

test("20 events published while the reflector is down are applied exactly once, in order, on every replica", async () => {
  const net = await Net.start();
  const a = await net.join("down");
  const b = await net.join("down");
  await net.write(a, "before", [a, b]);
  quiet("warn");
  await net.stop();
  for (const line of range("q", 20)) a.session.view.publish("room", "write", line);
  expect(a.session.pendingEvents).toBe(20);
  await net.clock.advance(2000);
  await net.restart();
  await settledOn(net, [a, b], ["before", ...range("q", 20)]);
  await net.end([a, b]);
});

test.each([
  ["kept within the grace period", 10_000],
  ["exited at once", 0],
])("sends whose relays were lost with the connection are applied exactly once (view %s)", async (_, viewGraceMs) => {
  const net = await Net.start({ viewGraceMs });
  const a = await net.join("lost");
  const b = await net.join("lost");
  await net.write(a, "before", [a, b]);
  quiet("warn");
  const link = last(a).link;
  // 25 reach the reflector and are relayed, but their relays never reach a; 25 more never leave a.
  link.pauseToClient();
  for (const line of range("p", 25)) a.session.view.publish("room", "write", line);
  await net.clock.settle();
  link.pause();
  for (const line of range("p", 50).slice(25)) a.session.view.publish("room", "write", line);
  expect(a.session.pendingEvents).toBe(50);
  link.drop();
  await settledOn(net, [a, b], ["before", ...range("p", 50)]);
  expect(a.taps.length).toBeGreaterThanOrEqual(2);
  await net.end([a, b]);
});

test("offline: false drops input made while disconnected, with one warning; so does { offline: \"drop\" } for one event", async () => {
  const net = await Net.start();
  const a = await net.join("drop", { offline: false });
  const b = await net.join("drop");
  const warn = quiet("warn");
  await net.stop();
  a.session.view.publish("room", "write", "dropped-1");
  a.session.view.publish("room", "write", "dropped-2");
  b.session.view.publish("room", "write", "cursor", { offline: "drop" });
  b.session.view.publish("room", "write", "kept");
  expect(a.session.pendingEvents).toBe(0);
  expect(b.session.pendingEvents).toBe(1);
  expect(warn.mock.calls.filter(([line]) => String(line).includes("offline queueing is off"))).toHaveLength(1);
  await net.restart();
  await settledOn(net, [a, b], ["kept"]);
  expect(() => a.session.view.publish("room", "write", "x", { offline: "later" as "drop" })).toThrow(/options.offline must be "queue" or "drop"/);
  await net.end([a, b]);
});

test("the offline queue is bounded: beyond maxEvents events are dropped (said once), the rest kept in order", async () => {
  const net = await Net.start();
  const a = await net.join("bounded", { offline: { maxEvents: 3 } });
  const b = await net.join("bounded");
  const warn = quiet("warn");
  await net.stop();
  for (const line of range("e", 5)) a.session.view.publish("room", "write", line);
  expect(a.session.pendingEvents).toBe(3);
  expect(logged(warn, "the offline queue is full (3 events")).toBe(true);
  await net.restart();
  await settledOn(net, [a, b], range("e", 3));
  await net.end([a, b]);
});
