// Cluster nodes in one process, on the in-memory stand-in for PostgreSQL: who serves a session,
// where the others send its clients, what a fenced node does, and how a draining node hands over.
import { createHash } from "node:crypto";
import { CloseCode, MessageType, type RelayEntry } from "@lockstep/protocol";
import { silentLogger, startReflector, type Reflector } from "../../src/index";
import { createMemoryStore, type BlobStore } from "../../src/storage/index";
import { TestClient, isEntry, randomId, sessionPersistentId, testAuth } from "../helpers";
import { MemoryCluster, type MemoryClusterStore } from "./memory-cluster";

interface Node {
  readonly reflector: Reflector;
  readonly store: MemoryClusterStore;
}

let cluster: MemoryCluster;
let blobs: BlobStore;
const nodes: Node[] = [];
const clients: TestClient[] = [];

beforeEach(() => {
  cluster = new MemoryCluster();
  blobs = createMemoryStore();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(nodes.splice(0).map((n) => n.reflector.close()));
});

async function node(proxy = false): Promise<Node> {
  const store = cluster.join("ws://unset/");
  // Each node closes the blob store it is given; the shared one must outlive them all.
  const shared: BlobStore = { ...blobs, location: blobs.location, get: (k) => blobs.get(k), put: (k, v) => blobs.put(k, v), delete: (k) => blobs.delete(k), list: (p) => blobs.list(p), close: async () => undefined };
  const reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, storage: shared, cluster: { store, proxy }, trustProxy: true });
  store.setUrl(reflector.url);
  const n = { reflector, store };
  nodes.push(n);
  return n;
}

async function client(url: string): Promise<TestClient> {
  const c = await TestClient.connect(url);
  clients.push(c);
  return c;
}

/** The seqs and payload bytes of every Relay a client got, as text. */
function relays(c: TestClient): string[] {
  return c.frames.filter((f): f is RelayEntry => f.type === MessageType.Relay).map((f) => `${f.seq}:${Buffer.from(f.payload).toString("hex")}`);
}

test("a node that does not own the session redirects its joiner to the owner", async () => {
  const [a, b] = [await node(), await node()];
  const sessionId = randomId();
  const first = await client(a.reflector.url);
  await first.join({ sessionId });
  const second = await client(b.reflector.url);
  // Routing comes before the session's own checks (the owner makes them): a wrong password is redirected too, and learns only the owner's URL.
  second.send({ type: MessageType.Join, sessionId, persistentId: sessionPersistentId(sessionId), viewId: randomId(), tps: 20, auth: testAuth("wrong"), viewData: new Uint8Array(0) });
  const redirect = await second.nextOf(MessageType.Redirect);
  expect(redirect.url).toBe(a.reflector.url);
  expect((await second.closed).code).toBe(CloseCode.Redirect);
  expect(cluster.heads.get(sessionId)?.owner).toBe(a.store.node.nodeId);
});

test("a fenced owner sends its clients away with 4018 and the new owner continues the same log", async () => {
  const [a, b] = [await node(), await node()];
  const sessionId = randomId();
  const onA = await client(a.reflector.url);
  const { viewId } = await onA.join({ sessionId });
  onA.send({ type: MessageType.Send, payload: new Uint8Array([1]) });
  await onA.nextOf(MessageType.Relay);
  // A's lease runs out unnoticed (a pause); B takes the session over on its next join.
  a.store.freeze();
  const onB = await client(b.reflector.url);
  const { sync } = await onB.join({ sessionId });
  expect(sync.seq).toBe(cluster.heads.get(sessionId)!.entries.at(-1)!.seq - 1); // B's own ViewJoin follows the Sync
  expect(cluster.heads.get(sessionId)!.epoch).toBe(2);
  // A stamps the next send, its append is fenced: nothing relayed, its client told the session moved.
  onA.send({ type: MessageType.Send, payload: new Uint8Array([2]) });
  expect((await onA.closed).code).toBe(CloseCode.SessionMoved);
  expect(relays(onA)).toEqual([expect.stringMatching(/^\d+:01$/)]);
  // The client comes back through B and resumes from the last entry it saw: nothing it saw was lost.
  const lastSeen = Math.max(...onA.frames.filter(isEntry).map((e) => e.seq));
  const back = await client(b.reflector.url);
  back.send({ type: MessageType.Join, sessionId, persistentId: sessionPersistentId(sessionId), viewId, tps: 20, auth: testAuth(), viewData: new Uint8Array(0), resumeSeq: lastSeen });
  const resumed = await back.nextOf(MessageType.Sync);
  expect(resumed.resumed).toBe(true);
  const stored = cluster.heads.get(sessionId)!;
  expect(stored.entries.map((e) => e.seq)).toEqual(stored.entries.map((_, i) => i + 1));
  expect([...stored.epochs].sort((x, y) => x - y)).toEqual(stored.epochs);
});

test("a node that loses its lease closes every client with 4018 at once", async () => {
  const a = await node();
  const c = await client(a.reflector.url);
  await c.join({ sessionId: randomId() });
  a.store.loseLease("renewals failed");
  expect((await c.closed).code).toBe(CloseCode.SessionMoved);
});

test("a draining node hands its sessions to a live peer: clients are redirected there and lose nothing", async () => {
  const [a, b] = [await node(), await node()];
  const sessionId = randomId();
  const c = await client(a.reflector.url);
  await c.join({ sessionId });
  c.send({ type: MessageType.Send, payload: new Uint8Array([7]) });
  await c.nextOf(MessageType.Relay);
  const closing = a.reflector.close();
  const redirect = await c.nextOf(MessageType.Redirect);
  expect(redirect.url).toBe(b.reflector.url);
  expect((await c.closed).code).toBe(CloseCode.Redirect);
  await closing;
  nodes.splice(nodes.indexOf(a), 1);
  // Released before the redirect: B takes it without waiting for A's lease.
  expect(cluster.heads.get(sessionId)!.owner).toBeUndefined();
  const again = await client(b.reflector.url);
  const { sync } = await again.join({ sessionId });
  expect(sync.entries.some((e) => e.type === MessageType.Relay && e.payload[0] === 7)).toBe(true);
  expect(cluster.heads.get(sessionId)!.owner).toBe(b.store.node.nodeId);
});

test("in proxy mode a node forwards the joiner to the owner instead: one stream, the client never leaves", async () => {
  const [a, b] = [await node(true), await node(true)];
  const sessionId = randomId();
  const direct = await client(a.reflector.url);
  await direct.join({ sessionId });
  const proxied = await client(b.reflector.url);
  const { sync } = await proxied.join({ sessionId });
  expect(sync.sessionId).toBe(sessionId);
  proxied.send({ type: MessageType.Send, payload: new Uint8Array([9, 9]) });
  await direct.nextOf(MessageType.Relay, (r) => r.payload[0] === 9);
  await proxied.nextOf(MessageType.Relay, (r) => r.payload[0] === 9);
  expect(relays(proxied)).toEqual(relays(direct));
  expect(proxied.frames.some((f) => f.type === MessageType.Redirect)).toBe(false);
  expect(cluster.heads.get(sessionId)!.owner).toBe(a.store.node.nodeId);
  // Leaving through the proxy is a Leave at the owner: the view exits there.
  proxied.send({ type: MessageType.Leave });
  await direct.nextOf(MessageType.ViewExit);
});

test("a node whose lease ran out unnoticed (a pause) sends nothing more: its next tick moves the session instead", async () => {
  const a = await node();
  const c = await client(a.reflector.url);
  await c.join({ sessionId: randomId() });
  await c.nextOf(MessageType.Tick);
  const before = c.frames.length;
  a.store.freeze();
  expect((await c.closed).code).toBe(CloseCode.SessionMoved);
  // The Error frame of the close, and nothing else: no tick, no entry.
  expect(c.frames.slice(before).map((f) => f.type)).toEqual([MessageType.Error]);
});

test("the Data API works on every node of a cluster: tokens are checked against the cluster's session, blobs are shared", async () => {
  const [a, b] = [await node(), await node()];
  const sessionId = randomId();
  const c = await client(a.reflector.url);
  await c.join({ sessionId });
  // testAuth's token (helpers.ts): the verifier the session was created with is SHA-256 of it.
  const token = createHash("sha256").update("token:pw").digest();
  const authorization = `Bearer ${sessionId}.${Buffer.from(token).toString("base64url")}`;
  const blobId = "blob0000000000000001";
  const http = (n: Node): string => n.reflector.url.replace(/^ws/, "http").replace(/\/$/, "");
  const put = await fetch(`${http(b)}/data/${sessionId}/${blobId}`, { method: "PUT", body: new Uint8Array([1, 2, 3]), headers: { authorization } });
  expect(put.status).toBe(201);
  const got = await fetch(`${http(a)}/data/${sessionId}/${blobId}`, { headers: { authorization } });
  expect(new Uint8Array(await got.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
  const wrong = await fetch(`${http(a)}/data/${sessionId}/${blobId}`, { headers: { authorization: `Bearer ${sessionId}.${Buffer.alloc(32).toString("base64url")}` } });
  expect(wrong.status).toBe(401);
});
