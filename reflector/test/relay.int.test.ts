import { MessageType, type RelayEntry, type StreamEntry } from "@lockstep/protocol";
import { Harness, bytes, randomId, testAuth, testCheck, type TestClient } from "./helpers";

const h = new Harness();
afterEach(() => h.teardown());

function relays(client: TestClient, count: number): Promise<RelayEntry[]> {
  return (async () => {
    const out: RelayEntry[] = [];
    while (out.length < count) out.push(await client.nextOf(MessageType.Relay));
    return out;
  })();
}

test("a joiner gets an empty Sync, then its own ViewJoin with its viewData", async () => {
  await h.start();
  const a = await h.connect();
  const sessionId = randomId();
  const viewData = bytes(10, 7);
  const { sync, viewJoin, viewId } = await a.join({ sessionId, viewData });
  expect(sync).toMatchObject({ sessionId, viewId, seq: 0, entries: [] });
  expect(sync.snapshot.length + sync.persisted.length).toBe(0);
  expect(Buffer.from(sync.auth).toString()).toBe(Buffer.from(testCheck()).toString());
  expect(viewJoin).toMatchObject({ seq: 1, viewId });
  expect(viewJoin.time).toBeGreaterThanOrEqual(sync.time);
  expect(Array.from(viewJoin.viewData)).toEqual(Array.from(viewData));
  // The own ViewJoin is the first live frame after Sync.
  expect(a.frames.slice(0, 2).map((f) => f.type)).toEqual([MessageType.Sync, MessageType.ViewJoin]);
});

test("a second joiner is synced with the first's entries and both see its ViewJoin", async () => {
  await h.start();
  const [a, b] = [await h.connect(), await h.connect()];
  const sessionId = randomId();
  const first = await a.join({ sessionId, viewData: bytes(3) });
  a.send({ type: MessageType.Send, payload: bytes(5, 1) });
  await a.nextOf(MessageType.Relay);

  const second = await b.join({ sessionId });
  expect(second.sync.seq).toBe(2);
  expect(second.sync.entries.map((e) => [e.type, e.seq])).toEqual([
    [MessageType.ViewJoin, 1],
    [MessageType.Relay, 2],
  ]);
  expect(second.sync.entries[0]).toMatchObject({ viewId: first.viewId });
  expect(Array.from((second.sync.entries[1] as RelayEntry).payload)).toEqual(Array.from(bytes(5, 1)));
  expect(second.viewJoin.seq).toBe(3);

  const seenByA = await a.nextOf(MessageType.ViewJoin, (e) => e.viewId === second.viewId);
  expect(seenByA).toEqual(second.viewJoin);
  expect(h.reflector.stats()).toMatchObject({ sessions: 1, connections: 2, relayed: 1 });
});

test("Send is relayed to every client, the sender included, with consecutive seqs and non-decreasing times", async () => {
  await h.start();
  const [a, b] = [await h.connect(), await h.connect()];
  const sessionId = randomId();
  await a.join({ sessionId });
  await b.join({ sessionId });
  await a.nextOf(MessageType.ViewJoin, (e) => e.seq === 2);

  for (let i = 0; i < 20; i++) a.send({ type: MessageType.Send, payload: bytes(i + 1, i) });
  const [atA, atB] = await Promise.all([relays(a, 20), relays(b, 20)]);
  expect(atA).toEqual(atB);
  atA.forEach((r, i) => {
    expect(r.seq).toBe(3 + i);
    expect(Array.from(r.payload)).toEqual(Array.from(bytes(i + 1, i)));
    if (i > 0) expect(r.time).toBeGreaterThanOrEqual(atA[i - 1]!.time);
  });
});

test("three clients sending interleaved bursts all receive the identical sequence", async () => {
  await h.start();
  const clients = [await h.connect(), await h.connect(), await h.connect()];
  const sessionId = randomId();
  for (const c of clients) await c.join({ sessionId });
  const perClient = 50;
  for (let round = 0; round < 5; round++) {
    clients.forEach((c, k) => {
      for (let i = 0; i < perClient / 5; i++) c.send({ type: MessageType.Send, payload: Uint8Array.of(k, round, i) });
    });
  }
  const total = perClient * clients.length;
  const received = await Promise.all(clients.map((c) => relays(c, total)));
  const asList = (rs: RelayEntry[]) => rs.map((r) => [r.seq, r.time, ...r.payload]);
  expect(asList(received[1]!)).toEqual(asList(received[0]!));
  expect(asList(received[2]!)).toEqual(asList(received[0]!));
  // Gap-free after the three view-joins, and each sender's own order is kept.
  expect(received[0]!.map((r) => r.seq)).toEqual(Array.from({ length: total }, (_, i) => 4 + i));
  for (let k = 0; k < clients.length; k++) {
    const mine = received[0]!.filter((r) => r.payload[0] === k).map((r) => r.payload[1]! * 100 + r.payload[2]!);
    expect(mine).toEqual([...mine].sort((x, y) => x - y));
  }
});

test("Ping gets a Pong with the same id and the session time, to the sender only", async () => {
  await h.start();
  const [a, b] = [await h.connect(), await h.connect()];
  const sessionId = randomId();
  await a.join({ sessionId });
  const { viewJoin } = await b.join({ sessionId });
  a.send({ type: MessageType.Ping, id: 42 });
  const pong = await a.nextOf(MessageType.Pong);
  expect(pong.id).toBe(42);
  expect(pong.time).toBeGreaterThanOrEqual(viewJoin.time);
  // b sees the relay that follows but never a's Pong.
  a.send({ type: MessageType.Send, payload: bytes(1) });
  await b.nextOf(MessageType.Relay);
  expect(b.frames.some((f) => f.type === MessageType.Pong)).toBe(false);
});

test("sessions are independent: seqs start at 1 in each", async () => {
  await h.start();
  const [a, b] = [await h.connect(), await h.connect()];
  await a.join();
  const other = await b.join();
  expect(other.sync.seq).toBe(0);
  expect(other.viewJoin.seq).toBe(1);
  a.send({ type: MessageType.Send, payload: bytes(2) });
  await a.nextOf(MessageType.Relay);
  b.send({ type: MessageType.Send, payload: bytes(2) });
  expect((await b.nextOf(MessageType.Relay)).seq).toBe(2);
  expect(h.reflector.stats().sessions).toBe(2);
});

test("the log a late joiner gets equals what earlier clients saw live", async () => {
  await h.start();
  const [a, b, c] = [await h.connect(), await h.connect(), await h.connect()];
  const sessionId = randomId();
  await a.join({ sessionId });
  await b.join({ sessionId });
  for (let i = 0; i < 10; i++) (i % 2 ? a : b).send({ type: MessageType.Send, payload: bytes(4, i) });
  await b.close();
  await a.nextOf(MessageType.ViewExit);
  const live: StreamEntry[] = a.frames.filter((f): f is StreamEntry => f.type >= MessageType.Relay && f.type <= MessageType.ViewExit);
  const { sync } = await c.join({ sessionId });
  expect(sync.entries).toEqual(live);
});

test("a burst far past the read budgets is relayed whole and in order to every member, even when its sender closes right after it", async () => {
  // Small budgets, so the 300 Sends span many turns of the loop and most of them wait in a queue.
  await h.start({ caps: { readBytesPerTurn: 4096, readBytesPerTurnTotal: 8192 }, limits: { maxMessagesPerSecond: 100_000, messageBurst: 100_000 } });
  const [a, b] = [await h.connect(), await h.connect()];
  const sessionId = randomId();
  await a.join({ sessionId });
  await b.join({ sessionId });
  await a.nextOf(MessageType.ViewJoin, (e) => e.seq === 2);
  const count = 300;
  for (let i = 0; i < count; i++) a.send({ type: MessageType.Send, payload: bytes(1000, i & 0xff) });
  a.ws.close(1000); // its close reaches the reflector behind the queued Sends
  const got = await relays(b, count);
  expect(got.map((e) => e.payload[0])).toEqual(Array.from({ length: count }, (_, i) => i & 0xff));
  expect(got.map((e) => e.seq)).toEqual(Array.from({ length: count }, (_, i) => 3 + i));
  const exit = await b.nextOf(MessageType.ViewExit);
  expect(exit.seq).toBe(3 + count);
});
