/**
 * The installed command configured from the environment alone, as a service manager runs it:
 * every line it writes to stdout and stderr over a run (start, a join, a leave, a shutdown) is a
 * JSON object; a bad variable stops it with exit 2 and a JSON line naming the variable; a person
 * at a terminal can ask for pretty lines instead.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageType } from "@lockstep/protocol";
import { spawnCli, type CliProcess } from "./cli-process";
import { TestClient, randomId } from "./helpers";

jest.setTimeout(20_000);

let dir: string;
const processes: CliProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lockstep-cli-run-"));
});

afterEach(() => {
  for (const p of processes.splice(0)) p.kill();
  rmSync(dir, { recursive: true, force: true });
});

function run(args: readonly string[], env: Record<string, string>): CliProcess {
  const p = spawnCli(args, env);
  processes.push(p);
  return p;
}

test("a run configured by LOCKSTEP_* variables writes nothing but JSON lines, on stdout and stderr", async () => {
  const p = run([], { LOCKSTEP_PORT: "0", LOCKSTEP_HOST: "127.0.0.1", LOCKSTEP_DATA_DIR: join(dir, "data"), LOCKSTEP_LOG_LEVEL: "info", LOCKSTEP_VIEW_GRACE_MS: "0" });
  const url = await p.ready;
  expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
  const client = await TestClient.connect(url);
  const { viewId } = await client.join({ sessionId: randomId() });
  await p.waitFor((l) => l.event === "view.joined" && l.fields["viewId"] === viewId);
  client.send({ type: MessageType.Leave });
  await client.closed;
  await p.waitFor((l) => l.event === "view.exited" && l.fields["viewId"] === viewId);
  p.child.kill("SIGTERM");
  expect(await p.exited).toBe(0);

  const lines = [...p.stdout, ...p.stderr];
  const parsed = lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON line: ${JSON.stringify(line)}`);
    }
  });
  for (const line of parsed) {
    expect(line).toEqual({ ts: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), level: expect.stringMatching(/^(info|warn|error)$/), event: expect.any(String), fields: expect.any(Object) });
  }
  const events = parsed.map((l) => l["event"]);
  expect(events).toEqual(expect.arrayContaining(["listening", "ready", "session.created", "view.joined", "view.exited", "signal", "shutdown", "closed"]));
  // Nothing on stderr in a clean run; the signal is logged before the shutdown, the close last.
  expect(p.stderr).toEqual([]);
  expect(events.indexOf("signal")).toBeLessThan(events.indexOf("shutdown"));
  expect(events[events.length - 1]).toBe("closed");
  expect(parsed.find((l) => l["event"] === "signal")).toMatchObject({ fields: { signal: "SIGTERM" } });
});

test("a bad variable exits 2 with one JSON line naming it; the command line wins over the environment", async () => {
  const bad = run([], { LOCKSTEP_PORT: "eighty", LOCKSTEP_MEMORY: "1" });
  expect(await bad.exited).toBe(2);
  expect(bad.stdout).toEqual([]);
  expect(bad.stderr).toHaveLength(1);
  expect(JSON.parse(bad.stderr[0]!)).toMatchObject({ level: "error", event: "usage.error", fields: { message: 'LOCKSTEP_PORT must be an integer in 0..65535, got "eighty"' } });

  // The same variable, overridden by the flag: it starts.
  const good = run(["--port", "0", "--host", "127.0.0.1"], { LOCKSTEP_PORT: "eighty", LOCKSTEP_MEMORY: "1", LOCKSTEP_LOG_LEVEL: "warn" });
  expect(await good.ready).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
  good.child.kill("SIGTERM");
  expect(await good.exited).toBe(0);
});

test("LOCKSTEP_LOG_FORMAT=pretty writes lines for reading", async () => {
  const p = run(["--port", "0", "--host", "127.0.0.1", "--memory"], { LOCKSTEP_LOG_FORMAT: "pretty" });
  const line = await p.waitForLine((l) => l.includes(" ready "));
  expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  ready  Lockstep reflector listening on ws:\/\/127\.0\.0\.1:\d+\/ url=ws:/);
  p.child.kill("SIGTERM");
  expect(await p.exited).toBe(0);
  expect(p.stdout.some((l) => l.startsWith("{"))).toBe(false);
});
