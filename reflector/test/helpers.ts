import { createHash, randomBytes } from "node:crypto";
import { WebSocket } from "ws";
import {
  encodeJoinAuth,
  MessageType,
  decodeServerMessage,
  encodeClientMessage,
  toBase64Url,
  type ClientMessage,
  type ServerMessage,
  type StreamEntry,
  type SyncMessage,
  type ViewJoinEntry,
} from "@lockstep/protocol";
import { silentLogger, startReflector, type Reflector, type ReflectorOptions } from "@lockstep/reflector";

/** The persistentId tests give a session when they do not choose one: derived from its id, the same for every Join. */
export function sessionPersistentId(sessionId: string): string {
  return toBase64Url(createHash("sha256").update(`test-persistent/${sessionId}`).digest());
}

/** A fresh random wire id (43 base64url characters, like a SHA-256). */
export function randomId(): string {
  return toBase64Url(randomBytes(32));
}

/** How a socket closed. */
export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

type Predicate = (msg: ServerMessage) => boolean;

const DEFAULT_WAIT_MS = 5000;

/**
 * A raw protocol client for tests. Every decoded frame is kept in `frames`; `next(predicate)`
 * returns the first frame after the previous match that satisfies it, waiting if none has arrived.
 */
export class TestClient {
  readonly ws: WebSocket;
  readonly frames: ServerMessage[] = [];
  readonly closed: Promise<CloseInfo>;
  /** Frames that did not decode (should stay empty). */
  readonly undecodable: unknown[] = [];
  #cursor = 0;
  #waiters: { predicate: Predicate; resolve: (msg: ServerMessage) => void }[] = [];
  #closeInfo: CloseInfo | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.binaryType = "nodebuffer";
    ws.on("message", (data: Buffer) => {
      try {
        this.frames.push(decodeServerMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
      } catch (error) {
        this.undecodable.push(error);
        return;
      }
      this.#wake();
    });
    ws.on("error", () => {
      // Tests assert on the close code; the error itself is expected in bad-input tests.
    });
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        this.#closeInfo = { code, reason: reason.toString() };
        resolve(this.#closeInfo);
      });
    });
  }

  /** Opens a socket to `url` and waits until it is open. */
  static async connect(url: string): Promise<TestClient> {
    const ws = new WebSocket(url);
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return client;
  }

  /** Whether the socket has closed. */
  get isClosed(): boolean {
    return this.#closeInfo !== undefined;
  }

  send(msg: ClientMessage): void {
    this.ws.send(encodeClientMessage(msg));
  }

  sendRaw(data: Uint8Array | string, binary = typeof data !== "string"): void {
    this.ws.send(data, { binary });
  }

  /** The next frame (after the previous match) satisfying `predicate`; waits up to `timeoutMs`. */
  next(predicate: Predicate = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<ServerMessage> {
    const found = this.#take(predicate);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (msg: ServerMessage) => {
          clearTimeout(timer);
          resolve(msg);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        const seen = this.frames.map((f) => f.type.toString(16)).join(",");
        reject(new Error(`no matching frame within ${timeoutMs} ms (frames so far: ${seen}; undecodable: ${this.undecodable.map(String).join("; ")}; close: ${JSON.stringify(this.#closeInfo)})`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Next frame of `type`, typed accordingly. */
  async nextOf<T extends ServerMessage["type"]>(type: T, predicate: (msg: Extract<ServerMessage, { type: T }>) => boolean = () => true): Promise<Extract<ServerMessage, { type: T }>> {
    const msg = await this.next((m) => m.type === type && predicate(m as Extract<ServerMessage, { type: T }>));
    return msg as Extract<ServerMessage, { type: T }>;
  }

  /** Next stream entry (Relay, ViewJoin or ViewExit), skipping ticks and pongs. */
  async nextEntry(): Promise<StreamEntry> {
    return (await this.next(isEntry)) as StreamEntry;
  }

  /** Sends a Join and waits for the Sync and this client's own ViewJoin. */
  async join(options: Partial<JoinOptions> = {}): Promise<{ sync: SyncMessage; viewJoin: ViewJoinEntry; viewId: string }> {
    const viewId = options.viewId ?? randomId();
    const sessionId = options.sessionId ?? randomId();
    this.send({
      type: MessageType.Join,
      sessionId,
      // Every Join of a session names the persistentId it was created with (a real client's is H(appId/name)).
      persistentId: options.persistentId ?? sessionPersistentId(sessionId),
      viewId,
      tps: options.tps ?? 20,
      auth: options.auth ?? testAuth(),
      viewData: options.viewData ?? new Uint8Array(0),
    });
    const sync = await this.nextOf(MessageType.Sync);
    const viewJoin = await this.nextOf(MessageType.ViewJoin, (e) => e.viewId === viewId);
    return { sync, viewJoin, viewId };
  }

  /** Waits for the socket to close (closing it normally first if `initiate`). */
  async close(initiate = true): Promise<CloseInfo> {
    if (initiate && this.ws.readyState !== WebSocket.CLOSED) {
      if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
      else this.ws.close(1000);
    }
    return this.closed;
  }

  #take(predicate: Predicate): ServerMessage | undefined {
    for (let i = this.#cursor; i < this.frames.length; i++) {
      const frame = this.frames[i]!;
      if (predicate(frame)) {
        this.#cursor = i + 1;
        return frame;
      }
    }
    return undefined;
  }

  #wake(): void {
    while (this.#waiters.length > 0) {
      const waiter = this.#waiters[0]!;
      const found = this.#take(waiter.predicate);
      if (found === undefined) return;
      this.#waiters.shift();
      waiter.resolve(found);
    }
  }
}

/** Fields of a Join a test may set. */
export interface JoinOptions {
  readonly sessionId: string;
  readonly persistentId: string;
  readonly viewId: string;
  readonly tps: number;
  readonly viewData: Uint8Array;
  /** Join auth (default: {@link testAuth}()). */
  readonly auth: Uint8Array;
}

/** Whether a server frame is a stream entry. */
export function isEntry(msg: ServerMessage): msg is StreamEntry {
  return msg.type === MessageType.Relay || msg.type === MessageType.ViewJoin || msg.type === MessageType.ViewExit;
}

/**
 * A reflector on a loopback ephemeral port plus the clients a test opens; `teardown()` closes
 * everything (call it in afterEach).
 */
export class Harness {
  reflector!: Reflector;
  readonly clients: TestClient[] = [];

  async start(options: ReflectorOptions = {}): Promise<Reflector> {
    // Views exit at once unless a test is about the grace period: most tests watch exits.
    this.reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, viewGraceMs: 0, ...options });
    return this.reflector;
  }

  async connect(): Promise<TestClient> {
    const client = await TestClient.connect(this.reflector.url);
    this.clients.push(client);
    return client;
  }

  async teardown(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
    this.clients.length = 0;
    await this.reflector?.close();
  }
}

/** Bytes 0..n-1 (mod 256), for recognisable payloads. */
export function bytes(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i + seed) & 0xff;
  return out;
}

/**
 * A JoinAuth as a client with `password` would send it. Real clients derive the token from the
 * session key; the reflector only ever sees token, SHA-256(token) and an opaque check envelope.
 */
export function testAuth(password = "pw"): Uint8Array {
  const token = createHash("sha256").update(`token:${password}`).digest();
  const verifier = createHash("sha256").update(token).digest();
  return encodeJoinAuth({ token, verifier, check: testCheck(password), slot: "", slotToken: new Uint8Array(0) });
}

/** The check envelope {@link testAuth} registers. */
export function testCheck(password = "pw"): Uint8Array {
  return new Uint8Array(Buffer.from(`check:${password}`));
}
