import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { WsPeerSocket } from "../src/ws-socket";

// The reflector writes frames up to 64 KiB straight to the TCP socket, framed once per frame for
// every member; a real ws client must read exactly what a ws send would have given it, in order,
// mixed with what ws itself sends (pings, frames over 64 KiB, the close).

let server: Server;
let wss: WebSocketServer;
let url: string;

beforeAll(async () => {
  server = createServer();
  wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on("upgrade", (req, socket, head) => {
    const waiting = pending.shift();
    wss.handleUpgrade(req, socket, head, (ws) => waiting?.(new WsPeerSocket(ws, req.socket)));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  wss.close();
  await new Promise((resolve) => server.close(resolve));
});

const pending: Array<(peer: WsPeerSocket) => void> = [];

/** A client and the server's PeerSocket for it. */
async function pair(): Promise<{ client: WebSocket; peer: WsPeerSocket; received: Buffer[] }> {
  const peer = new Promise<WsPeerSocket>((resolve) => pending.push(resolve));
  const client = new WebSocket(url, { perMessageDeflate: false });
  const received: Buffer[] = [];
  client.binaryType = "nodebuffer";
  client.on("message", (data: Buffer) => received.push(data));
  await new Promise((resolve, reject) => {
    client.once("open", resolve);
    client.once("error", reject);
  });
  return { client, peer: await peer, received };
}

const frameOf = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

test("frames of every length class arrive byte for byte and in order, shared framing or not", async () => {
  const { client, peer, received } = await pair();
  // Around each boundary of the WebSocket length field (7 bits, 16 bits, 64 bits) and of the 64 KiB direct path.
  const sizes = [0, 1, 2, 125, 126, 127, 65535, 65536, 65537, 200_000, 3, 70_000, 10];
  const frames = sizes.map((n, i) => frameOf(n, i));
  peer.cork?.();
  for (const frame of frames) peer.send(frame);
  peer.uncork?.();
  await waitFor(() => received.length === frames.length);
  expect(received.map((b) => b.length)).toEqual(sizes);
  for (let i = 0; i < frames.length; i++) expect(Buffer.compare(received[i]!, Buffer.from(frames[i]!))).toBe(0);
  client.close();
});

test("one frame sent to several members reaches each intact (one framed copy serves all), and the next frame is not confused with it", async () => {
  const members = await Promise.all([pair(), pair(), pair()]);
  const a = frameOf(300, 1);
  const b = frameOf(300, 2); // same length, other bytes
  for (const m of members) m.peer.send(a);
  for (const m of members) m.peer.send(b);
  for (const m of members) m.peer.send(a); // the same object again, after another
  await waitFor(() => members.every((m) => m.received.length === 3));
  const expected = [a, b, a].map((f) => Buffer.from(f));
  for (const m of members) expect(m.received.map((x, i) => x.equals(expected[i]!))).toEqual([true, true, true]);
  for (const m of members) m.client.close();
});

test("a batch sent with sendAll to several members arrives at each byte for byte and in order, mixed with single sends; a frame of 64 KiB or more in it goes through ws", async () => {
  const members = await Promise.all([pair(), pair(), pair()]);
  const batch = [0, 1, 125, 126, 65535, 3, 300].map((n, i) => frameOf(n, i + 10));
  const big = [frameOf(10, 1), frameOf(65536, 2), frameOf(70_000, 3), frameOf(5, 4)];
  const single = frameOf(40, 99);
  for (const m of members) m.peer.sendAll(batch); // one framed copy of the batch serves all three
  for (const m of members) m.peer.send(single);
  for (const m of members) m.peer.sendAll(big);
  for (const m of members) m.peer.sendAll(batch); // the same batch object again, after others
  const expected = [...batch, single, ...big, ...batch].map((f) => Buffer.from(f));
  await waitFor(() => members.every((m) => m.received.length === expected.length));
  for (const m of members) expect(m.received.map((x, i) => x.equals(expected[i]!))).toEqual(expected.map(() => true));
  for (const m of members) m.client.close();
});

test("the bytes written directly count in bufferedAmount while the client does not read", async () => {
  const { client, peer } = await pair();
  // Stop reading on the client side: the server's writes pile up in its TCP buffer.
  (client as unknown as { _socket: { pause(): void } })._socket.pause();
  const frame = frameOf(60_000, 9);
  for (let i = 0; i < 200; i++) peer.send(frame.slice());
  expect(peer.bufferedAmount).toBeGreaterThan(1_000_000);
  client.terminate();
});

test("a ping and a close written by ws keep their order with directly written frames", async () => {
  const { client, peer, received } = await pair();
  const pinged = new Promise((resolve) => client.once("ping", () => resolve(received.length)));
  const closed = new Promise<number>((resolve) => client.once("close", (code) => resolve(code)));
  peer.send(frameOf(10, 1));
  peer.ping();
  peer.send(frameOf(20, 2));
  peer.close(4001, "bye");
  peer.send(frameOf(30, 3)); // after the close started: not sent
  expect(await pinged).toBe(1);
  expect(await closed).toBe(4001);
  expect(received.map((b) => b.length)).toEqual([10, 20]);
});

async function waitFor(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((resolve) => setTimeout(resolve, 5));
}
