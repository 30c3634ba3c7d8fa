import type { Duplex } from "node:stream";
import { WebSocket, type RawData } from "ws";
import type { PeerSocket, PeerSocketListener } from "./peer-socket";
import { ReadBudget, type ReadTurns } from "./read-turns";

/** Frames up to this size are framed once and written straight to the TCP socket ({@link WsPeerSocket.send}). */
const SHARED_FRAME_MAX = 64 * 1024;

/**
 * The last frame framed for the wire, and its WebSocket framing: a broadcast sends one frame object
 * to every member in a row, so all of them share one framed copy. Server frames are not masked,
 * which makes the bytes on the wire the same for every member.
 */
let lastFrame: Uint8Array | undefined;
let lastWire: Buffer | undefined;

/** Bytes of the WebSocket frame header of a payload of `n` bytes (unmasked). */
const headerBytes = (n: number): number => (n < 126 ? 2 : n < 65536 ? 4 : 10);

/** `frame` as one unmasked, final, binary WebSocket frame (RFC 6455 §5.2): header, then the bytes. */
function wireOf(frame: Uint8Array): Buffer {
  if (frame === lastFrame) return lastWire!;
  const n = frame.length;
  const header = headerBytes(n);
  const wire = Buffer.allocUnsafe(header + n);
  wire[0] = 0x82; // FIN, opcode 2 (binary)
  if (n < 126) {
    wire[1] = n;
  } else if (n < 65536) {
    wire[1] = 126;
    wire.writeUInt16BE(n, 2);
  } else {
    wire[1] = 127;
    wire.writeUInt32BE(0, 2);
    wire.writeUInt32BE(n, 6);
  }
  wire.set(frame, header);
  lastFrame = frame;
  lastWire = wire;
  return wire;
}

/** The last batch framed by {@link wireOfAll}, and its wire bytes (shared by a broadcast, as above). */
let lastBatch: readonly Uint8Array[] | undefined;
let lastBatchWire: Buffer | undefined;

/** `frames`, each as one unmasked binary WebSocket frame, back to back in one buffer (each at most 64 KiB). */
function wireOfAll(frames: readonly Uint8Array[]): Buffer {
  if (frames === lastBatch) return lastBatchWire!;
  let size = 0;
  for (const frame of frames) size += headerBytes(frame.length) + frame.length;
  const wire = Buffer.allocUnsafe(size);
  let at = 0;
  for (const frame of frames) {
    const n = frame.length;
    wire[at] = 0x82;
    if (n < 126) {
      wire[at + 1] = n;
      at += 2;
    } else {
      wire[at + 1] = 126;
      wire.writeUInt16BE(n, at + 2);
      at += 4;
    }
    wire.set(frame, at);
    at += n;
  }
  lastBatch = frames;
  lastBatchWire = wire;
  return wire;
}

/**
 * A `ws` WebSocket as a {@link PeerSocket}. `tcp` is the socket under it: writes of one turn are
 * corked into one, reading stops for a flooder, and raw bytes are counted before ws assembles frames.
 *
 * Frames up to 64 KiB (relays, ticks, view-joins: what is broadcast) skip ws's sender: they are
 * framed once per frame, not once per member, and written to `tcp` in one write each. This keeps
 * their order with what ws itself writes (pings, closes, big frames) because the server never
 * compresses (`perMessageDeflate: false`) nor sends Blobs, so ws writes synchronously too; ws's
 * `bufferedAmount` counts `tcp`'s buffer, so the slow-reader cap sees these bytes.
 */
export class WsPeerSocket implements PeerSocket {
  readonly #ws: WebSocket;
  readonly #tcp: Duplex;
  readonly #turns: ReadTurns | undefined;
  /** The read budgets this socket's messages pass through (read-turns.ts), once listened to. */
  #budget: ReadBudget | undefined;
  /** Paused by the owner (a flooder, a proxy's backpressure): the budget's resume leaves it paused. */
  #paused = false;

  /** `turns`: the read budgets of the reflector's connections; without it, every message is delivered at once. */
  constructor(ws: WebSocket, tcp: Duplex, turns?: ReadTurns) {
    this.#ws = ws;
    this.#tcp = tcp;
    this.#turns = turns;
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  send(frame: Uint8Array): void {
    if (frame.length > SHARED_FRAME_MAX) this.#ws.send(frame);
    else if (this.#ws.readyState === WebSocket.OPEN && this.#tcp.writable) this.#tcp.write(wireOf(frame));
  }

  sendAll(frames: readonly Uint8Array[]): void {
    if (frames.some((f) => f.length >= 65536)) {
      for (const frame of frames) this.send(frame);
    } else if (this.#ws.readyState === WebSocket.OPEN && this.#tcp.writable) {
      this.#tcp.write(wireOfAll(frames));
    }
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
    ws.on("pong", () => listener.pong());
    ws.on("error", (error: Error) => listener.error(error));
    if (this.#turns === undefined) {
      ws.on("message", (data: RawData, isBinary: boolean) => listener.message(toBytes(data), isBinary));
      ws.on("close", (code: number) => listener.close(code));
      return;
    }
    // ws gives every message buffers of its own, so one the budget queues stays valid.
    const budget = new ReadBudget(
      this.#turns,
      listener,
      () => ws.pause(),
      () => {
        if (!this.#paused) ws.resume();
      },
    );
    this.#budget = budget;
    ws.on("message", (data: RawData, isBinary: boolean) => budget.message(toBytes(data), isBinary));
    ws.on("close", (code: number) => budget.close(code));
  }

  cork(): void {
    this.#tcp.cork();
  }

  uncork(): void {
    this.#tcp.uncork();
  }

  pause(): void {
    // Through ws, which otherwise resumes the TCP socket itself once its receiver drained.
    this.#paused = true;
    this.#ws.pause();
  }

  resume(): void {
    this.#paused = false;
    if (this.#budget?.holds !== true) this.#ws.resume();
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
