/**
 * Resource bounds against a real reflector on a loopback port: what a client sends before it is
 * admitted, connection caps, slow readers, the log cap, log memory, uploads only from the elected
 * uploader in chunks, and the rate of new sessions.
 */
import { createHash } from "node:crypto";
import { connect } from "node:net";
import { WebSocket } from "ws";
import { CloseCode, MessageType, PersistOutcome, encodeClientMessage, maxJoinFrameBytes, DEFAULT_LIMITS, type RelayEntry } from "@lockstep/protocol";
import { createMemoryStore } from "@lockstep/reflector";
import { Harness, bytes, randomId, sessionPersistentId, testAuth, type TestClient } from "./helpers";

/** Sends a Join without waiting for its Sync (for joins that are refused). */
function sendJoin(client: TestClient, sessionId = randomId(), persistentId = sessionPersistentId(sessionId)): void {
  client.send({ type: MessageType.Join, sessionId, persistentId, viewId: randomId(), tps: 20, auth: testAuth(), viewData: new Uint8Array(0) });
}

const h = new Harness();
afterEach(() => h.teardown());

async function expectClosedWith(client: TestClient, code: number): Promise<void> {
  const error = await client.nextOf(MessageType.Error);
  expect(error.code).toBe(code);
  expect((await client.closed).code).toBe(code);
}

/** Opens a raw WebSocket and resolves with its close code (or the HTTP status if the upgrade was refused). */
function rawSocket(url: string): { ws: WebSocket; outcome: Promise<{ code?: number; status?: number }>; opened: Promise<boolean> } {
  const ws = new WebSocket(url);
  let resolveOpened: (open: boolean) => void = () => {};
  const opened = new Promise<boolean>((r) => (resolveOpened = r));
  const outcome = new Promise<{ code?: number; status?: number }>((resolve) => {
    ws.on("open", () => resolveOpened(true));
    ws.on("unexpected-response", (req, res) => {
      resolveOpened(false);
      resolve({ status: res.statusCode });
      // With a listener here, ws leaves the refused request to us: end it, or its socket lingers.
      res.resume();
      req.destroy();
    });
    ws.on("error", () => undefined);
    ws.on("close", (code) => resolve({ code }));
  });
  return { ws, outcome, opened };
}

test("a socket that sends no Join within the join timeout is closed with Timeout", async () => {
  await h.start({ caps: { joinTimeoutMs: 100 } });
  const idle = await h.connect();
  expect((await idle.closed).code).toBe(CloseCode.Timeout);
  // A socket that joins in time stays.
  const member = await h.connect();
  await member.join();
  member.send({ type: MessageType.Ping, id: 1 });
  await member.nextOf(MessageType.Pong);
});

test("before it is admitted a socket may send no more than one Join: a huge unfinished message is cut off", async () => {
  await h.start();
  const budget = maxJoinFrameBytes(DEFAULT_LIMITS) + 1024;
  // A raw TCP client: a WebSocket upgrade, then a binary frame that declares 40 MiB and never ends.
  const socket = connect(h.reflector.port, "127.0.0.1");
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => undefined);
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${Buffer.alloc(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise<void>((resolve) => socket.once("data", () => resolve()));
  const length = 40 * 1024 * 1024;
  const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff, 1, 2, 3, 4]);
  socket.write(header);
  let sent = 0;
  const chunk = Buffer.alloc(16 * 1024, 7);
  // ws refuses the declared length at once (it is above its maxPayload); either way the socket
  // is cut off long before 40 MiB: count what got written before it closed.
  while (!socket.destroyed && sent < length) {
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once("drain", resolve).once("close", resolve));
    sent += chunk.length;
  }
  await closed;
  expect(sent).toBeLessThan(length);
  expect(h.reflector.stats().connections).toBe(0);
  expect(budget).toBeLessThan(64 * 1024);
});

test("a pre-join sender of many small frames is cut off past one Join's worth of bytes", async () => {
  await h.start();
  const client = await h.connect();
  // Pongs are answered by ws without reaching the protocol: only the byte budget stops them.
  const junk = new Uint8Array(8 * 1024);
  for (let i = 0; i < 8 && !client.isClosed; i++) client.ws.pong(junk.subarray(0, 125));
  for (let i = 0; i < 64 && client.ws.readyState === WebSocket.OPEN; i++) client.ws.ping(junk.subarray(0, 125));
  // Masked frames of a binary message the reflector never sees whole: an unfinished fragment train.
  for (let i = 0; i < 16 && client.ws.readyState === WebSocket.OPEN; i++) client.ws.send(junk, { fin: false });
  const { code } = await client.closed;
  expect(code).not.toBe(1000);
});

test("connections beyond the per-address cap are refused at the upgrade with HTTP 429; the global cap with 503", async () => {
  await h.start({ caps: { maxConnectionsPerAddress: 3, joinTimeoutMs: 60_000 } });
  const held = await Promise.all([h.connect(), h.connect(), h.connect()]);
  const refused = rawSocket(h.reflector.url);
  expect(await refused.outcome).toEqual({ status: 429 });
  // Closing one frees a place.
  await held[0]!.close();
  const again = await h.connect();
  await again.join();
  expect(h.reflector.stats().refused).toBe(1);
  await h.teardown();

  await h.start({ caps: { maxConnections: 2, joinTimeoutMs: 60_000 } });
  await Promise.all([h.connect(), h.connect()]);
  expect(await rawSocket(h.reflector.url).outcome).toEqual({ status: 503 });
});

test("a member that stops reading is closed with SlowReader; the others keep receiving everything", async () => {
  await h.start({
    caps: { maxBufferedBytes: 1024 * 1024, maxLogBytes: 1024 * 1024 * 1024, maxLogMemoryBytes: 64 * 1024 * 1024 },
    limits: { maxBytesPerSecond: 1e9, byteBurst: 1e9, maxMessagesPerSecond: 1e6, messageBurst: 1e6 },
  });
  const sessionId = randomId();
  const [sender, reader, stalled] = [await h.connect(), await h.connect(), await h.connect()];
  await sender.join({ sessionId });
  await reader.join({ sessionId });
  const { viewId: stalledView } = await stalled.join({ sessionId });
  // The stalled member's TCP socket stops reading: the kernel buffers fill, then the reflector's.
  const socket = (stalled.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  socket.pause();
  const payload = bytes(60_000, 1);
  const batches = 25; // 25 × 20 × 60 kB = 30 MB, far past kernel buffers and the 1 MiB cap
  let received = 0;
  try {
  for (let batch = 0; batch < batches; batch++) {
    // In batches the others keep up with, so only the stalled member falls behind.
    for (let i = 0; i < 20; i++) sender.send({ type: MessageType.Send, payload });
    for (let i = 0; i < 20; i++) {
      const entry = await reader.nextOf(MessageType.Relay);
      expect(entry.payload.length).toBe(payload.length);
      received++;
    }
  }
  } finally {
    socket.resume();
  }
  expect(received).toBe(batches * 20);
  // The stalled member's exit came while the others kept receiving (the cursor is past it by now).
  expect(reader.frames.filter((f) => f.type === MessageType.ViewExit).map((f) => (f as { viewId: string }).viewId)).toEqual([stalledView]);
  expect(reader.isClosed).toBe(false);
  expect(sender.isClosed).toBe(false);
  const closed = await stalled.closed;
  expect([CloseCode.SlowReader, 1006]).toContain(closed.code);
}, 60_000);

test("a session that never snapshots hits the log cap: a snapshot is asked for at half, then Sends are refused with LogFull", async () => {
  await h.start({ caps: { maxLogBytes: 200_000, maxLogMemoryBytes: 50_000 }, limits: { maxBytesPerSecond: 1e9, byteBurst: 1e9 } });
  const client = await h.connect();
  await client.join();
  const payload = bytes(10_000);
  for (let i = 0; i < 30; i++) client.send({ type: MessageType.Send, payload });
  // Half the cap asks this (non-voting) member for a snapshot; it never answers.
  await client.nextOf(MessageType.SnapshotRequest);
  await expectClosedWith(client, CloseCode.LogFull);
  const relayed = client.frames.filter((f) => f.type === MessageType.Relay).length;
  expect(relayed).toBeGreaterThanOrEqual(15);
  expect(relayed).toBeLessThan(30);
});

test("a session whose log filled recovers: the rejoining member is asked for a snapshot, and once it is stored Sends are relayed again", async () => {
  await h.start({ caps: { maxLogBytes: 200_000, maxLogMemoryBytes: 50_000 }, limits: { maxBytesPerSecond: 1e9, byteBurst: 1e9 } });
  const sessionId = randomId();
  const first = await h.connect();
  await first.join({ sessionId });
  for (let i = 0; i < 30; i++) first.send({ type: MessageType.Send, payload: bytes(10_000) });
  await expectClosedWith(first, CloseCode.LogFull);

  // Back with backoff, as the client library does: its own view-join asks it for a snapshot.
  const again = await h.connect();
  const { viewJoin } = await again.join({ sessionId });
  const request = await again.nextOf(MessageType.SnapshotRequest, (r) => r.seq > viewJoin.seq);
  const hash = bytes(32, 7);
  again.send({ type: MessageType.SnapshotVote, seq: request.seq, hash });
  await again.nextOf(MessageType.UploadRequest, (u) => u.seq === request.seq);
  const snapshot = bytes(100, 3);
  again.send({ type: MessageType.SnapshotChunk, seq: request.seq, hash, total: snapshot.length, offset: 0, data: snapshot });
  // Wait until it was stored: a joiner's Sync carries it, and the log after it only.
  for (;;) {
    const late = await h.connect();
    const { sync } = await late.join({ sessionId });
    await late.close();
    if (sync.snapshot.length === 0) continue;
    expect(Buffer.from(sync.snapshot).equals(Buffer.from(snapshot))).toBe(true);
    expect(sync.entries.every((e) => e.seq > request.seq)).toBe(true);
    break;
  }
  // The log was trimmed: Sends are relayed again, and the member stays.
  for (let i = 0; i < 5; i++) again.send({ type: MessageType.Send, payload: bytes(10_000, i) });
  for (let i = 0; i < 5; i++) expect((await again.nextOf(MessageType.Relay, (r) => r.payload.length === 10_000)).payload[0]).toBe(bytes(10_000, i)[0]);
  expect(again.isClosed).toBe(false);
});

test("a snapshot trims the log, so a session that does snapshot never hits the cap", async () => {
  await h.start({ caps: { maxLogBytes: 100_000, maxLogMemoryBytes: 50_000 }, limits: { maxBytesPerSecond: 1e9, byteBurst: 1e9 } });
  const client = await h.connect();
  await client.join();
  const hash = bytes(32, 5);
  for (let round = 0; round < 6; round++) {
    // Five 10 kB Sends reach half the cap: the request comes right after the fifth, which the snapshot then covers.
    for (let i = 0; i < 5; i++) client.send({ type: MessageType.Send, payload: bytes(10_000, i) });
    const request = await client.nextOf(MessageType.SnapshotRequest);
    client.send({ type: MessageType.SnapshotVote, seq: request.seq, hash });
    await client.nextOf(MessageType.UploadRequest, (u) => u.seq === request.seq);
    client.send({ type: MessageType.SnapshotChunk, seq: request.seq, hash, total: 100, offset: 0, data: bytes(100) });
  }
  expect(client.isClosed).toBe(false);
});

test("a joiner gets the whole log even when older entries left memory (read back from storage)", async () => {
  await h.start({ storage: createMemoryStore(), caps: { maxLogMemoryBytes: 20_000 }, limits: { maxBytesPerSecond: 1e9, byteBurst: 1e9 } });
  const sessionId = randomId();
  const first = await h.connect();
  await first.join({ sessionId });
  const sent = 40;
  for (let i = 0; i < sent; i++) first.send({ type: MessageType.Send, payload: bytes(2_000, i) });
  for (let i = 0; i < sent; i++) await first.nextOf(MessageType.Relay);
  const late = await h.connect();
  const { sync } = await late.join({ sessionId });
  const relays = sync.entries.filter((e): e is RelayEntry => e.type === MessageType.Relay);
  expect(relays.map((r) => r.payload[0])).toEqual(Array.from({ length: sent }, (_, i) => i & 0xff));
  expect(sync.entries.map((e) => e.seq)).toEqual(Array.from({ length: sync.seq }, (_, i) => i + 1));
});

test("snapshot chunks are accepted only from the elected uploader; the snapshot arrives whole for joiners", async () => {
  await h.start({ snapshots: { everyMessages: 3 } });
  const sessionId = randomId();
  const [a, b] = [await h.connect(), await h.connect()];
  await a.join({ sessionId });
  await b.join({ sessionId });
  const hash = bytes(32, 9);
  a.send({ type: MessageType.Send, payload: Uint8Array.of(1) });
  const request = await a.nextOf(MessageType.SnapshotRequest);
  await b.nextOf(MessageType.SnapshotRequest);
  a.send({ type: MessageType.SnapshotVote, seq: request.seq, hash });
  b.send({ type: MessageType.SnapshotVote, seq: request.seq, hash });
  const elected = await Promise.race([a.nextOf(MessageType.UploadRequest).then(() => a), b.nextOf(MessageType.UploadRequest).then(() => b)]);
  const other = elected === a ? b : a;
  const snapshot = bytes(3 * 1000 + 17, 3);
  // The other member's upload is dropped (it is not the elected one).
  other.send({ type: MessageType.SnapshotChunk, seq: request.seq, hash, total: snapshot.length, offset: 0, data: bytes(snapshot.length, 99) });
  for (let offset = 0; offset < snapshot.length; offset += 1000) {
    elected.send({ type: MessageType.SnapshotChunk, seq: request.seq, hash, total: snapshot.length, offset, data: snapshot.subarray(offset, offset + 1000) });
  }
  // Wait until the upload was taken: a joiner's Sync carries it.
  for (;;) {
    const late = await h.connect();
    const { sync } = await late.join({ sessionId });
    if (sync.snapshot.length > 0) {
      expect(Buffer.from(sync.snapshot).equals(Buffer.from(snapshot))).toBe(true);
      break;
    }
    await late.close();
  }
});

test("a snapshot chunk out of order closes the uploader with ProtocolError", async () => {
  await h.start({ snapshots: { everyMessages: 2 } });
  const a = await h.connect();
  await a.join();
  const hash = bytes(32, 1);
  a.send({ type: MessageType.Send, payload: Uint8Array.of(1) });
  const request = await a.nextOf(MessageType.SnapshotRequest);
  a.send({ type: MessageType.SnapshotVote, seq: request.seq, hash });
  await a.nextOf(MessageType.UploadRequest);
  a.send({ type: MessageType.SnapshotChunk, seq: request.seq, hash, total: 300, offset: 0, data: bytes(100) });
  a.send({ type: MessageType.SnapshotChunk, seq: request.seq, hash, total: 300, offset: 200, data: bytes(100) });
  await expectClosedWith(a, CloseCode.ProtocolError);
});

test("persisted data is accepted only from the first member; others are told Denied and nothing is stored", async () => {
  await h.start();
  const sessionId = randomId();
  const [first, second] = [await h.connect(), await h.connect()];
  await first.join({ sessionId });
  await second.join({ sessionId });
  const token = createHash("sha256").update("slot-token").digest();
  const chunk = (offset: number, data: Uint8Array, total: number) =>
    ({ type: MessageType.PersistChunk, slot: "slot1", token, seq: 2, hash: bytes(32, 4), size: 10, total, offset, data }) as const;
  second.send(chunk(0, bytes(50), 50));
  const denied = await second.nextOf(MessageType.PersistAck);
  expect(denied.outcome).toBe(PersistOutcome.Denied);
  const blob = bytes(150, 8);
  first.send(chunk(0, blob.subarray(0, 100), 150));
  first.send(chunk(100, blob.subarray(100), 150));
  const stored = await first.nextOf(MessageType.PersistAck);
  expect(stored.outcome).toBe(PersistOutcome.Stored);
  const persisted = await second.nextOf(MessageType.Persisted);
  expect(persisted).toMatchObject({ slot: "slot1", upTo: 2 });
});

test("new sessions per address are rate-limited (RateLimited); joining existing sessions is not", async () => {
  await h.start({ caps: { newSessionsPerAddressPerMinute: 3 } });
  const sessionIds = [randomId(), randomId(), randomId()];
  for (const sessionId of sessionIds) await (await h.connect()).join({ sessionId });
  // Existing sessions still admit joiners from the same address.
  await (await h.connect()).join({ sessionId: sessionIds[0]! });
  const fourth = await h.connect();
  fourth.sendRaw(encodeClientMessage({ type: MessageType.Join, sessionId: randomId(), persistentId: randomId(), viewId: randomId(), tps: 20, auth: new Uint8Array(0), viewData: new Uint8Array(0) }));
  // A Join without auth fails on auth first; with a valid one it is the creation rate.
  expect((await fourth.closed).code).toBe(CloseCode.AuthFailed);
  const fifth = await h.connect();
  sendJoin(fifth);
  await expectClosedWith(fifth, CloseCode.RateLimited);
  // Creating too fast is flooding: the address waits before it may connect again.
  expect(await rawSocket(h.reflector.url).outcome).toEqual({ status: 429 });
});

test("the whole reflector's rate of new sessions is capped with Overloaded", async () => {
  await h.start({ caps: { newSessionsPerMinute: 2 } });
  await (await h.connect()).join();
  await (await h.connect()).join();
  const third = await h.connect();
  sendJoin(third);
  await expectClosedWith(third, CloseCode.Overloaded);
});

test("a Ping flood is rate-limited like every frame", async () => {
  await h.start({ limits: { maxMessagesPerSecond: 10, messageBurst: 20 } });
  const flooder = await h.connect();
  await flooder.join();
  for (let i = 0; i < 100; i++) flooder.send({ type: MessageType.Ping, id: i });
  await expectClosedWith(flooder, CloseCode.RateLimited);
  expect(flooder.frames.filter((f) => f.type === MessageType.Pong).length).toBeLessThan(25);
});

test("bytes are rate-limited too: a burst of large Sends past byteBurst is closed", async () => {
  await h.start({ limits: { maxBytesPerSecond: 10_000, byteBurst: 50_000 } });
  const sender = await h.connect();
  await sender.join();
  for (let i = 0; i < 10; i++) sender.send({ type: MessageType.Send, payload: bytes(10_000) });
  await expectClosedWith(sender, CloseCode.RateLimited);
  expect(sender.frames.filter((f) => f.type === MessageType.Relay).length).toBeLessThanOrEqual(5);
});

test("a Join naming another persistentId than the session's is refused with BadJoin", async () => {
  await h.start();
  const sessionId = randomId();
  await (await h.connect()).join({ sessionId });
  const other = await h.connect();
  sendJoin(other, sessionId, randomId());
  await expectClosedWith(other, CloseCode.BadJoin);
});

test("an address closed for flooding is refused new connections for a while (HTTP 429), then admitted again", async () => {
  let now = 0;
  await h.start({ clock: () => now, limits: { maxMessagesPerSecond: 10, messageBurst: 20 } });
  const flooder = await h.connect();
  await flooder.join();
  for (let i = 0; i < 50; i++) flooder.send({ type: MessageType.Ping, id: i });
  await expectClosedWith(flooder, CloseCode.RateLimited);
  // Reconnecting at once would give it a fresh burst: it must wait.
  expect(await rawSocket(h.reflector.url).outcome).toEqual({ status: 429 });
  now += 1001;
  const back = await h.connect();
  await back.join();
});

test("a PersistLoad refused because the log is full is answered when asked again after a snapshot", async () => {
  const events: string[] = [];
  let notify: () => void = () => {};
  const note = (event: string): void => {
    events.push(event);
    notify();
  };
  const logged = (event: string): Promise<void> =>
    new Promise((resolve) => {
      notify = () => events.includes(event) && resolve();
      notify();
    });
  await h.start({
    logger: { info: note, warn: note, error: note },
    caps: { maxLogBytes: 100_000, maxLogMemoryBytes: 50_000 },
    limits: { maxBytesPerSecond: 1e9, byteBurst: 1e9 },
  });
  const client = await h.connect();
  await client.join();
  // Ten 10 kB Sends fill the log to its cap; the snapshot asked for at half is not answered yet.
  for (let i = 0; i < 10; i++) client.send({ type: MessageType.Send, payload: bytes(10_000, i) });
  const request = await client.nextOf(MessageType.SnapshotRequest);
  await client.nextOf(MessageType.Relay, (r) => r.payload[0] === 9); // the tenth, after the request
  const load = { type: MessageType.PersistLoad, slot: "keyed1", token: bytes(32, 7), requestSeq: 1 } as const;
  client.send(load);
  await logged("persist.load.refused");
  // A snapshot trims the log; the same request is answered now.
  const hash = bytes(32, 2);
  client.send({ type: MessageType.SnapshotVote, seq: request.seq, hash });
  await client.nextOf(MessageType.UploadRequest);
  client.send({ type: MessageType.SnapshotChunk, seq: request.seq, hash, total: 10, offset: 0, data: bytes(10) });
  await logged("snapshot.stored");
  client.send(load);
  const data = await client.nextOf(MessageType.PersistData);
  expect(data).toMatchObject({ slot: "keyed1", requestSeq: 1 });
});
