// A cluster node can be paused (SIGSTOP, a frozen VM) between a send and the flush of the writes
// its connection holds back for the rest of that turn. If its lease ran out meanwhile, the held
// frames must not leave: another node owns the session by then.
import { realTimers } from "@lockstep/protocol";
import { Connection } from "../../src/connection";
import { Instruments } from "../../src/instruments";
import type { PeerSocket } from "../../src/peer-socket";

class CorkingSocket implements PeerSocket {
  isOpen = true;
  bufferedAmount = 0;
  corked = 0;
  flushed: Uint8Array[] = [];
  held: Uint8Array[] = [];
  terminated = false;
  send(frame: Uint8Array): void {
    (this.corked > 0 ? this.held : this.flushed).push(frame);
  }
  cork(): void {
    this.corked++;
  }
  uncork(): void {
    this.corked--;
    this.flushed.push(...this.held.splice(0));
  }
  close(): void {
    this.isOpen = false;
  }
  terminate(): void {
    this.terminated = true;
    this.isOpen = false;
    this.held = [];
  }
  ping(): void {}
  listen(): void {}
}

function connection(socket: PeerSocket, mayServe: () => boolean): Connection {
  return new Connection(socket, {
    id: 1,
    address: "127.0.0.1",
    remote: "127.0.0.1:1",
    clock: () => performance.now(),
    timers: realTimers,
    maxMessagesPerSecond: 1000,
    messageBurst: 1000,
    maxBytesPerSecond: 1e9,
    byteBurst: 1e9,
    maxPingsPerSecond: 10,
    pingBurst: 10,
    maxBufferedBytes: 1 << 20,
    onSlowReader: () => undefined,
    instruments: new Instruments(),
    mayServe,
  });
}

const nextTick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

test("held-back frames are flushed while the lease is fresh", async () => {
  const socket = new CorkingSocket();
  connection(socket, () => true).send(Uint8Array.of(1));
  await nextTick();
  expect(socket.flushed).toEqual([Uint8Array.of(1)]);
});

test("a lease that ran out before the flush: nothing held leaves, the socket is cut", async () => {
  const socket = new CorkingSocket();
  let fresh = true;
  connection(socket, () => fresh).send(Uint8Array.of(1));
  fresh = false; // the pause, between the send and the end of the turn
  await nextTick();
  expect(socket.flushed).toEqual([]);
  expect(socket.terminated).toBe(true);
});

test("a close under way still goes out with a stale lease: it tells the client to move", async () => {
  const socket = new CorkingSocket();
  let fresh = true;
  const conn = connection(socket, () => fresh);
  conn.send(Uint8Array.of(1)); // corks the socket for the rest of the turn
  fresh = false;
  conn.fail(4018, "moved"); // its Error frame joins the held writes
  await nextTick();
  expect(socket.terminated).toBe(false);
  expect(socket.held).toEqual([]);
  expect(socket.flushed).toHaveLength(2); // the held frame and the Error frame
});
