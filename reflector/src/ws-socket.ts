import type { Duplex } from "node:stream";
import { WebSocket, type RawData } from "ws";
import type { PeerSocket, PeerSocketListener } from "./peer-socket";

/**
 * A `ws` WebSocket as a {@link PeerSocket}. `tcp` is the socket under it: writes of one turn are
 * corked into one, reading stops for a flooder, and raw bytes are counted before ws assembles frames.
 */
export class WsPeerSocket implements PeerSocket {
  readonly #ws: WebSocket;
  readonly #tcp: Duplex;

  constructor(ws: WebSocket, tcp: Duplex) {
    this.#ws = ws;
    this.#tcp = tcp;
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  send(frame: Uint8Array): void {
    this.#ws.send(frame);
  }

  close(code: number, reason: string): void {
    this.#ws.close(code, reason);
  }

  terminate(): void {
    this.#ws.terminate();
  }

  ping(): void {
    this.#ws.ping();
  }

  listen(listener: PeerSocketListener): void {
    const ws = this.#ws;
    ws.on("message", (data: RawData, isBinary: boolean) => listener.message(toBytes(data), isBinary));
    ws.on("pong", () => listener.pong());
    ws.on("error", (error: Error) => listener.error(error));
    ws.on("close", (code: number) => listener.close(code));
  }

  cork(): void {
    this.#tcp.cork();
  }

  uncork(): void {
    this.#tcp.uncork();
  }

  pause(): void {
    this.#tcp.pause();
  }

  watchIncoming(onBytes: (bytes: number) => void): () => void {
    const tcp = this.#tcp;
    const onData = (chunk: Buffer): void => onBytes(chunk.length);
    tcp.on("data", onData);
    return () => {
      tcp.off("data", onData);
    };
  }
}

/** The frame as a plain Uint8Array view (no copy), so slices of it behave like Uint8Array, not Buffer. */
function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) {
    const joined = Buffer.concat(data);
    return new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength);
  }
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
