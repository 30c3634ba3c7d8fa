import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { ReadBudget, ReadTurns, type ReadSink } from "../src/read-turns";
import { WsPeerSocket } from "../src/ws-socket";

// Read budgets per turn of the event loop (read-turns.ts): a connection with a backlog is read a
// budget's worth per turn, messages past the turn's total wait in order for the next turn, and
// nothing is dropped, reordered or delivered after its connection's close.

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const message = (n: number, tag: number): Uint8Array => new Uint8Array(n).fill(tag);

/** A connection of `turns`: what reached its sink, and how its socket was paused and resumed. */
function connection(turns: ReadTurns): { budget: ReadBudget; events: string[]; paused: () => boolean; pauses: () => number } {
  const events: string[] = [];
  let paused = false;
  let pauses = 0;
  const sink: ReadSink = {
    message: (data) => void events.push(`m${data[0]}`),
    close: (code) => void events.push(`close ${code}`),
  };
  const budget = new ReadBudget(
    turns,
    sink,
    () => {
      expect(paused).toBe(false); // paused once at a time
      paused = true;
      pauses++;
    },
    () => {
      paused = false;
    },
  );
  return { budget, events, paused: () => paused, pauses: () => pauses };
}

describe("read budgets", () => {
  test("a connection past its budget in a turn is paused, and read again at the next turn; every message is delivered at once", async () => {
    const turns = new ReadTurns(1000, 1e9);
    const c = connection(turns);
    c.budget.message(message(600, 1), true);
    expect(c.paused()).toBe(false);
    c.budget.message(message(600, 2), true); // passes 1000: paused for the rest of the turn
    c.budget.message(message(600, 3), true); // the rest of the read it was in is still delivered
    expect({ events: c.events, paused: c.paused() }).toEqual({ events: ["m1", "m2", "m3"], paused: true });
    await turn();
    expect(c.paused()).toBe(false);
    c.budget.message(message(600, 4), true); // a new turn: a new budget
    expect({ events: c.events.length, paused: c.paused(), pauses: c.pauses() }).toEqual({ events: 4, paused: false, pauses: 1 });
  });

  test("past the turn's total, messages of every connection wait in order, with their sockets paused, and go out next turn within its budget", async () => {
    const turns = new ReadTurns(1e9, 1000);
    const a = connection(turns);
    const b = connection(turns);
    a.budget.message(message(800, 1), true);
    b.budget.message(message(300, 2), true); // reaches the total: delivered, later ones wait
    b.budget.message(message(300, 3), true);
    a.budget.message(message(300, 4), true);
    a.budget.message(message(300, 5), true); // behind a's queue
    b.budget.message(message(700, 6), true);
    expect({ a: a.events, b: b.events, paused: [a.paused(), b.paused()] }).toEqual({ a: ["m1"], b: ["m2"], paused: [true, true] });
    await turn(); // b's queue formed first: 3 and 6 (1000), then a's 4 would pass the total
    expect({ a: a.events, b: b.events, paused: [a.paused(), b.paused()] }).toEqual({ a: ["m1"], b: ["m2", "m3", "m6"], paused: [true, false] });
    await turn();
    expect({ a: a.events, paused: a.paused() }).toEqual({ a: ["m1", "m4", "m5"], paused: false });
  });

  test("a close behind queued messages is reported after them; one with nothing queued at once", async () => {
    const turns = new ReadTurns(1e9, 100);
    const a = connection(turns);
    const b = connection(turns);
    a.budget.message(message(100, 1), true);
    a.budget.message(message(50, 2), true);
    a.budget.close(1000);
    b.budget.close(1006);
    expect({ a: a.events, b: b.events }).toEqual({ a: ["m1"], b: ["close 1006"] });
    await turn();
    expect(a.events).toEqual(["m1", "m2", "close 1000"]);
    expect(a.paused()).toBe(true); // a closed socket is not read again
  });

  test("no turn is scheduled while nothing is read", async () => {
    const turns = new ReadTurns(10, 10);
    const first = turns.turn;
    await turn();
    expect(turns.turn).toBe(first + 1);
    await turn();
    await turn();
    expect(turns.turn).toBe(first + 2); // idle turns did not count
  });
});

describe("read budgets on a ws socket", () => {
  let server: Server;
  let wss: WebSocketServer;
  let url: string;
  const pending: Array<(peer: WsPeerSocket) => void> = [];
  const turns = new ReadTurns(16 * 1024, 48 * 1024);

  beforeAll(async () => {
    server = createServer();
    wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    server.on("upgrade", (req, socket, head) => {
      const waiting = pending.shift();
      wss.handleUpgrade(req, socket, head, (ws) => waiting?.(new WsPeerSocket(ws, req.socket, turns)));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    wss.close();
    await new Promise((resolve) => server.close(resolve));
  });

  /** A client and the server's socket for it, listened to: what reached the server, with the turn it arrived in. */
  async function pair(): Promise<{ client: WebSocket; peer: WsPeerSocket; got: Array<{ data: Buffer; turn: number }>; closed: Promise<number> }> {
    const peer = new Promise<WsPeerSocket>((resolve) => pending.push(resolve));
    const client = new WebSocket(url, { perMessageDeflate: false });
    await new Promise((resolve, reject) => {
      client.once("open", resolve);
      client.once("error", reject);
    });
    const socket = await peer;
    const got: Array<{ data: Buffer; turn: number }> = [];
    const closed = new Promise<number>((resolve) => {
      socket.listen({
        message: (data) => void got.push({ data: Buffer.from(data), turn: turns.turn }),
        pong: () => undefined,
        error: () => undefined,
        close: (code) => resolve(code),
      });
    });
    return { client, peer: socket, got, closed };
  }

  const numbered = (i: number, n: number): Buffer => {
    const b = Buffer.alloc(n, i & 0xff);
    b.writeUInt32BE(i, 0);
    return b;
  };

  test("a burst far past both budgets arrives whole and in order over several turns, and the close comes after its last message", async () => {
    const { client, got, closed } = await pair();
    const count = 300;
    for (let i = 0; i < count; i++) client.send(numbered(i, 4096));
    client.close(1000);
    expect(await closed).toBe(1000);
    expect(got.map((m) => m.data.readUInt32BE(0))).toEqual(Array.from({ length: count }, (_, i) => i));
    for (const [i, m] of got.entries()) expect(m.data.equals(numbered(i, 4096))).toBe(true);
    const perTurn = new Map<number, number>();
    for (const m of got) perTurn.set(m.turn, (perTurn.get(m.turn) ?? 0) + m.data.length);
    expect(perTurn.size).toBeGreaterThan(5); // 1.2 MB at most 48 KiB (plus a read) per turn
  });

  test("a socket its owner paused stays paused when the budget's turn ends, and reads again once the owner resumes it", async () => {
    const { client, peer, got } = await pair();
    for (let i = 0; i < 20; i++) client.send(numbered(i, 4096)); // past 16 KiB: the budget pauses it too
    const until = async (done: () => boolean): Promise<void> => {
      for (const end = Date.now() + 3000; !done(); await turn()) if (Date.now() > end) throw new Error(`still ${got.length} of 20 messages`);
    };
    await until(() => got.length > 0);
    peer.pause(); // the owner stops reading (a flood, a proxy's backpressure)
    const seen = got.length;
    for (let i = 0; i < 10; i++) await turn();
    const whilePaused = got.length;
    expect(whilePaused).toBeLessThan(20); // ws may still hand over what it had read
    for (let i = 0; i < 10; i++) await turn();
    expect(got.length).toBe(whilePaused);
    expect(seen).toBeGreaterThan(0);
    peer.resume();
    await until(() => got.length === 20);
    expect(got.map((m) => m.data.readUInt32BE(0))).toEqual(Array.from({ length: 20 }, (_, i) => i));
    client.close();
  });
});
