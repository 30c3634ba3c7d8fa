import { WebSocket, WebSocketServer, type RawData } from "ws";

/** A frame that passed through the proxy, as bytes. */
export interface CapturedFrame {
  readonly direction: "toReflector" | "toClient";
  readonly bytes: Uint8Array;
}

export interface ProxyOptions {
  /** Rewrites reflector → client frames (a man in the middle); return the frame to forward. */
  readonly tamper?: (frame: Uint8Array) => Uint8Array;
  /** Client → reflector frames for which this is true are sent to the reflector twice (a replay of captured traffic). */
  readonly replay?: (frame: Uint8Array) => boolean;
}

/** A WebSocket proxy on 127.0.0.1 between clients and a reflector that records every frame both ways. */
export interface Proxy {
  readonly url: string;
  readonly frames: CapturedFrame[];
  /** Drops every connection now, both ways, as a network failure would (no close handshake). */
  cut(): void;
  /**
   * Stops forwarding on the connections open now, without closing them: a connection that died
   * silently. New connections work normally.
   */
  freeze(): void;
  close(): Promise<void>;
}

function toBytes(data: RawData): Uint8Array {
  const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  return new Uint8Array(buf);
}

export async function startProxy(target: string, options: ProxyOptions = {}): Promise<Proxy> {
  const frames: CapturedFrame[] = [];
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const sockets = new Set<WebSocket>();
  const frozen = new WeakSet<WebSocket>();
  server.on("connection", (client) => {
    const upstream = new WebSocket(target);
    sockets.add(client);
    sockets.add(upstream);
    const pending: Uint8Array[] = [];
    client.on("message", (data) => {
      if (frozen.has(client)) return;
      const bytes = toBytes(data);
      frames.push({ direction: "toReflector", bytes });
      const copies = options.replay?.(bytes) ? [bytes, bytes] : [bytes];
      for (const copy of copies) {
        if (upstream.readyState === WebSocket.OPEN) upstream.send(copy);
        else pending.push(copy);
      }
    });
    upstream.on("open", () => {
      for (const bytes of pending.splice(0)) upstream.send(bytes);
    });
    upstream.on("message", (data) => {
      if (frozen.has(client)) return;
      const bytes = toBytes(data);
      frames.push({ direction: "toClient", bytes });
      const out = options.tamper ? options.tamper(bytes) : bytes;
      if (client.readyState === WebSocket.OPEN) client.send(out);
    });
    const closeBoth = (code: number, reason: Buffer) => {
      const safe = code >= 4000 || code === 1000 ? code : 1000;
      if (client.readyState === WebSocket.OPEN) client.close(safe, reason.toString());
      if (upstream.readyState === WebSocket.OPEN) upstream.close(safe, reason.toString());
    };
    client.on("close", closeBoth);
    upstream.on("close", closeBoth);
    client.on("close", () => sockets.delete(client));
    upstream.on("close", () => sockets.delete(upstream));
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}/`,
    frames,
    cut: () => {
      for (const s of sockets) s.terminate();
      sockets.clear();
    },
    freeze: () => {
      for (const s of sockets) frozen.add(s);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.terminate();
        server.close(() => resolve());
      }),
  };
}
