/**
 * GET /metrics of a reflector on a loopback port: the Prometheus text moves with the traffic
 * (connections, sessions, joins, refusals, relayed entries and bytes, storage appends, closes by
 * code), two reflectors in one process keep their own figures, and the listener options work.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CloseCode, MessageType } from "@lockstep/protocol";
import { silentLogger, startReflector, type Reflector } from "@lockstep/reflector";
import { TestClient, bytes, randomId, sessionPersistentId, testAuth } from "./helpers";

/** The samples of an exposition: `name{labels}` (as written) → value. Checks every line's shape on the way. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|NaN|[+-]Inf)$/i.exec(line);
    if (!m) throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

function value(samples: Map<string, number>, key: string): number {
  const v = samples.get(key);
  if (v === undefined) throw new Error(`no sample ${key} among ${[...samples.keys()].filter((k) => k.startsWith("lockstep_")).join(", ")}`);
  return v;
}

let dir: string;
const reflectors: Reflector[] = [];
const clients: TestClient[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "lockstep-metrics-"));
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(reflectors.splice(0).map((r) => r.close()));
  await rm(dir, { recursive: true, force: true });
});

async function start(options: Parameters<typeof startReflector>[0] = {}): Promise<Reflector> {
  const r = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, viewGraceMs: 0, ...options });
  reflectors.push(r);
  return r;
}

async function connect(r: Reflector): Promise<TestClient> {
  const c = await TestClient.connect(r.url);
  clients.push(c);
  return c;
}

test("the figures move under traffic, and two reflectors in one process keep their own", async () => {
  const r = await start({ dataDir: join(dir, "a") });
  const other = await start();
  expect(r.metricsUrl).toBe(r.url.replace("ws://", "http://") + "metrics");
  const idle = await scrape(r.metricsUrl!);
  expect(value(idle, "lockstep_connections_open")).toBe(0);
  expect(value(idle, "lockstep_sessions_live")).toBe(0);
  expect(value(idle, "lockstep_entries_relayed_total")).toBe(0);
  // The CLI asks for the process metrics; a library reflector by default does not.
  expect([...idle.keys()].some((k) => k.startsWith("process_") || k.startsWith("nodejs_"))).toBe(false);

  const sessionId = randomId();
  const [a, b] = [await connect(r), await connect(r)];
  await a.join({ sessionId });
  await b.join({ sessionId });
  const messages = 25;
  for (let i = 0; i < messages; i++) a.send({ type: MessageType.Send, payload: bytes(100, i) });
  for (let i = 0; i < messages; i++) await b.nextOf(MessageType.Relay);
  // A wrong password is a refused join, counted by its reason.
  const intruder = await connect(r);
  intruder.send({ type: MessageType.Join, sessionId, persistentId: sessionPersistentId(sessionId), viewId: randomId(), tps: 20, auth: testAuth("wrong"), viewData: new Uint8Array(0) });
  expect((await intruder.closed).code).toBe(CloseCode.AuthFailed);

  const busy = await scrape(r.metricsUrl!);
  expect(value(busy, "lockstep_connections_open")).toBe(2);
  expect(value(busy, "lockstep_sessions_live")).toBe(1);
  expect(value(busy, "lockstep_sessions_created_total")).toBe(1);
  expect(value(busy, 'lockstep_joins_total{kind="new"}')).toBe(2);
  expect(value(busy, 'lockstep_joins_rejected_total{reason="AuthFailed"}')).toBe(1);
  expect(value(busy, `lockstep_closes_total{code="${CloseCode.AuthFailed}"}`)).toBe(1);
  expect(value(busy, "lockstep_entries_relayed_total")).toBe(messages);
  // Joins, sends and the intruder's join in; every relay twice (both members), syncs and joins out.
  expect(value(busy, "lockstep_frames_received_total")).toBeGreaterThanOrEqual(messages + 3);
  expect(value(busy, "lockstep_received_bytes_total")).toBeGreaterThan(messages * 100);
  expect(value(busy, "lockstep_sent_bytes_total")).toBeGreaterThan(2 * messages * 100);
  // Every entry was made durable before it was relayed: at least one group commit, at most one per entry (+ the 2 joins).
  const appends = value(busy, "lockstep_storage_append_seconds_count");
  expect(appends).toBeGreaterThanOrEqual(1);
  expect(appends).toBeLessThanOrEqual(messages + 2);
  expect(value(busy, 'lockstep_storage_append_seconds_bucket{le="+Inf"}')).toBe(appends);
  expect(value(busy, "lockstep_storage_append_seconds_sum")).toBeGreaterThan(0);

  // The other reflector in this process saw none of it.
  const quiet = await scrape(other.metricsUrl!);
  expect(value(quiet, "lockstep_entries_relayed_total")).toBe(0);
  expect(value(quiet, "lockstep_connections_open")).toBe(0);

  await a.close();
  await b.close();
  // Closes are counted when the server side sees them: wait for the gauge to drop.
  let after = await scrape(r.metricsUrl!);
  while (value(after, "lockstep_connections_open") > 0) {
    await new Promise((resolve) => setImmediate(resolve));
    after = await scrape(r.metricsUrl!);
  }
  expect(value(after, 'lockstep_closes_total{code="1000"}')).toBe(2);
  expect(value(after, "lockstep_entries_relayed_total")).toBe(messages);
  expect(value(after, "lockstep_sessions_stored")).toBe(1);
});

test("process metrics on request; a listener of its own; or none at all", async () => {
  const separate = await start({ metrics: { port: 0, host: "127.0.0.1", process: true } });
  expect(separate.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  expect(separate.metricsUrl).not.toContain(`:${separate.port}/`);
  const samples = await scrape(separate.metricsUrl!);
  expect(value(samples, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
  expect(value(samples, "lockstep_connections_open")).toBe(0);
  // /health is there too (for a probe on the private side); the public port no longer serves /metrics.
  expect((await fetch(separate.metricsUrl!.replace("/metrics", "/health"))).status).toBe(200);
  expect((await fetch(separate.url.replace("ws://", "http://") + "metrics")).status).toBe(404);

  const none = await start({ metrics: false });
  expect(none.metricsUrl).toBeUndefined();
  expect((await fetch(none.url.replace("ws://", "http://") + "metrics")).status).toBe(404);
  expect((await fetch(none.url.replace("ws://", "http://") + "health")).status).toBe(200);
});
