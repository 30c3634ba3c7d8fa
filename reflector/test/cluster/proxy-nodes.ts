/*
 * Small loopback servers for the proxy tests: a node that accepts clients and forwards each one
 * through a ProxyLink (what a non-owner node in `--proxy` mode does), a redirector, and owners that
 * misbehave on purpose.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { CloseCode, MessageType, encodeServerMessage } from "@lockstep/protocol";
import { ProxyLink, type ProxyOptions, type ProxyTarget } from "../../src/cluster/proxy";
import { WsPeerSocket } from "../../src/ws-socket";

/** A client socket as the proxy node holds it, recording what the link did with it. */
export class RecordingTarget implements ProxyTarget {
  readonly closes: { code: number; reason: string }[] = [];
  /** Largest `bufferedAmount` right after a send. */
  maxBuffered = 0;
  pauses = 0;
  resumes = 0;
  readonly #peer: WsPeerSocket;
  readonly #ws: WebSocket;
  readonly #waiters: { check: () => boolean; resolve: () => void }[] = [];

  constructor(ws: WebSocket, tcp: Duplex, pausable: boolean) {
    this.#peer = new WsPeerSocket(ws, tcp);
    this.#ws = ws;
    if (!pausable) {
      this.pause = undefined;
      this.resume = undefined;
    }
  }

  get peer(): WsPeerSocket {
    return this.#peer;
  }

  get isOpen(): boolean {
    return this.#peer.isOpen;
  }

  get bufferedAmount(): number {
    return this.#peer.bufferedAmount;
  }

  send(frame: Uint8Array): void {
    this.#peer.send(frame);
    this.maxBuffered = Math.max(this.maxBuffered, this.#peer.bufferedAmount);
  }

  close(code: number, reason: string): void {
    this.closes.push({ code, reason });
    this.#peer.close(code, reason);
    this.#wake();
  }

  terminate(): void {
    this.#peer.terminate();
  }

  cork(): void {
    this.#peer.cork();
  }

  uncork(): void {
    this.#peer.uncork();
  }

  // ws's own pause: pausing the TCP socket under it would be undone by ws's receiver once it drained.
  pause: (() => void) | undefined = () => {
    this.pauses++;
    this.#ws.pause();
    this.#wake();
  };

  resume: (() => void) | undefined = () => {
    this.resumes++;
    this.#ws.resume();
    this.#wake();
  };

  /** Resolves once `check()` holds (checked now and after every pause, resume and close). */
  until(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ check, resolve }));
  }

  #wake(): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i]!;
      if (!waiter.check()) continue;
      this.#waiters.splice(i, 1);
      waiter.resolve();
    }
  }
}

/** One accepted client: its socket and its link (once the Join came). */
export interface ProxiedClient {
  readonly target: RecordingTarget;
  link: ProxyLink | undefined;
}

/** A node forwarding every client to `ownerUrl`. */
export interface ProxyNode {
  readonly url: string;
  readonly clients: ProxiedClient[];
  /** Resolves with the `index`-th client once its link exists. */
  linked(index: number): Promise<ProxiedClient & { link: ProxyLink }>;
  close(): Promise<void>;
}

/** Options of {@link startProxyNode}: the link's, plus whether client sockets can pause and resume. */
export type ProxyNodeOptions = Partial<Omit<ProxyOptions, "joinFrame" | "client">> & { readonly ownerUrl: string; readonly pausable?: boolean };

export async function startProxyNode(options: ProxyNodeOptions): Promise<ProxyNode> {
  const { pausable = true, ...link } = options;
  const clients: ProxiedClient[] = [];
  const linkedWaiters: (() => void)[] = [];
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  const sockets = new Set<WebSocket>();
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on("close", () => sockets.delete(ws));
      const client: ProxiedClient = { target: new RecordingTarget(ws, req.socket, pausable), link: undefined };
      clients.push(client);
      client.target.peer.listen({
        message: (data, isBinary) => {
          if (client.link !== undefined) {
            client.link.fromClient(data, isBinary);
            return;
          }
          client.link = new ProxyLink({ clientAddress: req.socket.remoteAddress ?? "?", maxBufferedBytes: 1024 * 1024, ...link, joinFrame: data, client: client.target });
          for (const wake of linkedWaiters.splice(0)) wake();
        },
        close: (code) => client.link?.clientClosed(code),
        pong() {},
        error() {},
      });
    });
  });
  const port = await listen(server);
  return {
    url: `ws://127.0.0.1:${port}/`,
    clients,
    async linked(index) {
      while (clients[index]?.link === undefined) await new Promise<void>((resolve) => linkedWaiters.push(resolve));
      return clients[index] as ProxiedClient & { link: ProxyLink };
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      await Promise.all(clients.map((c) => c.link?.done));
      await closeServer(server);
    },
  };
}

/** A ws server on loopback; `onJoin` gets each socket's first frame. */
export interface FakeNode {
  readonly url: string;
  /** Upgrade requests received, in order. */
  readonly requests: IncomingMessage[];
  readonly sockets: { ws: WebSocket; tcp: Duplex; frames: Uint8Array[] }[];
  close(): Promise<void>;
}

/** `hold`: upgrades wait for it (an owner slow to accept). */
export async function startFakeNode(onJoin: (ws: WebSocket, join: Uint8Array, tcp: Duplex) => void, hold?: Promise<void>): Promise<FakeNode> {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  const requests: IncomingMessage[] = [];
  const sockets: FakeNode["sockets"] = [];
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    requests.push(req);
    void (hold ?? Promise.resolve()).then(() => wss.handleUpgrade(req, socket, head, (ws) => {
      const entry = { ws, tcp: req.socket, frames: [] as Uint8Array[] };
      sockets.push(entry);
      ws.on("message", (data: Buffer) => {
        entry.frames.push(new Uint8Array(data));
        if (entry.frames.length === 1) onJoin(ws, entry.frames[0]!, req.socket);
      });
      ws.on("error", () => {});
    }));
  });
  const port = await listen(server);
  return {
    url: `ws://127.0.0.1:${port}/`,
    requests,
    sockets,
    async close() {
      for (const s of sockets) s.ws.terminate();
      await closeServer(server);
    },
  };
}

/** A node that answers every Join with a Redirect to `target()` and close 4017, as a non-owner does. */
export function startRedirector(target: () => string): Promise<FakeNode> {
  return startFakeNode((ws) => {
    ws.send(encodeServerMessage({ type: MessageType.Redirect, url: target() }));
    ws.close(CloseCode.Redirect, "Redirect");
  });
}

/** A TCP server that accepts connections and never answers (a stopped process still completes TCP handshakes). */
export async function startSilentServer(): Promise<{ url: string; accepted: () => number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createTcpServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  const port = await listen(server);
  return {
    url: `ws://127.0.0.1:${port}/`,
    accepted: () => accepted,
    async close() {
      for (const s of sockets) s.destroy();
      await closeServer(server);
    },
  };
}

/** A loopback port nothing listens on (listened on once, then closed). */
export async function closedPort(): Promise<number> {
  const server = createTcpServer();
  const port = await listen(server);
  await closeServer(server);
  return port;
}

async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server | ReturnType<typeof createTcpServer>): Promise<void> {
  if ("closeAllConnections" in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
