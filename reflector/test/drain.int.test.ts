/**
 * SIGTERM while two real clients publish as fast as they can: the reflector drains and exits 0,
 * nothing any replica applied before it went is missing from storage after a restart (a fresh
 * joiner replays it all, in the same order), the clients reconnect to the restarted reflector by
 * themselves, their queued input arrives exactly once, and every replica ends identical.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { expectSame, hashesWhen, until } from "@lockstep/test-support";
import { spawnCli, type CliProcess } from "./cli-process";
import { add, joinTally, type TallySession } from "./tally";

jest.setTimeout(40_000);

let dir: string;
const processes: CliProcess[] = [];
const sessions: TallySession[] = [];
let warnings: jest.SpyInstance;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lockstep-drain-"));
  // The clients say they lost the connection and are reconnecting: expected here, checked below.
  warnings = jest.spyOn(console, "warn").mockImplementation(() => undefined);
});

afterEach(async () => {
  warnings.mockRestore();
  await Promise.all(sessions.splice(0).map((s) => s.leave().catch(() => undefined)));
  for (const p of processes.splice(0)) p.kill();
  rmSync(dir, { recursive: true, force: true });
});

function reflector(port: number): CliProcess {
  const p = spawnCli(["--port", String(port), "--host", "127.0.0.1", "--data-dir", join(dir, "data"), "--log-level", "warn"]);
  processes.push(p);
  return p;
}

test("SIGTERM under load: exit 0, zero acknowledged loss, clients continue on the restarted reflector", async () => {
  const first = reflector(0);
  const url = await first.ready;
  const port = Number(new URL(url).port);
  const name = "drain";
  const a = await joinTally(url, name);
  const b = await joinTally(url, name);
  sessions.push(a, b);

  // Both publish one item every millisecond until each has published PER_CLIENT, across the shutdown:
  // what is published while the reflector is gone waits in the client and goes out after the reconnect.
  const PER_CLIENT = 150;
  let published = 0;
  const publisher = setInterval(() => {
    if (published === PER_CLIENT) return clearInterval(publisher);
    add(a, `a${published}`);
    add(b, `b${published}`);
    published++;
  }, 1);

  // SIGTERM once a good part of it went through: the rest is in flight or not sent yet.
  await until(a, () => a.model.items.length >= 60);
  const termAt = performance.now();
  first.child.kill("SIGTERM");
  expect(await first.exited).toBe(0);
  const drainMs = performance.now() - termAt;
  // Its end is logged on stdout only at info; at warn a clean drain writes nothing more, and no error.
  expect(first.stderr).toEqual([]);

  // With the reflector gone, nothing changes the replicas: this is what each client had acknowledged.
  const ackedA = a.model.items.slice();
  const ackedB = b.model.items.slice();
  expect(ackedA.length).toBeGreaterThanOrEqual(60);

  const second = reflector(port);
  expect(await second.ready).toBe(url);
  // A newcomer loads the session from storage only: everything acknowledged is in it, in order.
  const c = await joinTally(url, name);
  sessions.push(c);
  expect(c.model.items.slice(0, ackedA.length)).toEqual(ackedA);
  expect(c.model.items.slice(0, ackedB.length)).toEqual(ackedB);

  // a and b reconnect by themselves; everything they published arrives, exactly once each.
  const total = 2 * PER_CLIENT;
  const points = hashesWhen([a, b, c], (s) => s.model.items.length === total + 1);
  await until(c, () => c.model.items.length === total);
  add(c, "after");
  expectSame(await points);
  const items = c.model.items;
  expect(new Set(items).size).toBe(items.length);
  expect(items.filter((i) => i.startsWith("a"))).toHaveLength(PER_CLIENT + 1); // a0…a149 and "after"
  expect(items.filter((i) => i.startsWith("b"))).toHaveLength(PER_CLIENT);
  // Each client's own items arrive in the order it published them.
  for (const who of ["a", "b"]) {
    const own = items.filter((i) => /^[ab]\d+$/.test(i) && i.startsWith(who)).map((i) => Number(i.slice(1)));
    expect(own).toEqual([...Array(PER_CLIENT).keys()]);
  }
  expect(a.model.items).toEqual(items);
  expect(b.model.items).toEqual(items);
  // What the clients were told: the reflector is shutting down, reconnect (close 4007) — nothing else went wrong.
  const said = warnings.mock.calls.map((args) => String(args[0]));
  expect(said.length).toBeGreaterThanOrEqual(2);
  for (const line of said) expect(line).toMatch(/the reflector is shutting down.*\(ServerShutdown\)\); reconnecting$/);
  console.log(`drain: SIGTERM → exit ${drainMs.toFixed(0)} ms with 2 clients publishing; ${ackedA.length} items acknowledged before it, ${total} after the restart`);

  await Promise.all(sessions.splice(0).map((s) => s.leave()));
  second.child.kill("SIGTERM");
  expect(await second.exited).toBe(0);
});
