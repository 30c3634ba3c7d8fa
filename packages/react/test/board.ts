/**
 * What the hook tests share: a small model, a real in-process reflector, headless clients, and
 * waiting for React commits and for replicas (on events, never on sleeps).
 */
import { Model, Session, type JoinOptions, type LockstepSession, type SocketFactory, type SocketLike } from "@lockstep/client";
import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { WebSocket } from "ws";
export { hashesWhen, until } from "@lockstep/test-support";

/** Two independent counters (so a change of one is unrelated to a selector of the other) and a future-driven one. */
export class Board extends Model {
  a = 0;
  b = 0;
  ticks = 0;
  notes: string[] = [];

  override init(): void {
    this.subscribe("board", "incA", this.incA);
    this.subscribe("board", "incB", this.incB);
    this.subscribe("board", "note", this.note);
    this.subscribe("board", "tickLater", this.tickLater);
  }

  incA(): void {
    this.a++;
    this.publish("board", "changed", { which: "a", value: this.a });
  }

  incB(): void {
    this.b++;
    this.publish("board", "changed", { which: "b", value: this.b });
  }

  note(text: string): void {
    this.notes.push(String(text));
  }

  /** No event changes `ticks`: only a future does, 50 ms of session time later. */
  tickLater(): void {
    this.future(50).tick();
  }

  tick(): void {
    this.ticks++;
  }
}
Board.register("ReactTestBoard");

/** A reflector on a free loopback port, in memory, for the file's tests. */
export function useReflector(): { readonly url: string } {
  let reflector: Reflector | undefined;
  beforeAll(async () => {
    reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });
  });
  afterAll(() => reflector?.close());
  return {
    get url() {
      if (!reflector) throw new Error("the reflector starts in beforeAll");
      return reflector.url;
    },
  };
}

let rooms = 0;

/**
 * Sockets of the ws package, as Node clients use: jsdom's WebSocket never completes a close
 * (a client that left would exit only when the reflector's idle timeout fires, 10 s later).
 * Browsers are covered by e2e/react.e2e.test.ts.
 */
const socket: SocketFactory = async (url) => new WebSocket(url) as unknown as SocketLike;

/** A socket factory that keeps the sockets it made, so a test can cut one (`terminate()`: no closing handshake, as a network drop). */
export function tappedSockets(): { readonly socket: SocketFactory; readonly sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  return {
    sockets,
    socket: async (url) => {
      const ws = new WebSocket(url);
      sockets.push(ws);
      return ws as unknown as SocketLike;
    },
  };
}

/** Join options of a fresh session of {@link Board} (a new name per call). */
export function boardOptions(reflector: string, name = `room-${process.pid}-${++rooms}-${Date.now().toString(36)}`): JoinOptions<Board> {
  return { appId: "dev.lockstep.react-test", name, password: "pw", model: Board, reflector, tps: 60, socket };
}

/** A headless client in the same session (a second user without React). */
export function joinHeadless(options: JoinOptions<Board>): Promise<LockstepSession<Board>> {
  return Session.join(options);
}

/** Values a component committed, in order; `when(pred)` resolves with the first (latest or later) that satisfies it. */
export class Commits<T> {
  readonly values: T[] = [];
  #waiters: Array<{ pred: (value: T) => boolean; resolve: (value: T) => void }> = [];

  push(value: T): void {
    this.values.push(value);
    this.#waiters = this.#waiters.filter((w) => !(w.pred(value) && (w.resolve(value), true)));
  }

  get latest(): T | undefined {
    return this.values[this.values.length - 1];
  }

  when(pred: (value: T) => boolean): Promise<T> {
    const latest = this.latest;
    if (this.values.length > 0 && pred(latest as T)) return Promise.resolve(latest as T);
    return new Promise((resolve) => this.#waiters.push({ pred, resolve }));
  }
}
