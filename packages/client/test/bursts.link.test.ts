/**
 * Bursts of publishes: what a view publishes within one turn travels as one payload (one stream
 * entry; split only past the payload limit), so a burst, or a client publishing thousands of events
 * a second, stays within the reflector's default frame rate (1,000 frames/s, burst 2,000) instead of
 * being closed with RateLimited. Real clients and a real reflector core over the in-memory link, on
 * a ManualClock.
 */
import { MessageType } from "@lockstep/protocol";
import { Net, last, type Client } from "./net-harness";

/** Relay frames the client's current link delivered so far. */
const relays = (c: Client): number => last(c).types.filter((t) => t === MessageType.Relay).length;

/** Waits until every client's model has `n` lines, then checks they are `lines` on every replica and the replicas agree. */
async function applied(net: Net, all: Client[], lines: string[]): Promise<void> {
  await net.clock.runUntil(() => all.every((c) => c.session.model.lines.length >= lines.length), { maxMs: 30_000 });
  for (const c of all) expect(c.session.model.lines).toEqual(lines);
  await net.expectConverged(all);
}

const range = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

test("3,000 events published in one turn travel bundled: all applied once, in order, and the connection is not rate-limited", async () => {
  const net = await Net.start();
  const a = await net.join("burst");
  const b = await net.join("burst");
  const lines = range("e", 3000);
  for (const line of lines) a.session.view.publish("room", "write", line);
  await applied(net, [a, b], lines);
  expect(a.taps).toHaveLength(1);
  expect(last(a).closeEvent).toBeUndefined();
  expect(a.session.pendingEvents).toBe(0);
  await net.end([a, b]);
});

test("a client publishing 5,000 events a second for 2 s is never closed by the default limits", async () => {
  const net = await Net.start();
  const a = await net.join("rate");
  const b = await net.join("rate");
  const lines: string[] = [];
  // 250 events every 50 ms of clock time: 5,000/s, as a busy app's frames would publish them.
  for (let tick = 0; tick < 40; tick++) {
    for (let i = 0; i < 250; i++) {
      const line = `t${tick}.${i}`;
      lines.push(line);
      a.session.view.publish("room", "write", line);
    }
    await net.clock.advance(50);
  }
  await applied(net, [a, b], lines);
  expect(a.taps).toHaveLength(1);
  expect(last(a).closeEvent).toBeUndefined();
  await net.end([a, b]);
});

test("the publishes of one turn are one stream entry, applied in order on every replica; the next turn's are another", async () => {
  const net = await Net.start();
  const a = await net.join("one-entry");
  const b = await net.join("one-entry");
  const before = relays(b);
  for (const line of ["x1", "x2", "x3"]) a.session.view.publish("room", "write", line);
  await net.clock.runUntil(() => b.session.model.lines.length === 3, { maxMs: 5_000 });
  expect(relays(b) - before).toBe(1);
  a.session.view.publish("room", "write", "y1");
  b.session.view.publish("room", "write", "z1");
  await net.clock.runUntil(() => [a, b].every((c) => c.session.model.lines.length === 5), { maxMs: 5_000 });
  // Two publishers in one turn: two entries, in whichever order the reflector stamped them, alike everywhere.
  expect(relays(b) - before).toBe(3);
  expect(b.session.model.lines.slice(0, 3)).toEqual(["x1", "x2", "x3"]);
  expect([...b.session.model.lines.slice(3)].sort()).toEqual(["y1", "z1"]);
  expect(a.session.model.lines).toEqual(b.session.model.lines);
  await net.expectConverged([a, b]);
  await net.end([a, b]);
});

test("a turn's publishes past the 256 KiB payload limit are split into several entries, still in order", async () => {
  const net = await Net.start();
  const a = await net.join("split");
  const b = await net.join("split");
  const before = relays(b);
  // 40 events of ~20 KB: ~800 KB in one turn, so at least 4 payloads.
  const lines = Array.from({ length: 40 }, (_, i) => `${i}:`.padEnd(20_000, String.fromCharCode(97 + (i % 26))));
  for (const line of lines) a.session.view.publish("room", "write", line);
  await applied(net, [a, b], lines);
  expect(relays(b) - before).toBeGreaterThanOrEqual(4);
  expect(relays(b) - before).toBeLessThanOrEqual(5);
  await net.end([a, b]);
});
