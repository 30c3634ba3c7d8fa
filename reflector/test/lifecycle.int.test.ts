import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { WebSocket } from "ws";
import { CloseCode, MessageType, encodeClientMessage } from "@lockstep/protocol";
import { startReflector, createConsoleLogger, silentLogger } from "@lockstep/reflector";
import { Harness, TestClient, bytes, randomId, sessionPersistentId, testAuth } from "./helpers";

const h = new Harness();
afterEach(() => h.teardown());

test("an idle session ticks at roughly its tps, with non-decreasing times", async () => {
  await h.start();
  const a = await h.connect();
  const { viewJoin } = await a.join({ tps: 50 });
  const ticks = [];
  for (let i = 0; i < 3; i++) ticks.push(await a.nextOf(MessageType.Tick));
  const times = ticks.map((t) => t.time);
  expect(times[0]!).toBeGreaterThanOrEqual(viewJoin.time);
  expect([...times].sort((x, y) => x - y)).toEqual(times);
  // Three ticks at 50 tps span about 40 ms; allow generous slack for a loaded machine.
  expect(times[2]! - viewJoin.time).toBeLessThan(2000);
});

test("ticks carry the injected clock's session time and the first joiner's tps wins", async () => {
  let now = 5000;
  await h.start({ clock: () => now });
  const [a, b] = [await h.connect(), await h.connect()];
  const sessionId = randomId();
  const first = await a.join({ sessionId, tps: 50 });
  expect(first.viewJoin.time).toBe(0);
  now += 1234.9;
  const second = await b.join({ sessionId, tps: 1 });
  expect(second.sync.time).toBe(1234);
  expect(second.viewJoin.time).toBe(1234);
  const started = Date.now();
  const tick = await b.nextOf(MessageType.Tick);
  expect(tick.time).toBe(1234);
  for (let i = 0; i < 3; i++) await b.nextOf(MessageType.Tick);
  // Four ticks at the second joiner's 1 tps would take over 3 s; at 50 tps they take ~80 ms.
  expect(Date.now() - started).toBeLessThan(2500);
  now -= 500; // a clock that stutters backwards never makes times decrease
  a.send({ type: MessageType.Send, payload: bytes(1) });
  expect((await a.nextOf(MessageType.Relay)).time).toBe(1234);
});

test("the tps option overrides what joiners ask for", async () => {
  await h.start({ tps: 50 });
  const a = await h.connect();
  await a.join({ tps: 1 });
  const started = Date.now();
  for (let i = 0; i < 4; i++) await a.nextOf(MessageType.Tick);
  expect(Date.now() - started).toBeLessThan(2500);
});

test("Leave sends a ViewExit to the others and closes the leaver's socket normally", async () => {
  await h.start();
  const [a, b] = [await h.connect(), await h.connect()];
  const sessionId = randomId();
  await a.join({ sessionId });
  const { viewId } = await b.join({ sessionId });
  b.send({ type: MessageType.Leave });
  const exit = await a.nextOf(MessageType.ViewExit);
  expect(exit).toMatchObject({ viewId, seq: 3 });
  expect((await b.closed).code).toBe(1000);
});

test("an abruptly terminated socket gets exactly one ViewExit", async () => {
  await h.start();
  const [a, b] = [await h.connect(), await h.connect()];
  const sessionId = randomId();
  await a.join({ sessionId });
  const { viewId } = await b.join({ sessionId });
  b.ws.terminate();
  expect(await a.nextOf(MessageType.ViewExit)).toMatchObject({ viewId, seq: 3 });
  a.send({ type: MessageType.Send, payload: bytes(1) });
  expect((await a.nextOf(MessageType.Relay)).seq).toBe(4);
  expect(a.frames.filter((f) => f.type === MessageType.ViewExit)).toHaveLength(1);
});

test("a client that stops answering pings is dropped by the heartbeat with Timeout; live ones stay", async () => {
  await h.start({ heartbeatMs: 30 });
  const a = await h.connect();
  const sessionId = randomId();
  await a.join({ sessionId });
  const deaf = new WebSocket(h.reflector.url, { autoPong: false });
  const closed = new Promise<number>((resolve) => deaf.on("close", (code) => resolve(code)));
  await new Promise((resolve) => deaf.once("open", resolve));
  const viewId = randomId();
  deaf.send(encodeClientMessage({ type: MessageType.Join, sessionId, persistentId: sessionPersistentId(sessionId), viewId, tps: 20, auth: testAuth(), viewData: new Uint8Array(0) }));
  expect(await a.nextOf(MessageType.ViewExit)).toMatchObject({ viewId });
  expect(await closed).toBe(CloseCode.Timeout);
  a.send({ type: MessageType.Ping, id: 7 });
  await a.nextOf(MessageType.Pong);
  expect(a.isClosed).toBe(false);
});

test("a peer that answers nothing, not even the close, is terminated by the heartbeat", async () => {
  await h.start({ heartbeatMs: 20 });
  const socket = connect(h.reflector.port, "127.0.0.1");
  const ended = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => {});
  socket.write(
    "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  // Upgraded, then silent: the socket is read (so TCP does not push back) but never answered.
  await new Promise<void>((resolve) => socket.once("data", () => resolve()));
  await ended;
  await waitFor(() => h.reflector.stats().connections === 0);
});

test("an empty session is dropped from memory after sessionIdleMs; the next join continues it from storage", async () => {
  await h.start({ sessionIdleMs: 50 });
  const a = await h.connect();
  const sessionId = randomId();
  await a.join({ sessionId });
  a.send({ type: MessageType.Send, payload: bytes(3) });
  await a.nextOf(MessageType.Relay);
  await a.close();
  await waitFor(() => h.reflector.stats().sessions === 0);
  const b = await h.connect();
  const { sync, viewJoin } = await b.join({ sessionId });
  expect(sync.seq).toBe(3);
  expect(sync.entries.map((e) => e.type)).toEqual([MessageType.ViewJoin, MessageType.Relay, MessageType.ViewExit]);
  expect(Array.from((sync.entries[1] as { payload: Uint8Array }).payload)).toEqual(Array.from(bytes(3)));
  expect(viewJoin.seq).toBe(4);
  expect(viewJoin.time).toBeGreaterThanOrEqual(sync.entries[2]!.time);
});

test("rejoining an empty session before sessionIdleMs keeps its log", async () => {
  await h.start({ sessionIdleMs: 60_000 });
  const a = await h.connect();
  const sessionId = randomId();
  await a.join({ sessionId });
  await a.close();
  await waitFor(() => h.reflector.stats().connections === 0);
  const b = await h.connect();
  const { sync } = await b.join({ sessionId });
  expect(sync.entries.map((e) => e.type)).toEqual([MessageType.ViewJoin, MessageType.ViewExit]);
});

test("GET /health answers JSON; other paths 404", async () => {
  await h.start();
  const a = await h.connect();
  await a.join();
  const base = `http://127.0.0.1:${h.reflector.port}`;
  const health = await fetch(`${base}/health`);
  expect(health.status).toBe(200);
  expect(health.headers.get("content-type")).toMatch(/application\/json/);
  expect(await health.json()).toEqual({ status: "ok", sessions: 1, connections: 1 });
  const missing = await fetch(`${base}/nope`);
  expect(missing.status).toBe(404);
  await missing.text();
});

test("close() tells every client ServerShutdown, stops listening and leaves no handles", async () => {
  const before = countResources();
  const lines: string[] = [];
  const reflector = await startReflector({ port: 0, heartbeatMs: 20, logger: createConsoleLogger("info", { write: (l) => lines.push(l) }) });
  expect(countResources().TCPServerWrap ?? 0).toBe((before.TCPServerWrap ?? 0) + 1);
  const [a, b, idle] = await Promise.all([TestClient.connect(reflector.url), TestClient.connect(reflector.url), TestClient.connect(reflector.url)]);
  const sessionId = randomId();
  await a.join({ sessionId, tps: 60 });
  await b.join({ sessionId });
  await reflector.close();
  for (const client of [a, b, idle]) {
    expect(await client.nextOf(MessageType.Error)).toMatchObject({ code: CloseCode.ServerShutdown });
    expect((await client.closed).code).toBe(CloseCode.ServerShutdown);
  }
  // No view-exits are broadcast while shutting down.
  expect(a.frames.some((f) => f.type === MessageType.ViewExit)).toBe(false);
  // Nothing of the reflector is left: no listening server, socket or timer beyond what was there
  // before. Handles of earlier tests may still be winding down, hence wait rather than compare once.
  const kinds = ["TCPServerWrap", "TCPSocketWrap", "Timeout"];
  await waitFor(() => {
    const after = countResources();
    return kinds.every((kind) => (after[kind] ?? 0) <= (before[kind] ?? 0));
  }).catch(() => {
    throw new Error(`handles left after close(): before ${JSON.stringify(before)}, after ${JSON.stringify(countResources())}`);
  });
  await expect(TestClient.connect(reflector.url)).rejects.toThrow();
  await expect(reflector.close()).resolves.toBeUndefined();
  const events = lines.map((l) => (JSON.parse(l) as { event: string }).event);
  expect(events).toEqual(expect.arrayContaining(["listening", "session.created", "view.joined", "shutdown"]));
});

test("startReflector rejects invalid options and a port in use with a ReflectorError", async () => {
  await expect(startReflector({ port: -1 })).rejects.toMatchObject({ name: "ReflectorError" });
  await expect(startReflector({ limits: { maxFrameBytes: 1.5 } })).rejects.toMatchObject({ name: "ReflectorError" });
  await h.start();
  await expect(startReflector({ port: h.reflector.port, logger: silentLogger })).rejects.toMatchObject({
    name: "ReflectorError",
    message: expect.stringContaining(String(h.reflector.port)),
  });
});

function countResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of process.getActiveResourcesInfo()) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

/** Polls a condition on the event loop (for state with no event of its own, like a dropped session). */
async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
