/**
 * `--proxy` mode's forwarding (ProxyLink) against real reflectors on loopback: a node that does not
 * own a session forwards the client to the owner and back, follows a Redirect that comes before the
 * Sync, turns an unreachable or lost owner into SessionMoved (4018), passes the owner's own close
 * codes through, and bounds what it buffers in both directions.
 */
import { connect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { CloseCode, MessageType, encodeClientMessage, encodeServerMessage, equalBytes, type ServerMessage } from "@lockstep/protocol";
import type { WebSocket } from "ws";
import { silentLogger, startReflector, type Reflector, type ReflectorOptions } from "@lockstep/reflector";
import { expectSame, hashesWhen } from "@lockstep/test-support";
import { TestClient, bytes, randomId, sessionPersistentId, testAuth } from "../helpers";
import { add, joinTally, type TallySession } from "../tally";
import { closedPort, startFakeNode, startProxyNode, startRedirector, startSilentServer, type FakeNode, type ProxyNode, type ProxyNodeOptions } from "./proxy-nodes";

jest.setTimeout(20_000);

const owners: Reflector[] = [];
const nodes: { close(): Promise<void> }[] = [];
const clients: TestClient[] = [];
const raws: Socket[] = [];
const sessions: TallySession[] = [];

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.leave().catch(() => undefined)));
  for (const raw of raws.splice(0)) raw.destroy();
  // Nodes first: they cut their sockets, so no client waits on a closing handshake a paused socket never reads.
  await Promise.all(nodes.splice(0).map((n) => n.close()));
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(owners.splice(0).map((r) => r.close()));
});

async function owner(options: ReflectorOptions = {}): Promise<Reflector> {
  const reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, viewGraceMs: 0, ...options });
  owners.push(reflector);
  return reflector;
}

async function proxyNode(options: ProxyNodeOptions): Promise<ProxyNode> {
  const node = await startProxyNode(options);
  nodes.push(node);
  return node;
}

async function fake<T extends { close(): Promise<void> }>(started: Promise<T>): Promise<T> {
  const node = await started;
  nodes.push(node);
  return node;
}

async function client(url: string): Promise<TestClient> {
  const c = await TestClient.connect(url);
  clients.push(c);
  return c;
}

/** The frames of `type` a client received so far. */
function framesOf<T extends ServerMessage["type"]>(c: TestClient, type: T): Extract<ServerMessage, { type: T }>[] {
  return c.frames.filter((f) => f.type === type) as Extract<ServerMessage, { type: T }>[];
}

function joinFrame(sessionId: string, viewId = randomId()): Uint8Array {
  return encodeClientMessage({ type: MessageType.Join, sessionId, persistentId: sessionPersistentId(sessionId), viewId, tps: 20, auth: testAuth(), viewData: new Uint8Array(0) });
}

test("a client joins through the proxy, gets its Sync, and its sends reach everyone in order", async () => {
  const reflector = await owner();
  const node = await proxyNode({ ownerUrl: reflector.url });
  const sessionId = randomId();
  const direct = await client(reflector.url);
  await direct.join({ sessionId });
  const proxied = await client(node.url);
  const { sync, viewJoin } = await proxied.join({ sessionId });
  expect(sync.sessionId).toBe(sessionId);
  expect(sync.seq).toBe(1); // the direct client's view-join

  proxied.send({ type: MessageType.Send, payload: bytes(300, 1) });
  direct.send({ type: MessageType.Send, payload: bytes(50, 2) });
  const seen = [await proxied.nextOf(MessageType.Relay), await proxied.nextOf(MessageType.Relay)];
  const direct1 = await direct.nextOf(MessageType.ViewJoin, (e) => e.viewId === viewJoin.viewId);
  const directSeen = [await direct.nextOf(MessageType.Relay), await direct.nextOf(MessageType.Relay)];
  expect(direct1.seq).toBe(viewJoin.seq);
  expect(seen).toEqual(directSeen);
  expect(seen.map((r) => r.payload.length).sort()).toEqual([300, 50].sort());
  expect(framesOf(proxied, MessageType.Redirect)).toEqual([]);
});

test("a client that leaves closes the owner's socket: the others see its view exit, the link settles", async () => {
  const reflector = await owner();
  const node = await proxyNode({ ownerUrl: reflector.url });
  const sessionId = randomId();
  const direct = await client(reflector.url);
  await direct.join({ sessionId });

  const leaver = await client(node.url);
  const { viewId: leaverView } = await leaver.join({ sessionId });
  leaver.send({ type: MessageType.Leave });
  expect((await leaver.closed).code).toBe(1000); // the owner's close after a Leave, passed through
  await direct.nextOf(MessageType.ViewExit, (e) => e.viewId === leaverView);

  const dropper = await client(node.url);
  const { viewId: dropperView } = await dropper.join({ sessionId });
  await dropper.close();
  await direct.nextOf(MessageType.ViewExit, (e) => e.viewId === dropperView);
  await Promise.all(node.clients.map((c) => c.link?.done));
});

test("the owner's own close reaches the client with its code and Error frame", async () => {
  const reflector = await owner();
  const node = await proxyNode({ ownerUrl: reflector.url });
  const proxied = await client(node.url);
  await proxied.join();
  await reflector.close();
  expect((await proxied.closed).code).toBe(CloseCode.ServerShutdown);
  expect(framesOf(proxied, MessageType.Error).map((e) => e.code)).toEqual([CloseCode.ServerShutdown]);
  await (await node.linked(0)).link.done;
});

test("a Redirect before the Sync is followed by the link; the client only sees the owner, with its address forwarded", async () => {
  const reflector = await owner();
  const redirector = await fake(startRedirector(() => reflector.url));
  const node = await proxyNode({ ownerUrl: redirector.url, clientAddress: "203.0.113.9" });
  const proxied = await client(node.url);
  const { sync } = await proxied.join();
  expect(sync.seq).toBe(0);
  expect(framesOf(proxied, MessageType.Redirect)).toEqual([]);
  expect(framesOf(proxied, MessageType.Error)).toEqual([]);
  expect(redirector.requests.map((r) => r.headers["x-forwarded-for"])).toEqual(["203.0.113.9"]);
  proxied.send({ type: MessageType.Send, payload: bytes(10) });
  expect((await proxied.nextOf(MessageType.Relay)).payload).toEqual(bytes(10));
});

test("a redirect loop ends after maxHops with SessionMoved", async () => {
  let self = "";
  const loop = await fake(startRedirector(() => self));
  self = loop.url;
  const node = await proxyNode({ ownerUrl: loop.url, maxHops: 2 });
  const proxied = await client(node.url);
  proxied.send({ type: MessageType.Join, sessionId: randomId(), persistentId: randomId(), viewId: randomId(), tps: 20, auth: testAuth(), viewData: new Uint8Array(0) });
  expect((await proxied.closed).code).toBe(CloseCode.SessionMoved);
  expect(framesOf(proxied, MessageType.Error).map((e) => e.code)).toEqual([CloseCode.SessionMoved]);
  expect(loop.requests).toHaveLength(3); // the first connection and two hops
});

test("after the Sync, a Redirect is forwarded with its close: the client follows it itself", async () => {
  const sessionId = randomId();
  const moving = await fake(
    startFakeNode((ws) => {
      ws.send(encodeServerMessage({ type: MessageType.Sync, sessionId, viewId: "v", time: 0, seq: 0, snapshot: new Uint8Array(0), persisted: new Uint8Array(0), auth: new Uint8Array(0), entries: [] }));
      ws.send(encodeServerMessage({ type: MessageType.Redirect, url: "ws://127.0.0.1:1/" }));
      ws.close(CloseCode.Redirect, "Redirect");
    }),
  );
  const node = await proxyNode({ ownerUrl: moving.url });
  const proxied = await client(node.url);
  proxied.send({ type: MessageType.Join, sessionId, persistentId: sessionPersistentId(sessionId), viewId: randomId(), tps: 20, auth: testAuth(), viewData: new Uint8Array(0) });
  await proxied.nextOf(MessageType.Sync);
  expect((await proxied.nextOf(MessageType.Redirect)).url).toBe("ws://127.0.0.1:1/");
  expect((await proxied.closed).code).toBe(CloseCode.Redirect);
  expect(moving.requests).toHaveLength(1);
});

test("an owner that refuses connections closes the client with SessionMoved", async () => {
  const node = await proxyNode({ ownerUrl: `ws://127.0.0.1:${await closedPort()}/` });
  const proxied = await client(node.url);
  proxied.sendRaw(joinFrame(randomId()));
  expect((await proxied.closed).code).toBe(CloseCode.SessionMoved);
  expect(framesOf(proxied, MessageType.Error).map((e) => e.code)).toEqual([CloseCode.SessionMoved]);
});

test("an owner that accepts TCP but never answers is given up after connectTimeoutMs", async () => {
  const silent = await fake(startSilentServer());
  const node = await proxyNode({ ownerUrl: silent.url, connectTimeoutMs: 300 });
  const proxied = await client(node.url);
  const started = performance.now();
  proxied.sendRaw(joinFrame(randomId()));
  expect((await proxied.closed).code).toBe(CloseCode.SessionMoved);
  const elapsed = performance.now() - started;
  expect(silent.accepted()).toBe(1);
  expect(elapsed).toBeGreaterThanOrEqual(250);
  expect(elapsed).toBeLessThan(3000);
});

test("frames waiting for an owner that does not open are bounded: past the cap the client is closed", async () => {
  const silent = await fake(startSilentServer());
  const node = await proxyNode({ ownerUrl: silent.url, maxBufferedBytes: 64 * 1024, pausable: false });
  const proxied = await client(node.url);
  proxied.sendRaw(joinFrame(randomId()));
  for (let i = 0; i < 5; i++) proxied.send({ type: MessageType.Send, payload: bytes(20 * 1024, i) });
  expect((await proxied.closed).code).toBe(CloseCode.RateLimited);
  expect(framesOf(proxied, MessageType.Error).map((e) => e.code)).toEqual([CloseCode.RateLimited]);
});

test("text frames are refused: the client is closed with ProtocolError and the owner sees its view exit", async () => {
  const reflector = await owner();
  const node = await proxyNode({ ownerUrl: reflector.url });
  const sessionId = randomId();
  const direct = await client(reflector.url);
  await direct.join({ sessionId });
  const proxied = await client(node.url);
  const { viewId } = await proxied.join({ sessionId });
  proxied.sendRaw("hello");
  expect((await proxied.closed).code).toBe(CloseCode.ProtocolError);
  expect(framesOf(proxied, MessageType.Error).map((e) => e.code)).toEqual([CloseCode.ProtocolError]);
  await direct.nextOf(MessageType.ViewExit, (e) => e.viewId === viewId);
});

test("a client that does not read is closed with SlowReader; what the link buffered for it stayed bounded", async () => {
  const cap = 64 * 1024;
  const payload = 200 * 1024;
  const reflector = await owner({ limits: { maxBytesPerSecond: 1 << 30, byteBurst: 1 << 30 }, caps: { maxLogBytes: 256 << 20, maxLogMemoryBytes: 128 << 20 } });
  const node = await proxyNode({ ownerUrl: reflector.url, maxBufferedBytes: cap });
  const sessionId = randomId();
  const direct = await client(reflector.url);
  await direct.join({ sessionId });
  const viewId = randomId();
  const raw = await rawWebSocket(node.url, joinFrame(sessionId, viewId));
  await direct.nextOf(MessageType.ViewJoin, (e) => e.viewId === viewId);
  raw.pause(); // reads nothing more: the kernel buffers fill, then the link's
  const { target } = await node.linked(0);
  // Rounds of relays until the link gives up on the reader (the kernel's buffers take some MB first).
  for (let round = 0; round < 40 && target.closes.length === 0; round++) {
    for (let i = 0; i < 8; i++) direct.send({ type: MessageType.Send, payload: bytes(payload, round) });
    for (let i = 0; i < 8; i++) await direct.nextOf(MessageType.Relay);
  }
  expect(target.closes.map((c) => c.code)).toEqual([CloseCode.SlowReader]);
  // The send that crossed the cap is the last one (plus its Relay framing and the Error frame).
  expect(target.maxBuffered).toBeLessThanOrEqual(cap + payload + 1024);
  // The view's exit is stamped once the link gave up: among the last relays, or after them.
  const exited = (m: ServerMessage): boolean => m.type === MessageType.ViewExit && m.viewId === viewId;
  if (!direct.frames.some(exited)) await direct.nextOf(MessageType.ViewExit, (e) => e.viewId === viewId);
});

test("a client sending faster than the owner reads is held back, then read again once the owner caught up", async () => {
  const cap = 256 * 1024;
  let joined: (ws: WebSocket) => void = () => {};
  const ownerJoined = new Promise<WebSocket>((resolve) => (joined = resolve));
  const slow = await fake(
    startFakeNode((ws) => {
      ws.pause(); // reads nothing after the Join: the kernel's buffers fill, then the link's
      joined(ws);
    }),
  );
  const node = await proxyNode({ ownerUrl: slow.url, maxBufferedBytes: cap });
  const proxied = await client(node.url);
  proxied.sendRaw(joinFrame(randomId()));
  const { target } = await node.linked(0);
  const ownerWs = await ownerJoined;
  const FRAMES = 1600;
  const SIZE = 16 * 1024;
  for (let i = 0; i < FRAMES; i++) proxied.send({ type: MessageType.Send, payload: bytes(SIZE, i) });
  await target.until(() => target.pauses > 0);
  expect(target.closes).toEqual([]);
  ownerWs.resume();
  await target.until(() => target.resumes > 0);
  await received(ownerWs, slow, FRAMES + 1);
  const upstream = slow.sockets[0]!;
  expect(target.closes).toEqual([]);
  // Every frame arrived, whole and in order.
  upstream.frames.slice(1).forEach((frame, i) => expect(equalBytes(frame.subarray(frame.length - SIZE), bytes(SIZE, i))).toBe(true));
});

test("frames sent before the owner accepted wait in order; past the cap the client is held back until they went", async () => {
  const cap = 256 * 1024;
  let accept: () => void = () => {};
  const accepted = new Promise<void>((resolve) => (accept = resolve));
  let joined: (ws: WebSocket) => void = () => {};
  const ownerJoined = new Promise<WebSocket>((resolve) => (joined = resolve));
  const late = await fake(startFakeNode((ws) => joined(ws), accepted));
  const node = await proxyNode({ ownerUrl: late.url, maxBufferedBytes: cap });
  const proxied = await client(node.url);
  const join = joinFrame(randomId());
  proxied.sendRaw(join);
  const { target } = await node.linked(0);
  const FRAMES = 64;
  const SIZE = 16 * 1024;
  for (let i = 0; i < FRAMES; i++) proxied.send({ type: MessageType.Send, payload: bytes(SIZE, i) });
  await target.until(() => target.pauses > 0);
  accept();
  await target.until(() => target.resumes > 0);
  await received(await ownerJoined, late, FRAMES + 1);
  expect(target.closes).toEqual([]);
  const frames = late.sockets[0]!.frames;
  expect(equalBytes(frames[0]!, join)).toBe(true);
  frames.slice(1).forEach((frame, i) => expect(equalBytes(frame.subarray(frame.length - SIZE), bytes(SIZE, i))).toBe(true));
});

test("two real clients, one through the proxy, end with identical replicas", async () => {
  const reflector = await owner();
  const node = await proxyNode({ ownerUrl: reflector.url });
  const name = `proxied-${randomId().slice(0, 8)}`;
  const a = await joinTally(reflector.url, name);
  sessions.push(a);
  const b = await joinTally(node.url, name);
  sessions.push(b);
  const points = hashesWhen([a, b], (s) => s.model.items.length === 40);
  for (let i = 0; i < 20; i++) {
    add(a, `a${i}`);
    add(b, `b${i}`);
  }
  expectSame(await points);
  expect(node.clients).toHaveLength(1);
});

/** Resolves once the fake node's first socket (`ws`) received `count` frames. */
function received(ws: WebSocket, node: FakeNode, count: number): Promise<void> {
  const frames = node.sockets.find((s) => s.ws === ws)!.frames;
  return new Promise((resolve) => {
    const check = (): void => void (frames.length >= count && resolve());
    ws.on("message", check);
    check();
  });
}

/** A WebSocket client written by hand on a raw TCP socket, so the test can stop it reading: upgrades, sends `first`, returns the socket. */
async function rawWebSocket(url: string, first: Uint8Array): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  raws.push(socket);
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const key = randomBytes(16).toString("base64");
  socket.write(`GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise<void>((resolve, reject) => {
    let head = "";
    const onData = (chunk: Buffer): void => {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      if (head.startsWith("HTTP/1.1 101")) resolve();
      else reject(new Error(`upgrade refused: ${head.split("\r\n")[0]}`));
    };
    socket.on("data", onData);
  });
  socket.write(maskedFrame(first));
  return socket;
}

/** One final binary client frame (masked, as RFC 6455 requires of clients); payloads under 64 KiB. */
function maskedFrame(payload: Uint8Array): Buffer {
  const long = payload.length >= 126;
  const header = long ? 8 : 6;
  const frame = Buffer.alloc(header + payload.length);
  frame[0] = 0x82;
  frame[1] = 0x80 | (long ? 126 : payload.length);
  if (long) frame.writeUInt16BE(payload.length, 2);
  const mask = randomBytes(4);
  mask.copy(frame, header - 4);
  for (let i = 0; i < payload.length; i++) frame[header + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}
