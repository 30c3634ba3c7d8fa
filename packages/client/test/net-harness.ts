/**
 * Clients and a reflector core over the in-memory link, every timer on one ManualClock: the
 * harness of the reconnect and offline tests (a reflector that can be stopped and restarted on the
 * same store, links that record what each client saw).
 */
import { createMemoryStore, type ReflectorOptions } from "@lockstep/reflector";
import { ManualClock, createMemoryReflector, keepOpen, type MemoryLink, type MemoryReflector } from "@lockstep/test-support";
import { Session, View, type JoinOptions, type LockstepSession, type SocketFactory, type SocketLike } from "../src/index";
import { FIRST_RETRY_MS, MAX_RETRY_MS, silenceLimitMs } from "../src/session/rejoin";
import { captureWhen } from "./int-helpers";
import { Room } from "./room-model";

/** Counts root views built per viewId: a rejoin detaches the old one and builds a new one. */
export class RoomView extends View {
  static built = new Map<string, number>();
  /** Multisynq's `synced` events each view heard, by viewId, as `"<view number>:<value>"`. */
  static synced = new Map<string, string[]>();
  detached = false;
  constructor(model: Room) {
    super(model);
    const n = (RoomView.built.get(this.viewId) ?? 0) + 1;
    RoomView.built.set(this.viewId, n);
    this.subscribe(this.sessionId, "synced", (value: boolean) => RoomView.synced.set(this.viewId, [...(RoomView.synced.get(this.viewId) ?? []), `${n}:${value}`]));
  }
  override detach(): void {
    this.detached = true;
    super.detach();
  }
}

export type R = LockstepSession<Room, RoomView>;

export const TPS = 30;
/** What the client's watchdog counts as a dead connection. */
export const SILENCE_MS = silenceLimitMs(TPS);
/** How often the watchdog looks (startWatchdog in session/rejoin.ts). */
export const WATCHDOG_MS = Math.min(1000, SILENCE_MS / 2);
/** The reflector's default heartbeat: much longer than the client's silence limit. */
export const HEARTBEAT_MS = 30_000;
/** How long the reflector waits for a closing handshake before cutting a socket off (CLOSE_GRACE_MS in reflector/src/connection.ts). */
export const CLOSE_GRACE_MS = 1000;
/** The longest a backoff delay can be (10 s + 25 % jitter). */
export const LONGEST_RETRY_MS = MAX_RETRY_MS * 1.25;
const URL = "mem://reconnect/";
const base = { appId: "test.lockstep.reconnect", password: "pw", model: Room, view: RoomView, tps: TPS, reflector: URL };

/** The bounds of the `attempt`-th backoff delay (from 0): 250 ms doubling up to 10 s, ±25 %. */
export function retryBounds(attempt: number): [number, number] {
  const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt);
  return [Math.round(delay * 0.75), Math.round(delay * 1.25)];
}

/** What one of a client's links saw, in clock time. */
export interface Tap {
  readonly link: MemoryLink;
  readonly openedAt: number;
  /** When the client end last delivered a frame. */
  heardAt: number | undefined;
  /** The message type of every frame delivered, in order. */
  readonly types: number[];
  /** The client's own close() of this socket. */
  closedBy: { at: number; code: number | undefined; reason: string | undefined } | undefined;
  /** The close event the socket delivered. */
  closeEvent: { at: number; code: number; reason: string } | undefined;
}

export interface Client {
  readonly session: R;
  /** Every link the session opened, oldest first. */
  readonly taps: Tap[];
  /** The seq of the last stream entry it processed. */
  lastSeq: number;
  /** While set, every frame from the reflector reaches the client garbled (a man in the middle). */
  garble: boolean;
}

export const last = (c: Client): Tap => c.taps.at(-1)!;
export const built = (c: Client): number => RoomView.built.get(c.session.viewId) ?? 0;

/** Replaces an event handler property of `end` so that the handler the client sets is wrapped. */
function intercept(end: SocketLike, key: "onmessage" | "onclose", wrap: (h: (ev: any) => void) => (ev: any) => void): void {
  let handler: ((ev: any) => void) | null = null;
  Object.defineProperty(end, key, {
    configurable: true,
    get: () => handler,
    set: (h: ((ev: any) => void) | null) => {
      handler = h && wrap(h);
    },
  });
}


/**
 * Clients and a reflector that can be stopped and started again on the same store. Sockets go to
 * whichever reflector is up; while none is, they are refused (close 1006), as a connection to a
 * port nobody listens on would be.
 */
export class Net {
  readonly clock = new ManualClock();
  readonly store = keepOpen(createMemoryStore());
  #up: MemoryReflector | undefined;
  #latest!: MemoryReflector;
  readonly #options: Partial<ReflectorOptions>;

  private constructor(options: Partial<ReflectorOptions>) {
    this.#options = options;
  }

  static async start(options: Partial<ReflectorOptions> = {}): Promise<Net> {
    const net = new Net(options);
    await net.restart();
    return net;
  }

  /** The reflector that is up. */
  get reflector(): MemoryReflector {
    if (!this.#up) throw new Error("no reflector is up");
    return this.#up;
  }

  /** Shuts the reflector down (clients are told ServerShutdown); connections are refused until {@link restart}. */
  async stop(): Promise<void> {
    const up = this.reflector;
    this.#up = undefined;
    await up.close();
  }

  /** A new reflector core on the same store. */
  async restart(): Promise<void> {
    this.#latest = await createMemoryReflector({ clock: this.clock, reflector: { ...this.#options, storage: this.store } });
    this.#up = this.#latest;
  }

  /** The socket factory of `client`: records each of its links. */
  socketFor(client: Pick<Client, "taps" | "garble">): SocketFactory {
    return (url) => {
      // The closed core refuses every connection (1006, "HTTP 503: the reflector is shutting down").
      const link = (this.#up ?? this.#latest).open({ url });
      const clock = this.clock;
      const tap: Tap = { link, openedAt: clock.now(), heardAt: undefined, types: [], closedBy: undefined, closeEvent: undefined };
      const end = link.client;
      intercept(end, "onmessage", (h) => (ev: { data: unknown }) => {
        tap.heardAt = clock.now();
        tap.types.push(new Uint8Array(ev.data as ArrayBuffer)[1]!);
        h(client.garble ? { data: new Uint8Array([0xff, 0xff, 0xff]).buffer } : ev);
      });
      intercept(end, "onclose", (h) => (ev: { code: number; reason: string }) => {
        tap.closeEvent ??= { at: clock.now(), code: ev.code, reason: ev.reason };
        h(ev);
      });
      const close = end.close.bind(end);
      end.close = (code?: number, reason?: string) => {
        tap.closedBy ??= { at: clock.now(), code, reason };
        close(code, reason);
      };
      client.taps.push(tap);
      return end;
    };
  }

  /** Joins a client (joining needs no clock time: await it before driving the clock). */
  async join(name: string, extra: Partial<JoinOptions<Room, RoomView>> = {}): Promise<Client> {
    const partial = { taps: [] as Tap[], garble: false };
    const session = (await Session.join({ ...base, name, socket: this.socketFor(partial), timers: this.clock, ...extra } as JoinOptions<Room, RoomView>)) as R;
    const client: Client = Object.assign(partial, { session, lastSeq: 0 });
    session.afterEntry((seq) => (client.lastSeq = seq));
    return client;
  }

  /** Advances the clock until `promise` settles; returns what it resolved to. */
  async finish<T>(promise: Promise<T>, maxMs = 30_000): Promise<T> {
    let done = false;
    promise.then(
      () => (done = true),
      () => (done = true),
    );
    await this.clock.runUntil(() => done, { maxMs });
    return promise;
  }

  /** Writes `line` from `from`; every client in `all` processes it as the same entry, with the same state after it. */
  async write(from: Client, line: string, all: Client[]): Promise<void> {
    let reached: Array<{ seq: number; hash: string }> | undefined;
    void Promise.all(all.map((c) => captureWhen(c.session, () => c.session.model.lines.includes(line)))).then((r) => (reached = r));
    from.session.view.publish("room", "write", line);
    await this.clock.runUntil(() => reached !== undefined, { maxMs: 5000 });
    expect(new Set(reached!.map((r) => r.seq)).size).toBe(1);
    expect(new Set(reached!.map((r) => r.hash)).size).toBe(1);
  }

  /** Every client processed the same entries and holds identical state now. */
  async expectConverged(all: Client[]): Promise<void> {
    await this.clock.settle();
    expect(new Set(all.map((c) => c.lastSeq)).size).toBe(1);
    const hashes = await Promise.all(all.map((c) => c.session.stateHash()));
    expect(new Set(hashes).size).toBe(1);
  }

  /** Every client leaves, then the reflector (if up) closes. */
  async end(all: Client[]): Promise<void> {
    await this.finish(Promise.all(all.map((c) => c.session.leave())));
    if (this.#up) await this.stop();
  }
}

/** Silences console[method] for the test (restored after it); the spy has the lines it got. */
export function quiet(method: "warn" | "log" | "error"): jest.SpyInstance {
  return jest.spyOn(console, method).mockImplementation(() => undefined);
}
export const logged = (spy: jest.SpyInstance, text: string): boolean => spy.mock.calls.some(([line]) => String(line).includes(text));
