// The reflector core over the in-memory link, on a manual clock: nothing here sleeps or listens;
// every timer fires only when the test advances the clock.
import {
  CloseCode,
  DEFAULT_LIMITS,
  MessageType,
  maxJoinFrameBytes,
  decodeServerMessage,
  encodeClientMessage,
  type ClientMessage,
  type ServerMessage,
} from "@lockstep/protocol";
import { ManualClock, createMemoryReflector, type MemoryReflector, type MemoryReflectorOptions } from "@lockstep/test-support";
import { RawClient } from "./raw-client";
import { randomId, sessionPersistentId, testAuth } from "./helpers";

let mem: MemoryReflector;
let clock: ManualClock;

async function start(reflector: MemoryReflectorOptions["reflector"] = {}): Promise<void> {
  clock = new ManualClock();
  // Views exit at once unless a test is about the grace period.
  mem = await createMemoryReflector({ clock, reflector: { viewGraceMs: 0, ...reflector } });
}

/** Opens a link and waits (settling, no time passing) until the client end is open. */
async function connect(address?: string): Promise<RawClient> {
  const client = new RawClient(mem.open(address === undefined ? {} : { address }));
  await clock.settle();
  expect(client.opened).toBe(true);
  return client;
}

afterEach(async () => {
  await mem?.close();
});

test("a joiner gets its Sync and view-join; ticks come only as the clock advances (20 per second at tps 20)", async () => {
  await start();
  const a = await connect();
  const sessionId = randomId();
  a.join(sessionId, 20);
  await clock.settle();
  expect(a.frames.map((f) => f.type)).toEqual([MessageType.Sync, MessageType.ViewJoin]);
  expect(a.frames[0]).toMatchObject({ type: MessageType.Sync, sessionId, viewId: a.viewId, seq: 0, time: 0 });
  expect(a.frames[1]).toMatchObject({ seq: 1, time: 0, viewId: a.viewId });
  expect(mem.core.stats()).toMatchObject({ sessions: 1, connections: 1 });

  // No time passes, so no tick, however long the event loop runs.
  for (let i = 0; i < 5; i++) await clock.settle();
  expect(a.of(MessageType.Tick)).toHaveLength(0);

  await clock.advance(1000);
  const ticks = a.of(MessageType.Tick);
  // 20 tick slots; the first is skipped because the view-join entry already carried the time.
  expect(ticks.map((t) => t.time)).toEqual(Array.from({ length: 19 }, (_, i) => 100 + 50 * i));
  await clock.advance(1000);
  expect(a.of(MessageType.Tick)).toHaveLength(39);
  expect(a.of(MessageType.Tick).at(-1)!.time).toBe(2000);

  // A Send is stamped with the clock's time, and the tick after it is skipped.
  a.send({ type: MessageType.Send, payload: Uint8Array.of(7) });
  await clock.settle();
  expect(a.frames.at(-1)).toMatchObject({ type: MessageType.Relay, seq: 2, time: 2000, payload: Uint8Array.of(7) });
  await clock.advance(100);
  expect(a.of(MessageType.Tick).map((t) => t.time).slice(-1)).toEqual([2100]);
  expect(a.of(MessageType.Tick)).toHaveLength(40);
});

test("a socket that never joins is closed with Timeout (4009) exactly joinTimeoutMs after it connected", async () => {
  await start({ caps: { joinTimeoutMs: 3000 } });
  await clock.advance(250);
  const idle = await connect();
  await clock.advance(2999);
  expect(idle.closed).toBeUndefined();
  expect(idle.frames).toHaveLength(0);
  await clock.advance(1);
  expect(clock.now()).toBe(3250);
  expect(idle.frames).toEqual([expect.objectContaining({ type: MessageType.Error, code: CloseCode.Timeout })]);
  expect(idle.closed?.code).toBe(CloseCode.Timeout);
  expect(mem.core.stats().connections).toBe(0);
  expect(mem.connections()).toHaveLength(0);

  // A socket that joins in time is not closed by the join timer.
  const joined = await connect();
  joined.join(randomId());
  await clock.advance(10_000);
  expect(joined.closed).toBeUndefined();
  expect(joined.of(MessageType.Sync)).toHaveLength(1);
});

test("two members see every relay in one order, each sender's own in the order it sent them", async () => {
  await start();
  const sessionId = randomId();
  const a = await connect();
  const b = await connect();
  a.join(sessionId);
  await clock.settle();
  b.join(sessionId);
  await clock.settle();
  for (let i = 0; i < 100; i++) {
    a.send({ type: MessageType.Send, payload: Uint8Array.of(0xa, i) });
    b.send({ type: MessageType.Send, payload: Uint8Array.of(0xb, i) });
    if (i % 10 === 0) await clock.advance(7); // some interleave with ticks and time
  }
  await clock.settle();
  const relays = (c: RawClient) => c.of(MessageType.Relay).map((r) => ({ seq: r.seq, time: r.time, payload: Array.from(r.payload) }));
  const seenByA = relays(a);
  expect(seenByA).toHaveLength(200);
  expect(relays(b)).toEqual(seenByA);
  const seqs = seenByA.map((r) => r.seq);
  expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
  expect(new Set(seqs).size).toBe(200);
  for (const sender of [0xa, 0xb]) {
    expect(seenByA.filter((r) => r.payload[0] === sender).map((r) => r.payload[1])).toEqual(Array.from({ length: 100 }, (_, i) => i));
  }
  const times = seenByA.map((r) => r.time);
  expect(times).toEqual([...times].sort((x, y) => x - y));
  expect(times.at(-1)).toBe(70);
  expect(mem.core.stats().relayed).toBe(200);
});

test("a silently dead connection is found by the heartbeat on the clock: its view exits, its socket is cut off", async () => {
  await start({ heartbeatMs: 10_000 });
  const sessionId = randomId();
  const a = await connect();
  const b = await connect();
  a.join(sessionId);
  b.join(sessionId);
  await clock.settle();
  b.link.blackhole();
  // a answers pings (the link's client end does, like a browser); b's pings and pongs are lost.
  await clock.advance(10_000);
  expect(a.of(MessageType.ViewExit)).toHaveLength(0);
  await clock.advance(10_000);
  expect(a.of(MessageType.ViewExit)).toEqual([expect.objectContaining({ viewId: b.viewId, time: 20_000 })]);
  expect(b.closed).toBeUndefined(); // it never hears of it
  expect(mem.core.stats().connections).toBe(2); // its close handshake is lost too
  await clock.advance(1000); // the close grace
  expect(mem.core.stats().connections).toBe(1);
  expect(b.link.serverState).toBe("closed");
  expect(b.link.clientState).toBe("open");
  expect(a.closed).toBeUndefined();
});

test("a dropped link closes both ends with 1006; the other member sees the view-exit", async () => {
  await start();
  const sessionId = randomId();
  const a = await connect();
  const b = await connect();
  a.join(sessionId);
  b.join(sessionId);
  await clock.settle();
  expect(mem.drop((link) => link === b.link)).toBe(1);
  await clock.settle();
  expect(b.closed).toEqual({ code: 1006, reason: "" });
  expect(a.of(MessageType.ViewExit)).toEqual([expect.objectContaining({ viewId: b.viewId })]);
  expect(mem.connections()).toEqual([a.link]);
  expect(mem.dropAll()).toBe(1);
  await clock.settle();
  expect(a.closed?.code).toBe(1006);
  expect(mem.core.stats().connections).toBe(0);
});

test("a paused link holds frames without losing them; a client's close ends both sides cleanly", async () => {
  await start();
  const a = await connect();
  a.join(randomId());
  await clock.settle();
  a.link.pause();
  a.send({ type: MessageType.Send, payload: Uint8Array.of(1) });
  await clock.advance(500);
  expect(a.of(MessageType.Relay)).toHaveLength(0);
  expect(a.of(MessageType.Tick)).toHaveLength(0);
  expect(a.link.client.bufferedAmount).toBeGreaterThan(0);
  a.link.resume();
  await clock.settle();
  expect(a.of(MessageType.Relay)).toHaveLength(1);
  expect(a.of(MessageType.Tick).length).toBeGreaterThan(0);
  a.link.client.close(1000, "bye");
  await clock.settle();
  expect(a.closed).toEqual({ code: 1000, reason: "bye" });
  expect(mem.core.stats().connections).toBe(0);
});

test("the connection caps refuse at the upgrade: the client sees 1006 naming the HTTP status", async () => {
  await start({ caps: { maxConnectionsPerAddress: 1 } });
  const first = await connect("10.0.0.1");
  const second = new RawClient(mem.open({ address: "10.0.0.1" }));
  await clock.settle();
  expect(second.opened).toBe(false);
  expect(second.closed?.code).toBe(1006);
  expect(second.closed?.reason).toMatch(/^HTTP 429: more than 1 connections from your address/);
  expect(mem.core.stats().refused).toBe(1);
  const other = await connect("10.0.0.2");
  expect(other.closed).toBeUndefined();
  expect(first.closed).toBeUndefined();
});

test("closing tells members ServerShutdown and finishes on the clock; later sockets are refused with 503", async () => {
  await start();
  const a = await connect();
  a.join(randomId());
  const idle = await connect();
  idle.link.blackhole(); // never finishes its closing handshake: cut off after the close grace (1 s)
  await clock.settle();
  const started = clock.now();
  await mem.close();
  expect(a.closed?.code).toBe(CloseCode.ServerShutdown);
  expect(a.of(MessageType.Error).at(-1)).toMatchObject({ code: CloseCode.ServerShutdown });
  expect(clock.now() - started).toBe(1000);
  expect(idle.closed).toBeUndefined();
  expect(idle.link.serverState).toBe("closed");
  expect(mem.core.stats().connections).toBe(0);
  const late = new RawClient(mem.open());
  await clock.settle();
  expect(late.closed?.reason).toMatch(/^HTTP 503: the reflector is shutting down/);
});

test("before its Join, a socket sending more than one Join's worth of bytes is cut off (counted as they arrive)", async () => {
  await start();
  const budget = maxJoinFrameBytes(DEFAULT_LIMITS) + 1024;
  const flooder = await connect();
  flooder.link.client.send(new Uint8Array(budget)); // one frame over the budget (with its framing)
  await clock.settle();
  expect(flooder.closed?.code).toBe(1006);
  expect(flooder.frames).toHaveLength(0);
  expect(mem.core.stats().connections).toBe(0);
  // Just under it is a (bad) frame like any other: decoded and refused with an Error frame.
  const honest = await connect();
  honest.link.client.send(new Uint8Array(budget - 100));
  await clock.settle();
  expect(honest.frames.map((f) => f.type)).toEqual([MessageType.Error]);
});

test("a SendBatch is relayed as consecutive entries in its order, and counts once against the frame rate", async () => {
  await start({ limits: { ...DEFAULT_LIMITS, maxMessagesPerSecond: 1, messageBurst: 2 } });
  const sessionId = randomId();
  const a = await connect();
  a.join(sessionId);
  await clock.settle();
  a.send({ type: MessageType.SendBatch, payloads: Array.from({ length: 500 }, (_, i) => Uint8Array.of(i & 0xff, i >> 8)) });
  await clock.settle();
  const relays = a.of(MessageType.Relay);
  expect(relays).toHaveLength(500);
  expect(relays.map((r) => r.payload[0]! | (r.payload[1]! << 8))).toEqual(Array.from({ length: 500 }, (_, i) => i));
  expect(relays.map((r) => r.seq)).toEqual(Array.from({ length: 500 }, (_, i) => relays[0]!.seq + i));
  expect(a.closed).toBeUndefined();
});
