import { CloseCode, MessageType, PROTOCOL_VERSION, encodeClientMessage, encodeSend, type ErrorMessage } from "@lockstep/protocol";
import { Harness, bytes, randomId, sessionPersistentId, testAuth, testCheck, type TestClient } from "./helpers";

const h = new Harness();
afterEach(() => h.teardown());

/** Waits for the Error frame and the close, and checks both carry `code`. */
async function expectRejected(client: TestClient, code: number): Promise<ErrorMessage> {
  const error = await client.nextOf(MessageType.Error);
  const closed = await client.closed;
  expect(error.code).toBe(code);
  expect(error.message.length).toBeGreaterThan(0);
  expect(closed.code).toBe(code);
  return error;
}

/** A bystander session that must keep working after each bad client. */
async function bystander(): Promise<{ client: TestClient; check: () => Promise<void> }> {
  const client = await h.connect();
  await client.join();
  let n = 0;
  return {
    client,
    check: async () => {
      client.send({ type: MessageType.Send, payload: Uint8Array.of(n++) });
      await client.nextOf(MessageType.Relay);
    },
  };
}

const join = (over: Partial<{ sessionId: string; viewId: string; tps: number }> = {}) => {
  const sessionId = over.sessionId ?? randomId();
  return encodeClientMessage({
    type: MessageType.Join,
    sessionId,
    persistentId: sessionPersistentId(sessionId),
    viewId: over.viewId ?? randomId(),
    tps: over.tps ?? 20,
    auth: testAuth(),
    viewData: new Uint8Array(0),
  });
};

const cases: [name: string, code: number, frames: (Uint8Array | string)[]][] = [
  ["a text frame", CloseCode.ProtocolError, ["hello"]],
  ["a truncated frame", CloseCode.ProtocolError, [Uint8Array.of(PROTOCOL_VERSION)]],
  ["an unknown frame type", CloseCode.ProtocolError, [Uint8Array.of(PROTOCOL_VERSION, 0x3e)]],
  ["trailing bytes after a Leave", CloseCode.ProtocolError, [Uint8Array.of(PROTOCOL_VERSION, MessageType.Leave, 0)]],
  ["a wrong version", CloseCode.VersionMismatch, [Uint8Array.of(PROTOCOL_VERSION + 1, MessageType.Leave)]],
  ["Send before Join", CloseCode.NotJoined, [encodeSend(bytes(3))]],
  ["Ping before Join", CloseCode.NotJoined, [encodeClientMessage({ type: MessageType.Ping, id: 1 })]],
  ["a Join with a malformed viewId", CloseCode.BadJoin, [join({ viewId: "not an id!" })]],
  ["a Join with tps 0", CloseCode.BadJoin, [join({ tps: 0 })]],
  ["a second Join", CloseCode.BadJoin, [join(), join()]],
];

test.each(cases)("%s gets an Error frame and close code %d; other sessions keep working", async (_name, code, frames) => {
  await h.start();
  const other = await bystander();
  const bad = await h.connect();
  for (const frame of frames) bad.sendRaw(frame);
  await expectRejected(bad, code);
  await other.check();
  expect(other.client.isClosed).toBe(false);
});

test("a second Join leaves the first membership with exactly one ViewExit", async () => {
  await h.start();
  const [a, b] = [await h.connect(), await h.connect()];
  const sessionId = randomId();
  await a.join({ sessionId });
  const { viewId } = await b.join({ sessionId });
  b.sendRaw(join({ sessionId: randomId() }));
  await expectRejected(b, CloseCode.BadJoin);
  const exit = await a.nextOf(MessageType.ViewExit);
  expect(exit.viewId).toBe(viewId);
  a.send({ type: MessageType.Send, payload: bytes(1) });
  await a.nextOf(MessageType.Relay);
  expect(a.frames.filter((f) => f.type === MessageType.ViewExit)).toHaveLength(1);
});

test("a Join with a viewId live in the session replaces the old connection: its exit, then the new join", async () => {
  await h.start();
  const [a, old, fresh] = [await h.connect(), await h.connect(), await h.connect()];
  const sessionId = randomId();
  await a.join({ sessionId });
  const { viewId } = await old.join({ sessionId });
  // The same client rejoining before its old socket was noticed dead (network drop, sleeping tab).
  await expect(fresh.join({ sessionId, viewId })).resolves.toMatchObject({ viewId });
  await expectRejected(old, CloseCode.DuplicateView);
  const exit = await a.nextOf(MessageType.ViewExit, (e) => e.viewId === viewId);
  const rejoin = await a.nextOf(MessageType.ViewJoin, (e) => e.viewId === viewId && e.seq > exit.seq);
  expect(rejoin.seq).toBe(exit.seq + 1);
  // Exactly one exit for the replaced connection, even after its socket closes.
  fresh.send({ type: MessageType.Send, payload: bytes(1) });
  await a.nextOf(MessageType.Relay);
  expect(a.frames.filter((f) => f.type === MessageType.ViewExit)).toHaveLength(1);
});

test("the same viewId may join a different session", async () => {
  await h.start();
  const [a, b] = [await h.connect(), await h.connect()];
  const viewId = randomId();
  await a.join({ viewId });
  await expect(b.join({ viewId })).resolves.toMatchObject({ viewId });
});

test("an oversized payload is refused with TooLarge and never relayed", async () => {
  await h.start({ limits: { maxPayloadBytes: 1024 } });
  const [a, b] = [await h.connect(), await h.connect()];
  const sessionId = randomId();
  await a.join({ sessionId });
  await b.join({ sessionId });
  a.send({ type: MessageType.Send, payload: bytes(1025) });
  await expectRejected(a, CloseCode.TooLarge);
  const exit = await b.nextOf(MessageType.ViewExit);
  expect(exit.seq).toBe(3);
  expect(b.frames.some((f) => f.type === MessageType.Relay)).toBe(false);
});

test("a frame over maxFrameBytes gets TooLarge; one past what even a snapshot may be, ws closes with 1009", async () => {
  // ws buffers frames up to max(2 × maxFrameBytes, maxSnapshotBytes + 4096, maxPersistBytes + 4096) so uploads fit.
  await h.start({ limits: { maxFrameBytes: 4096, maxSnapshotBytes: 2048, maxPersistBytes: 1024 } });
  const other = await bystander();
  const a = await h.connect();
  await a.join();
  a.sendRaw(new Uint8Array(5000));
  await expectRejected(a, CloseCode.TooLarge);

  const b = await h.connect();
  await b.join();
  b.sendRaw(new Uint8Array(8193));
  expect((await b.closed).code).toBe(1009);
  await other.check();
});

test("a client over the rate limit is closed with RateLimited; others are unaffected", async () => {
  await h.start({ limits: { maxMessagesPerSecond: 1, messageBurst: 5 } });
  const [a, b] = [await h.connect(), await h.connect()];
  const sessionId = randomId();
  await a.join({ sessionId });
  await b.join({ sessionId });
  for (let i = 0; i < 10; i++) a.send({ type: MessageType.Send, payload: Uint8Array.of(i) });
  await expectRejected(a, CloseCode.RateLimited);
  await b.nextOf(MessageType.ViewExit);
  const relayed = b.frames.filter((f) => f.type === MessageType.Relay);
  // Every frame counts, the Join too: four Sends fit the burst of five. The clock may refill a
  // token or so during the burst; never all ten get through.
  expect(relayed.length).toBeGreaterThanOrEqual(4);
  expect(relayed.length).toBeLessThan(10);
  b.send({ type: MessageType.Send, payload: bytes(3, 9) });
  await b.nextOf(MessageType.Relay, (r) => r.payload.length === 3 && r.payload[0] === 9);
});

test("the rate limit follows the injected clock", async () => {
  let now = 0;
  // A burst of three: one token for the Join, two for Sends.
  await h.start({ clock: () => now, limits: { maxMessagesPerSecond: 2, messageBurst: 3 } });
  const a = await h.connect();
  await a.join();
  const sendAndWait = async (i: number) => {
    a.send({ type: MessageType.Send, payload: Uint8Array.of(i) });
    await a.nextOf(MessageType.Relay, (r) => r.payload[0] === i);
  };
  await sendAndWait(1);
  await sendAndWait(2);
  now += 1000; // refills two tokens
  await sendAndWait(3);
  await sendAndWait(4);
  a.send({ type: MessageType.Send, payload: Uint8Array.of(5) });
  await expectRejected(a, CloseCode.RateLimited);
});
