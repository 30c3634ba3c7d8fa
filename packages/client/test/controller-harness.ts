/**
 * The harness of the session controller's transition tests (controller.link.test.ts and
 * controller.fake.test.ts): the app under test, JoinParameters, clients on the memory link or on
 * a scripted fake reflector, and the checks that replicas agree.
 */
/**
 * Unit tests of the SessionController's transitions (connecting → syncing → joined, disconnected,
 * sleeping, failed, left), driving a controller directly with plain JoinParameters, against:
 *  (a) the real reflector core over the in-memory link, all time on one ManualClock (happy paths,
 *      lost connections, backoff, sleep, the silence watchdog);
 *  (b) a scripted fake socket (fake-socket.ts) for exact protocol-level transitions a real
 *      reflector would not easily produce (malformed frames, Error + close codes, foreign or
 *      repeated Syncs, stream gaps, entries before the Sync, AuthFailed while joining).
 * Every test with more than one client checks that the replicas' state hashes agree at every seq
 * both processed, and at the end. Backoff jitter is drawn from a seeded PRNG (`LOCKSTEP_TEST_SEED`)
 * and the expected delays computed from the draws, so the clock is advanced exactly.
 */
import { createHash } from "node:crypto";
import { CloseCode, MessageType, decodeClientMessage, decodeServerMessage, type ClientMessage, type ServerMessage } from "@lockstep/protocol";
import { ManualClock, createMemoryReflector, seedHint, testRng, type MemoryLink, type MemoryReflector, type MemoryReflectorOptions } from "@lockstep/test-support";
import { JoinError, SessionError, UsageError } from "../src/errors";
import { Model } from "../src/kernel/model";
import type { SocketFactory, SocketLike } from "../src/session/connection";
import { SessionController, type JoinParameters } from "../src/session/controller";
import { FIRST_RETRY_MS, MAX_RETRY_MS } from "../src/session/rejoin";
import type { MessageLevel, SessionUi } from "../src/session/ui";
import { View } from "../src/view/view";
import { DEFAULT_OFFLINE_QUEUE } from "../src/session/publisher";
import { FakeReflector, FakeSocket, syncFor, viewJoin } from "./fake-socket";

// ---- the app under test ----

export class Tally extends Model {
  total = 0;
  members: string[] = [];

  override init(): void {
    this.subscribe("tally", "add", this.add);
    this.subscribe(this.sessionId, "view-join", this.joined);
    this.subscribe(this.sessionId, "view-exit", this.exited);
  }

  add(n: number): void {
    this.total += n;
  }

  joined(viewId: string): void {
    this.members.push(viewId);
  }

  exited(viewId: string): void {
    this.members = this.members.filter((m) => m !== viewId);
  }
}
Tally.register("ControllerTest.Tally");

/** Every root view built in the current test, in order. */
export let built: TallyView[] = [];

export class TallyView extends View {
  detached = 0;
  updates = 0;

  constructor(readonly model: Tally) {
    super(model);
    built.push(this);
  }

  override detach(): void {
    this.detached++;
    super.detach();
  }

  override update(): void {
    this.updates++;
  }
}

// ---- harness ----

export let clock: ManualClock;
export let warn: jest.SpyInstance;
export let error: jest.SpyInstance;
export let cleanups: (() => Promise<void> | void)[] = [];

/** Registers the per-test set-up: a fresh ManualClock, console spies, cleanups run after each test. */
export function useControllerHarness(): void {
  beforeEach(() => {
    clock = new ManualClock();
    built = [];
    warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
    error = jest.spyOn(console, "error").mockImplementation(() => undefined);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups = [];
    warn.mockRestore();
    error.mockRestore();
  });
}


export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("base64url");
export const REFLECTOR_URL = "mem://controller-test/";

/** What the session told its widgets. */
export interface UiLog {
  readonly ui: SessionUi;
  readonly messages: [MessageLevel, string][];
  readonly joined: string[];
  ended: number;
}

export function recordingUi(): UiLog {
  const log: UiLog = {
    messages: [],
    joined: [],
    ended: 0,
    ui: {
      syncing: () => undefined,
      joined: (info) => void log.joined.push(info.viewId),
      message: (level, text) => void log.messages.push([level, text]),
      ended: () => void log.ended++,
    },
  };
  return log;
}

/** Backoff jitter from a seeded PRNG; the test computes each delay from the draw it made. */
export interface Jitter {
  readonly random: () => number;
  readonly draws: number[];
  /** The delay of the latest scheduled attempt, if it was attempt number `attempt` (0-based) since the last success. */
  lastDelay(attempt: number): number;
}

export function jitter(label: string): Jitter {
  const rng = testRng(label);
  const draws: number[] = [];
  return {
    random: () => {
      const r = rng.next();
      draws.push(r);
      return r;
    },
    draws,
    lastDelay(attempt) {
      const draw = draws.at(-1);
      if (draw === undefined) throw new Error("no backoff delay was drawn");
      const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt);
      const delay = Math.round(base * (0.75 + draw * 0.5));
      // The documented ±25 %.
      expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.75));
      expect(delay).toBeLessThanOrEqual(Math.ceil(base * 1.25));
      return delay;
    },
  };
}

/** JoinParameters as `validate()` makes them (Session.join's defaults), plus the Rejoiner's seeded jitter. */
export function joinParams(over: Partial<JoinParameters>, random: () => number): JoinParameters {
  const params: JoinParameters & { readonly random: () => number } = {
    appId: "test.controller",
    name: "room",
    password: "pw",
    model: Tally,
    view: TallyView,
    options: {},
    viewOptions: undefined,
    viewData: undefined,
    tps: 20,
    step: "manual",
    debug: new Set<string>(),
    reflector: REFLECTOR_URL,
    socket: () => {
      throw new Error("no socket factory given");
    },
    timers: clock,
    progressReporter: undefined,
    autoSleep: 0,
    ui: undefined,
    token: undefined,
    offline: DEFAULT_OFFLINE_QUEUE,
    ...over,
    // RejoinerOptions.random: the controller hands its params to its Rejoiner.
    random,
  };
  return params;
}

/** Lets work that needs no clock time finish (socket opens, frames, promise chains). */
export async function waitFor(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (pred()) return;
    await clock.settle();
  }
  throw new Error(`never happened: ${what} (${seedHint()})`);
}

/** Whether a promise settled yet, and how. */
export function track<T>(promise: Promise<T>): { settled: boolean; error: unknown } {
  const t = { settled: false, error: undefined as unknown };
  promise.then(
    () => (t.settled = true),
    (e) => {
      t.settled = true;
      t.error = e;
    },
  );
  return t;
}

export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

/** Hooks every frame a socket delivers to the client: `before` and `after` its handler ran. */
export function tap(socket: SocketLike, hook: (msg: ServerMessage | undefined, phase: "before" | "after") => void): void {
  let handler: ((ev: { data: unknown }) => void) | null = null;
  Object.defineProperty(socket, "onmessage", {
    configurable: true,
    get: () => handler,
    set: (h: ((ev: { data: unknown }) => void) | null) => {
      handler =
        h &&
        ((ev) => {
          let msg: ServerMessage | undefined;
          try {
            msg = decodeServerMessage(new Uint8Array(ev.data as ArrayBuffer));
          } catch {
            msg = undefined;
          }
          hook(msg, "before");
          h(ev);
          hook(msg, "after");
        });
    },
  });
}

// ---- (a) clients of the real reflector core over the memory link ----

export interface MemClient {
  readonly c: SessionController;
  readonly ui: UiLog;
  readonly jitter: Jitter;
  readonly handle: object;
  readonly links: MemoryLink[];
  /** Frames sent over every connection, decoded. */
  readonly sent: ClientMessage[];
  /** close(code, reason) calls the client made on its sockets. */
  readonly closes: { code?: number; reason?: string }[];
  /** Factory calls, with the controller's state and clock time at each. */
  readonly opens: { state: string; at: number }[];
  /** State hash right after each entry, by seq (a rejoin's replay overwrites with what must be the same). */
  readonly hashes: Map<number, string>;
  /** Hashes that differed when an entry was processed again (a rejoin's replay). */
  readonly replayMismatches: number[];
  /** Time of the last frame the client received. */
  lastFrameAt: number;
  lastSeq: number;
  /** While set, sockets fail to open: alternately the factory throws and a socket closes before opening. */
  down: boolean;
  /** Called for every frame delivered to the client (before and after its handler). */
  onFrame: (msg: ServerMessage | undefined, phase: "before" | "after") => void;
}

export async function memClient(mem: MemoryReflector, label: string, over: Partial<JoinParameters> = {}): Promise<MemClient> {
  const ui = recordingUi();
  const j = jitter(`controller ${expect.getState().currentTestName} ${label}`);
  let failures = 0;
  const client: Omit<MemClient, "c"> & { c?: SessionController } = {
    ui,
    jitter: j,
    handle: { label },
    links: [],
    sent: [],
    closes: [],
    opens: [],
    hashes: new Map(),
    replayMismatches: [],
    lastFrameAt: 0,
    lastSeq: 0,
    down: false,
    onFrame: () => undefined,
  };
  const socket: SocketFactory = (url) => {
    client.opens.push({ state: client.c?.state ?? "?", at: clock.now() });
    if (client.down) {
      if (failures++ % 2 === 0) throw new Error("ECONNREFUSED (test)");
      const refused = new FakeSocket(url);
      clock.noteActivity();
      setImmediate(() => {
        clock.noteActivity();
        refused.closed(1006);
      });
      return refused;
    }
    const link = mem.open({ url });
    client.links.push(link);
    const end = link.client;
    const send = end.send.bind(end);
    end.send = (data: Uint8Array) => {
      client.sent.push(decodeClientMessage(data));
      send(data);
    };
    const close = end.close.bind(end);
    end.close = (code?: number, reason?: string) => {
      client.closes.push({ code, reason });
      close(code, reason);
    };
    tap(end, (msg, phase) => {
      if (phase === "before") client.lastFrameAt = clock.now();
      client.onFrame(msg, phase);
    });
    return end;
  };
  const c = await SessionController.create(joinParams({ socket, ui: ui.ui, ...over }, j.random));
  client.c = c;
  c.afterEntry((seq) => {
    client.lastSeq = seq;
    const hash = sha256(c.stateBytes());
    const before = client.hashes.get(seq);
    if (before !== undefined && before !== hash) client.replayMismatches.push(seq);
    client.hashes.set(seq, hash);
  });
  cleanups.push(async () => {
    if (c.state === "left") return;
    const leaving = c.leave();
    // A blackholed link never completes its closing handshake.
    await clock.runUntil(() => client.links.every((l) => l.clientState === "closed" || l.blackholed), { maxMs: 10_000 });
    await leaving;
  });
  return client as MemClient;
}

/**
 * A reflector core on the harness clock. Its views exit at once when their connection drops
 * (`viewGraceMs: 0`), so a lost connection rejoins afresh: these tests follow the controller
 * through a rebuild; pass a grace period to see it resume instead.
 */
export async function memReflector(reflector: MemoryReflectorOptions["reflector"] = {}): Promise<MemoryReflector> {
  const mem = await createMemoryReflector({ clock, reflector: { viewGraceMs: 0, ...reflector } });
  cleanups.unshift(() => mem.close()); // runs last (cleanups run in reverse)
  return mem;
}

export const joinedView = (x: MemClient): TallyView => {
  const view = x.c.rootView;
  if (!(view instanceof TallyView)) throw new Error(`no root view (state ${x.c.state})`);
  return view;
};
export const modelOf = (x: MemClient): Tally => x.c.rootModel as Tally;

/** Drops every link of a client, as a lost connection would (1006 unless told). */
export function dropClient(mem: MemoryReflector, x: MemClient, code?: number): void {
  expect(mem.drop((link) => x.links.includes(link), code)).toBeGreaterThan(0);
}

/**
 * Brings the joined clients to the same entry and checks their replicas: the same seq, the same
 * state hash now, the same hash at every seq two of them processed, and no replay that differed.
 */
export async function expectConverged(clients: MemClient[]): Promise<void> {
  const caughtUp = (): boolean => {
    for (const x of clients) x.c.step();
    return clients.every((x) => x.c.state === "joined") && new Set(clients.map((x) => x.lastSeq)).size === 1;
  };
  await clock.runUntil(caughtUp, { maxMs: 30_000, stepMs: 50 });
  for (const x of clients) x.c.step();
  const now = clients.map((x) => sha256(x.c.stateBytes()));
  expect({ seed: seedHint(), distinct: new Set(now).size }).toEqual({ seed: seedHint(), distinct: 1 });
  expectSameHistory(clients);
}

/** The hash right after each entry agrees on every replica that processed it. */
export function expectSameHistory(clients: MemClient[]): void {
  const [first, ...rest] = clients;
  for (const other of rest) {
    let common = 0;
    for (const [seq, hash] of first!.hashes) {
      const theirs = other.hashes.get(seq);
      if (theirs === undefined) continue;
      common++;
      expect({ seq, hash: theirs }).toEqual({ seq, hash });
    }
    expect(common).toBeGreaterThan(0);
  }
  for (const x of clients) expect(x.replayMismatches).toEqual([]);
}

export const lostWarnings = (): string[] => warn.mock.calls.map((args) => String(args[0])).filter((m) => m.startsWith("[Lockstep] lost the connection"));
export const droppedWarnings = (): string[] => warn.mock.calls.map((args) => String(args[0])).filter((m) => m.includes("not connected"));


// ---- (b) a scripted fake reflector ----

export interface FakeClient {
  readonly c: SessionController;
  readonly server: FakeReflector;
  readonly ui: UiLog;
  readonly jitter: Jitter;
  readonly handle: object;
}

export async function fakeClient(over: Partial<JoinParameters> = {}): Promise<FakeClient> {
  const server = new FakeReflector(clock);
  const ui = recordingUi();
  const j = jitter(`controller ${expect.getState().currentTestName}`);
  const c = await SessionController.create(joinParams({ socket: server.factory, ui: ui.ui, ...over }, j.random));
  return { c, server, ui, jitter: j, handle: {} };
}

/** Starts a join and waits until its Join frame was sent on an open socket. */
export async function startJoin(f: FakeClient): Promise<{ joining: Promise<void>; outcome: { settled: boolean; error: unknown }; socket: FakeSocket }> {
  const joining = f.c.start(f.handle);
  const outcome = track(joining);
  await waitFor(() => f.server.sockets.at(-1)?.sent.length === 1, "the Join was sent");
  expect(f.c.state).toBe("syncing");
  return { joining, outcome, socket: f.server.last };
}

/** A first join the fake reflector answers: Sync at seq 0, then this client's view-join (#1). */
export async function joinFake(f: FakeClient): Promise<FakeSocket> {
  const { joining, socket } = await startJoin(f);
  socket.deliver(syncFor(socket.join));
  socket.deliver(viewJoin(1, f.c.viewId));
  await joining;
  expect(f.c.state).toBe("joined");
  return socket;
}

/** Waits the scheduled backoff (attempt `attempt`) exactly; the rejoin's socket opens and sends its Join. */
export async function rejoinAfterBackoff(f: FakeClient, attempt = 0): Promise<FakeSocket> {
  const sockets = f.server.sockets.length;
  const delay = f.jitter.lastDelay(attempt);
  await clock.advance(delay - 1);
  expect(f.server.sockets).toHaveLength(sockets);
  await clock.advance(1);
  await waitFor(() => f.server.sockets.length === sockets + 1 && f.server.last.sent.length === 1, "the rejoin's Join was sent");
  expect(f.c.state).toBe("syncing");
  return f.server.last;
}

export const MALFORMED = new Uint8Array([1, 0x7f]); // version 1, no such frame type
