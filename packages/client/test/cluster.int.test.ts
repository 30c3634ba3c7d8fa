/**
 * The real-socket tier of following a cluster (PROTOCOL.md §17): real reflectors on loopback
 * (port 0) sharing one store, `ws` sockets, and three small stand-ins for the nodes a client
 * meets in a cluster — a node that redirects every Join, a drained node that closes its clients
 * with SessionMoved, and a paused node that accepts TCP connections and never answers. Waits are
 * for events (a status, an entry, a connection), never fixed sleeps; where the client's own
 * timers matter (the open timeout, a redirect loop's backoff) they run on a ManualClock. Exact
 * timings are checked in cluster.link.test.ts.
 */
import { createServer, type Server, type Socket } from "node:net";
import { CloseCode, MessageType, encodeServerMessage, type Timers } from "@lockstep/protocol";
import { createMemoryStore, silentLogger, startReflector, type BlobStore, type Reflector } from "@lockstep/reflector";
import { ManualClock, expectSame, hashesWhen, keepOpen, until } from "@lockstep/test-support";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { Session, View, type JoinOptions, type LockstepSession, type SocketFactory } from "../src/index";
import { defaultSocketFactory } from "../src/session/connection";
import { MAX_HOPS_AT_ONCE, OPEN_TIMEOUT_MS } from "../src/session/reflectors";
import { backOnline } from "./int-helpers";
import { retryBounds } from "./net-harness";
import { Room } from "./room-model";

class RoomView extends View {}
type R = LockstepSession<Room, RoomView>;
const base = { appId: "test.lockstep.cluster-int", password: "pw", model: Room, view: RoomView, tps: 30, autoSleep: false };

/** A socket factory that records the URL of every socket the client asks for. */
function recording(): { factory: SocketFactory; urls: string[] } {
  const urls: string[] = [];
  return {
    urls,
    factory: (url) => {
      urls.push(url);
      return defaultSocketFactory(url);
    },
  };
}

async function join(name: string, reflector: string, extra: Partial<JoinOptions<Room, RoomView>> = {}): Promise<R> {
  return (await Session.join({ ...base, name, reflector, ...extra } as JoinOptions<Room, RoomView>)) as R;
}

/** `from` writes `line`; every session applies it as the same entry with the same state. */
async function write(from: R, line: string, all: readonly R[]): Promise<void> {
  const points = hashesWhen(all, (s) => s.model.lines.includes(line));
  from.view.publish("room", "write", line);
  expectSame(await points);
}

function toBytes(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
}

/** A node that answers every Join with a Redirect to `target()` and closes with `CloseCode.Redirect`. */
async function startRedirector(target: () => string): Promise<{ url: string; joins: number; close(): Promise<void> }> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const state = { joins: 0 };
  server.on("connection", (socket) => {
    socket.once("message", () => {
      state.joins++;
      socket.send(encodeServerMessage({ type: MessageType.Redirect, url: target() }));
      socket.close(CloseCode.Redirect, "Redirect");
    });
  });
  return {
    url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/`,
    get joins() {
      return state.joins;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of server.clients) c.terminate();
        server.close(() => resolve());
      }),
  };
}

/**
 * A node in front of a reflector, as a cluster node forwarding to the session's owner: frames pass
 * both ways. `drain(stop)` stops the reflector behind it, then closes the clients with
 * SessionMoved (the reflector's own shutdown frame and close are not passed on).
 */
async function startDrainableNode(target: string): Promise<{ url: string; drain(stop: () => Promise<void>): Promise<void>; close(): Promise<void> }> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  let draining = false;
  server.on("connection", (client) => {
    const upstream = new WebSocket(target);
    const early: Buffer[] = [];
    client.on("message", (data) => (upstream.readyState === WebSocket.OPEN ? upstream.send(toBytes(data)) : early.push(toBytes(data))));
    upstream.on("open", () => early.splice(0).forEach((b) => upstream.send(b)));
    upstream.on("message", (data) => {
      const bytes = toBytes(data);
      if (draining && bytes[1] === MessageType.Error) return;
      if (client.readyState === WebSocket.OPEN) client.send(bytes);
    });
    upstream.on("close", (code, reason) => {
      if (!draining && client.readyState === WebSocket.OPEN) client.close(code >= 4000 || code === 1000 ? code : 1000, reason.toString());
    });
    client.on("close", () => upstream.readyState === WebSocket.OPEN && upstream.close(1000));
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  return {
    url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/`,
    async drain(stop) {
      draining = true;
      await stop();
      for (const c of server.clients) c.close(CloseCode.SessionMoved, "SessionMoved");
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of server.clients) c.terminate();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nobody listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Accepts TCP connections and never answers (a paused node); `connected(n)` resolves once n arrived. */
async function startPausedNode(): Promise<{ url: string; sockets: Socket[]; connected(n: number): Promise<void>; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => {});
    socket.resume(); // reads (and drops) the upgrade request, so the client's hang-up is seen
    for (const w of waiters.filter((w) => sockets.length >= w.n)) w.resolve();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/`,
    sockets,
    connected: (n) => (sockets.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A ManualClock that reports when a timer is set for between `minMs` and `maxMs` (a backoff delay). */
class WatchedClock extends ManualClock {
  #waiters: { minMs: number; maxMs: number; resolve: () => void }[] = [];
  override setTimeout(fn: () => void, ms: number): ReturnType<Timers["setTimeout"]> {
    for (const w of this.#waiters.filter((w) => ms >= w.minMs && ms <= w.maxMs)) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve();
    }
    return super.setTimeout(fn, ms);
  }
  delaySet([minMs, maxMs]: readonly [number, number]): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ minMs, maxMs, resolve }));
  }
}

let store: BlobStore;
let reflector: Reflector;
const cleanups: (() => Promise<void>)[] = [];
beforeEach(async () => {
  store = keepOpen(createMemoryStore());
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, storage: store });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await reflector.close();
});

test("a first join through a redirecting node is live on the owner: the model works, and replicas agree with a client that joined the owner directly", async () => {
  const router = await startRedirector(() => reflector.url);
  cleanups.push(() => router.close());
  const name = `redirect-${Date.now()}`;
  const direct = await join(name, reflector.url);
  const sockets = recording();
  const routed = await join(name, router.url, { socket: sockets.factory });
  expect(sockets.urls).toEqual([router.url, reflector.url]);
  expect(router.joins).toBe(1);
  await write(routed, "through the router", [direct, routed]);
  await write(direct, "back", [direct, routed]);
  expect(routed.model.lines).toEqual(["through the router", "back"]);
  expect(direct.model.present).toEqual([direct.viewId, routed.viewId]);
  await Promise.all([direct.leave(), routed.leave()]);
});

test("a drained node closes with SessionMoved: the client rejoins through the next URL, resumes on a node with the same store, and its queued input arrives exactly once", async () => {
  const second = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, storage: store });
  cleanups.push(() => second.close());
  const node = await startDrainableNode(reflector.url);
  cleanups.push(() => node.close());
  const name = `moved-${Date.now()}`;
  const sockets = recording();
  const x = await join(name, `${node.url}, ${second.url}`, { socket: sockets.factory });
  // The other client is on the first reflector itself: it loses it as a node shutting down.
  const y = await join(name, [reflector.url, second.url].join(" "));
  await write(x, "before", [x, y]);
  const view = x.view;
  const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
  try {
    let queued = false;
    x.on("status", (status) => {
      if (status !== "reconnecting" || queued) return;
      queued = true;
      x.view.publish("room", "write", "queued");
    });
    const back = Promise.all([backOnline(x), backOnline(y)]);
    x.view.publish("room", "write", "in flight");
    await node.drain(() => reflector.close());
    await back;
    // Moving is no trouble for x; y lost its reflector (ServerShutdown) and says so.
    expect(warn.mock.calls.filter(([line]) => String(line).includes("lost the connection")).length).toBe(1);
  } finally {
    warn.mockRestore();
  }
  expect(sockets.urls).toEqual([node.url, second.url]);
  expect(x.view).toBe(view); // resumed, not rebuilt
  await Promise.all([x, y].map((s) => until(s, () => s.model.lines.includes("queued"))));
  expect(x.model.lines).toEqual(["before", "in flight", "queued"]);
  expect(y.model.exits).toEqual([]);
  await write(y, "after", [x, y]);
  expect(y.model.lines).toEqual(["before", "in flight", "queued", "after"]);
  await Promise.all([x.leave(), y.leave()]);
});

test("a list whose first URL is a closed port joins on the second", async () => {
  const dead = `ws://127.0.0.1:${await closedPort()}/`;
  const sockets = recording();
  const s = await join(`dead-${Date.now()}`, `${dead},${reflector.url}`, { socket: sockets.factory });
  expect(sockets.urls).toEqual([dead, reflector.url]);
  expect(s.status).toBe("connected");
  await s.leave();
});

test(`a node that accepts TCP and never answers is given up after the open timeout (${OPEN_TIMEOUT_MS} ms), and the join moves on`, async () => {
  const paused = await startPausedNode();
  cleanups.push(() => paused.close());
  const clock = new ManualClock();
  const sockets = recording();
  const joining = join(`paused-${Date.now()}`, `${paused.url} ${reflector.url}`, { socket: sockets.factory, timers: clock, step: "manual" });
  await paused.connected(1);
  await clock.advance(OPEN_TIMEOUT_MS - 1);
  expect(sockets.urls).toEqual([paused.url]);
  await clock.advance(1);
  const s = await joining;
  expect(sockets.urls).toEqual([paused.url, reflector.url]);
  expect(s.status).toBe("connected");
  // The half-open connection was closed by the client, not left to the operating system.
  await new Promise<void>((resolve) => (paused.sockets[0]!.destroyed ? resolve() : paused.sockets[0]!.once("close", () => resolve())));
  const leaving = s.leave();
  await clock.runUntil(() => s.status === "ended", { maxMs: 5000 });
  await leaving;
});

test(`a redirect loop: ${MAX_HOPS_AT_ONCE} redirects are followed at once, the next one only after a backoff delay`, async () => {
  let target = "";
  const router = await startRedirector(() => target);
  cleanups.push(() => router.close());
  target = router.url;
  const clock = new WatchedClock();
  const sockets = recording();
  const delayed = clock.delaySet(retryBounds(0));
  const joining = join(`loop-${Date.now()}`, router.url, { socket: sockets.factory, timers: clock, step: "manual" });
  await delayed;
  // The first attempt and five redirects, none waiting; the sixth redirect waits for the clock.
  expect(sockets.urls).toEqual(Array(1 + MAX_HOPS_AT_ONCE).fill(router.url));
  expect(router.joins).toBe(1 + MAX_HOPS_AT_ONCE);
  // The node names the owner now; once the delays pass, the client follows it there.
  // Still in the loop, so that redirect too is followed after the next (longer) delay.
  target = reflector.url;
  const next = clock.delaySet(retryBounds(1));
  await clock.advance(retryBounds(0)[1]);
  await next;
  expect(sockets.urls).toHaveLength(2 + MAX_HOPS_AT_ONCE);
  await clock.advance(retryBounds(1)[1]);
  const s = await joining;
  expect(sockets.urls.slice(1 + MAX_HOPS_AT_ONCE)).toEqual([router.url, reflector.url]);
  expect(s.status).toBe("connected");
  const leaving = s.leave();
  await clock.runUntil(() => s.status === "ended", { maxMs: 5000 });
  await leaving;
});
