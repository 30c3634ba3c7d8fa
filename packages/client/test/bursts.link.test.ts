/**
 * Bursts of publishes: what views publish within one turn travels in one SendBatch frame, so a
 * burst, or a client publishing thousands of events a second, stays within the reflector's default
 * frame rate (1,000 frames/s, burst 2,000) instead of being closed with RateLimited. Real clients
 * and a real reflector core over the in-memory link, on a ManualClock.
 */
import { Net, last, type Client } from "./net-harness";

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
