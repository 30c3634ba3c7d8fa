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
import { ManualClock, createMemoryReflector, seedHint, testRng, type MemoryLink, type MemoryReflector } from "@lockstep/test-support";
import { JoinError, SessionError, UsageError } from "../src/errors";
import { Model } from "../src/kernel/model";
import type { SocketFactory, SocketLike } from "../src/session/connection";
import { SessionController, type JoinParameters } from "../src/session/controller";
import { FIRST_RETRY_MS, MAX_RETRY_MS } from "../src/session/rejoin";
import type { MessageLevel, SessionUi } from "../src/session/ui";
import { View } from "../src/view/view";
import { FakeReflector, FakeSocket, syncFor, viewJoin } from "./fake-socket";

// ---- the app under test ----

class Tally extends Model {
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
let built: TallyView[] = [];

class TallyView extends View {
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

let clock: ManualClock;
let warn: jest.SpyInstance;
let error: jest.SpyInstance;
let cleanups: (() => Promise<void> | void)[] = [];

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

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("base64url");
const REFLECTOR_URL = "mem://controller-test/";

/** What the session told its widgets. */
interface UiLog {
  readonly ui: SessionUi;
  readonly messages: [MessageLevel, string][];
  readonly joined: string[];
  ended: number;
}

function recordingUi(): UiLog {
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
interface Jitter {
  readonly random: () => number;
  readonly draws: number[];
  /** The delay of the latest scheduled attempt, if it was attempt number `attempt` (0-based) since the last success. */
  lastDelay(attempt: number): number;
}

function jitter(label: string): Jitter {
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
function joinParams(over: Partial<JoinParameters>, random: () => number): JoinParameters {
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
    ...over,
    // RejoinerOptions.random: the controller hands its params to its Rejoiner.
    random,
  };
  return params;
}

/** Lets work that needs no clock time finish (socket opens, frames, promise chains). */
async function waitFor(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (pred()) return;
    await clock.settle();
  }
  throw new Error(`never happened: ${what} (${seedHint()})`);
}

/** Whether a promise settled yet, and how. */
function track<T>(promise: Promise<T>): { settled: boolean; error: unknown } {
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

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

/** Hooks every frame a socket delivers to the client: `before` and `after` its handler ran. */
function tap(socket: SocketLike, hook: (msg: ServerMessage | undefined, phase: "before" | "after") => void): void {
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

interface MemClient {
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

async function memClient(mem: MemoryReflector, label: string, over: Partial<JoinParameters> = {}): Promise<MemClient> {
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

async function memReflector(): Promise<MemoryReflector> {
  const mem = await createMemoryReflector({ clock });
  cleanups.unshift(() => mem.close()); // runs last (cleanups run in reverse)
  return mem;
}

const joinedView = (x: MemClient): TallyView => {
  const view = x.c.rootView;
  if (!(view instanceof TallyView)) throw new Error(`no root view (state ${x.c.state})`);
  return view;
};
const modelOf = (x: MemClient): Tally => x.c.rootModel as Tally;

/** Drops every link of a client, as a lost connection would (1006 unless told). */
function dropClient(mem: MemoryReflector, x: MemClient, code?: number): void {
  expect(mem.drop((link) => x.links.includes(link), code)).toBeGreaterThan(0);
}

/**
 * Brings the joined clients to the same entry and checks their replicas: the same seq, the same
 * state hash now, the same hash at every seq two of them processed, and no replay that differed.
 */
async function expectConverged(clients: MemClient[]): Promise<void> {
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
function expectSameHistory(clients: MemClient[]): void {
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

const lostWarnings = (): string[] => warn.mock.calls.map((args) => String(args[0])).filter((m) => m.startsWith("[Lockstep] lost the connection"));
const droppedWarnings = (): string[] => warn.mock.calls.map((args) => String(args[0])).filter((m) => m.includes("not connected"));

describe("SessionController against the reflector core (memory link, manual clock)", () => {
  test("connecting → syncing → joined: the join resolves only once its own view-join was processed; the root view is built once", async () => {
    const mem = await memReflector();
    const progress: number[] = [];
    const a = await memClient(mem, "a", { progressReporter: (p) => progress.push(p) });
    const trace: string[] = [];
    let resolved = false;
    const where = (): string => `${a.c.state} model=${a.c.rootModel ? "yes" : "no"} view=${a.c.rootView ? "yes" : "no"} resolved=${resolved}`;
    a.onFrame = (msg, phase) => {
      if (msg?.type === MessageType.Sync) trace.push(`${phase} Sync: ${where()}`);
      if (msg?.type === MessageType.ViewJoin && msg.viewId === a.c.viewId) trace.push(`${phase} own ViewJoin: ${where()}`);
    };

    expect(a.c.state).toBe("connecting");
    expect(a.c.rootModel).toBeUndefined();
    expect(a.c.rootView).toBeUndefined();
    await a.c.start(a.handle).then(() => {
      resolved = true;
      trace.push(`resolved: ${where()}`);
    });

    expect(a.opens).toEqual([{ state: "connecting", at: 0 }]);
    expect(trace).toEqual([
      "before Sync: syncing model=no view=no resolved=false",
      "after Sync: syncing model=yes view=no resolved=false",
      "before own ViewJoin: syncing model=yes view=no resolved=false",
      "after own ViewJoin: joined model=yes view=yes resolved=false",
      "resolved: joined model=yes view=yes resolved=true",
    ]);
    expect(a.sent.map((m) => m.type)).toEqual([MessageType.Join]);
    expect(built).toHaveLength(1);
    const view = joinedView(a);
    expect(view.model).toBe(a.c.rootModel);
    expect(view.session).toBe(a.handle);
    expect(modelOf(a).members).toEqual([a.c.viewId]);
    expect(a.ui.joined).toEqual([a.c.viewId]);
    expect(progress.at(-1)).toBe(1);

    // A second client joins the same session; both stay joined, with one root view each.
    const b = await memClient(mem, "b");
    await b.c.start(b.handle);
    expect(built).toHaveLength(2);
    await expectConverged([a, b]);
    expect(modelOf(a).members).toEqual([a.c.viewId, b.c.viewId]);
    expect(built.map((v) => v.detached)).toEqual([0, 0]);
  });

  test("lost connection: joined → disconnected (view and model kept) → after the backoff connecting → syncing (old view detached at the new Sync) → joined with a new root view", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    joinedView(b).publish("tally", "add", 2);
    await expectConverged([a, b]);
    const oldView = joinedView(a);
    const oldModel = a.c.rootModel;

    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");
    expect(a.c.rootView).toBe(oldView);
    expect(a.c.rootModel).toBe(oldModel);
    expect(oldView.detached).toBe(0);
    expect(lostWarnings()).toEqual(["[Lockstep] lost the connection to the reflector (close code 1006); reconnecting"]);
    expect(a.ui.messages).toEqual([["warning", "Connection lost: reconnecting…"]]);

    // B goes on meanwhile.
    joinedView(b).publish("tally", "add", 3);
    const trace: string[] = [];
    a.onFrame = (msg, phase) => {
      const view = a.c.rootView === oldView ? "old" : a.c.rootView === undefined ? "none" : "new";
      const model = a.c.rootModel === oldModel ? "old" : "new";
      if (msg?.type === MessageType.Sync) trace.push(`${phase} Sync: ${a.c.state} view=${view} model=${model} oldDetached=${oldView.detached}`);
      if (msg?.type === MessageType.ViewJoin && msg.viewId === a.c.viewId) trace.push(`${phase} own ViewJoin: ${a.c.state} view=${view} model=${model}`);
    };

    const lostAt = clock.now();
    const delay = a.jitter.lastDelay(0);
    await clock.advance(delay - 1);
    expect(a.c.state).toBe("disconnected");
    expect(a.opens).toHaveLength(1);
    await clock.advance(1);
    expect(a.opens).toEqual([
      { state: "connecting", at: 0 },
      { state: "connecting", at: lostAt + delay },
    ]);
    await clock.runUntil(() => a.c.state === "joined", { maxMs: 1000 });
    expect(trace).toEqual([
      "before Sync: syncing view=old model=old oldDetached=0",
      "after Sync: syncing view=none model=new oldDetached=1",
      "before own ViewJoin: syncing view=none model=new",
      "after own ViewJoin: joined view=new model=new",
    ]);
    expect(built).toHaveLength(3); // a, b, and a's new root view
    expect(a.c.rootView).toBe(built[2]);
    expect(oldView.detached).toBe(1);
    expect(a.ui.messages).toEqual([
      ["warning", "Connection lost: reconnecting…"],
      ["status", "Reconnected"],
    ]);
    expect(a.sent.filter((m) => m.type === MessageType.Join)).toHaveLength(2);
    await expectConverged([a, b]);
    expect(modelOf(a).total).toBe(5);
    expect(modelOf(a).members).toEqual([b.c.viewId, a.c.viewId]);
  });

  test("a rejoin whose socket cannot open stays disconnected and retries with growing backoff (reset once joined)", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    const view = joinedView(a);
    const model = a.c.rootModel;

    a.down = true;
    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");
    for (let attempt = 0; attempt < 5; attempt++) {
      const delay = a.jitter.lastDelay(attempt);
      const opens = a.opens.length;
      await clock.advance(delay - 1);
      expect({ attempt, state: a.c.state, opens: a.opens.length }).toEqual({ attempt, state: "disconnected", opens });
      await clock.advance(1);
      // The attempt was made, failed (alternately: the factory threw, the socket closed before opening), and the next is scheduled.
      expect({ attempt, state: a.c.state, opens: a.opens.length }).toEqual({ attempt, state: "disconnected", opens: opens + 1 });
      expect(a.opens.at(-1)!.state).toBe("connecting");
      expect(a.c.rootView).toBe(view);
      expect(a.c.rootModel).toBe(model);
      joinedView(b).publish("tally", "add", 1);
    }
    // After the third failed attempt the user is told it keeps trying, once.
    expect(a.ui.messages.filter(([level]) => level === "warning")).toEqual([
      ["warning", "Connection lost: reconnecting…"],
      ["warning", `Still trying to reach the reflector at ${REFLECTOR_URL}…`],
    ]);
    expect(error).not.toHaveBeenCalled();

    a.down = false;
    await clock.advance(a.jitter.lastDelay(5));
    await clock.runUntil(() => a.c.state === "joined", { maxMs: 1000 });
    expect(view.detached).toBe(1);
    await expectConverged([a, b]);
    expect(modelOf(a).total).toBe(5);

    // Joined again: the next loss starts over from the shortest wait.
    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");
    const opens = a.opens.length;
    const delay = a.jitter.lastDelay(0);
    await clock.advance(delay - 1);
    expect(a.opens).toHaveLength(opens);
    await clock.advance(1);
    expect(a.opens).toHaveLength(opens + 1);
    await expectConverged([a, b]);
  });

  test("a fatal close while joined fails the session: views stay, no rejoin even 60 s later", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    joinedView(a).publish("tally", "add", 4);
    await expectConverged([a, b]);
    const view = joinedView(a);

    dropClient(mem, a, CloseCode.DuplicateView);
    await clock.settle();
    expect(a.c.state).toBe("failed");
    expect(a.c.rootView).toBe(view);
    expect(view.detached).toBe(0);
    const message = "this view rejoined the session on another connection; this one stops";
    expect(a.ui.messages).toEqual([["error", message]]);
    expect(a.ui.ended).toBe(1);
    expect(error).toHaveBeenCalledWith("[Lockstep] error in session:", expect.objectContaining({ name: "SessionError", message, code: CloseCode.DuplicateView }));
    expect(lostWarnings()).toEqual([]);

    joinedView(b).publish("tally", "add", 1);
    await clock.advance(60_000);
    b.c.step();
    expect(a.opens).toHaveLength(1);
    expect(a.c.state).toBe("failed");
    expect(() => view.publish("tally", "add", 1)).toThrow(UsageError);
    expect(() => view.publish("tally", "add", 1)).toThrow('cannot publish "tally:add": the session is failed');
    // Replicas agree up to where A stopped; B goes on alone.
    expectSameHistory([a, b]);
    expect(b.lastSeq).toBeGreaterThan(a.lastSeq);

    await a.c.leave();
    expect(a.c.state).toBe("left");
    expect(view.detached).toBe(1);
    await expectConverged([b]);
  });

  test("leave() on a connection that died silently resolves after 2 s of the clock: the socket that never finishes closing is abandoned", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    await a.c.start(a.handle);
    a.links[0]!.blackhole();
    const leaving = track(a.c.leave());
    await clock.advance(1999);
    expect(leaving.settled).toBe(false);
    await clock.advance(1);
    expect(leaving.settled).toBe(true);
    expect(leaving.error).toBeUndefined();
    expect(a.c.state).toBe("left");
  });

  test("leave() from joined: Leave frame sent, socket closed, resolves only after the close; the others see the view-exit", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    await expectConverged([a, b]);
    const view = joinedView(a);
    const order: string[] = [];
    const link = a.links[0]!;
    const onclose = link.client.onclose;
    link.client.onclose = (ev) => {
      order.push(`close ${ev.code}`);
      onclose?.(ev);
    };

    const leaving = a.c.leave().then(() => order.push(`left ${a.c.state}`));
    expect(a.c.leave()).toBe(a.c.leave()); // one leave, however often asked
    await clock.runUntil(() => order.length === 2, { maxMs: 1000 });
    await leaving;
    expect(order).toEqual(["close 1000", "left left"]);
    expect(a.sent.at(-1)).toEqual({ type: MessageType.Leave });
    expect(a.closes).toEqual([{ code: 1000, reason: "leave" }]);
    expect(a.c.state).toBe("left");
    expect(view.detached).toBe(1);
    expect(a.ui.ended).toBe(1);
    expect(() => view.publish("tally", "add", 1)).toThrow('cannot publish "tally:add": the session is left');

    await clock.advance(60_000);
    expect(a.opens).toHaveLength(1);
    await expectConverged([b]);
    expect(modelOf(b).members).toEqual([b.c.viewId]);
    expectSameHistory([a, b]);
  });

  test("leave() while disconnected: left at once, the scheduled rejoin never happens", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    await a.c.start(a.handle);
    const view = joinedView(a);
    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");

    await a.c.leave();
    expect(a.c.state).toBe("left");
    expect(view.detached).toBe(1);
    expect(a.ui.ended).toBe(1);
    await clock.advance(60_000);
    expect(a.opens).toHaveLength(1);
    expect(a.c.state).toBe("left");
  });

  test("publish(): joined sends a Send frame; disconnected drops it with one warning; after leave it throws", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    const local: number[] = [];
    const view = joinedView(a);
    view.subscribe("tally", "add", (n: number) => local.push(n));

    view.publish("tally", "add", 7);
    expect(a.sent.map((m) => m.type)).toEqual([MessageType.Join, MessageType.Send]);
    a.c.step(); // view subscribers hear it on the next frame, before it came back from the reflector
    expect(local).toEqual([7]);
    await expectConverged([a, b]);
    expect([modelOf(a).total, modelOf(b).total]).toEqual([7, 7]);

    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");
    const sends = a.sent.length;
    view.publish("tally", "add", 100);
    view.publish("tally", "add", 100);
    expect(a.sent).toHaveLength(sends);
    expect(droppedWarnings()).toEqual(['[Lockstep] not connected (disconnected): dropped "tally:add" and any further events until rejoined']);

    await clock.runUntil(() => a.c.state === "joined", { maxMs: 5000 });
    joinedView(a).publish("tally", "add", 1);
    await expectConverged([a, b]);
    expect([modelOf(a).total, modelOf(b).total]).toEqual([8, 8]);

    await a.c.leave();
    expect(() => joinedView(a).publish("tally", "add", 1)).toThrow(UsageError);
    expect(() => view.publish("tally", "add", 1)).toThrow('cannot publish "tally:add": the session is left');
  });

  test("the frame loop (step: auto) runs only while joined", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a", { step: "auto" });
    await a.c.start(a.handle);
    const view = joinedView(a);
    await clock.advance(160);
    expect(view.updates).toBe(10); // every 16 ms
    dropClient(mem, a);
    await clock.settle();
    expect(a.c.state).toBe("disconnected");
    const updates = view.updates;
    await clock.advance(Math.floor(FIRST_RETRY_MS * 0.75) - 1); // before the earliest rejoin
    expect(view.updates).toBe(updates);
    await clock.runUntil(() => a.c.state === "joined", { maxMs: 5000 });
    const fresh = joinedView(a);
    expect(fresh).not.toBe(view);
    await clock.advance(160);
    expect(fresh.updates).toBeGreaterThanOrEqual(9);
    expect(view.updates).toBe(updates);
  });

  describe("page visibility (a fake globalThis.document)", () => {
    class FakeDocument {
      visibilityState: "visible" | "hidden" = "visible";
      readonly listeners = new Set<() => void>();
      addEventListener(_type: string, listener: () => void): void {
        this.listeners.add(listener);
      }
      removeEventListener(_type: string, listener: () => void): void {
        this.listeners.delete(listener);
      }
      set(state: "visible" | "hidden"): void {
        this.visibilityState = state;
        for (const l of [...this.listeners]) l();
      }
    }
    let doc: FakeDocument;
    beforeEach(() => {
      doc = new FakeDocument();
      (globalThis as { document?: unknown }).document = doc;
    });
    afterEach(() => {
      delete (globalThis as { document?: unknown }).document;
    });

    test("hidden for autoSleep s → sleeping (socket closed 1000 \"asleep\"); visible → connecting → joined", async () => {
      const mem = await memReflector();
      const a = await memClient(mem, "a", { autoSleep: 3 });
      const b = await memClient(mem, "b", { autoSleep: 0 });
      await a.c.start(a.handle);
      await b.c.start(b.handle);
      expect(doc.listeners.size).toBe(1); // only A watches (B never sleeps)
      const view = joinedView(a);
      const model = a.c.rootModel;

      doc.set("hidden");
      await clock.advance(2999);
      expect(a.c.state).toBe("joined");
      await clock.advance(1);
      expect(a.c.state).toBe("sleeping");
      expect(a.closes).toEqual([{ code: 1000, reason: "asleep" }]);
      expect(a.c.rootView).toBe(view);
      expect(a.c.rootModel).toBe(model);
      expect(view.detached).toBe(0);
      expect(lostWarnings()).toEqual([]);
      expect(b.c.state).toBe("joined");

      // Asleep it stays, however long: no rejoin attempts; B goes on.
      joinedView(b).publish("tally", "add", 6);
      await clock.advance(60_000);
      expect(a.c.state).toBe("sleeping");
      expect(a.opens).toHaveLength(1);
      expect(() => view.publish("tally", "add", 1)).not.toThrow(); // dropped, not refused
      expect(droppedWarnings()).toEqual(['[Lockstep] not connected (sleeping): dropped "tally:add" and any further events until rejoined']);

      doc.set("visible");
      expect(a.c.state).toBe("connecting");
      expect(a.c.rootView).toBe(view);
      await clock.runUntil(() => a.c.state === "joined", { maxMs: 1000 });
      expect(a.opens.map((o) => o.state)).toEqual(["connecting", "connecting"]);
      expect(view.detached).toBe(1);
      expect(a.c.rootView).not.toBe(view);
      await expectConverged([a, b]);
      expect(modelOf(a).total).toBe(6);

      // Hidden, then visible again before autoSleep passed: it stays awake.
      doc.set("hidden");
      await clock.advance(2000);
      doc.set("visible");
      await clock.advance(5000);
      expect(a.c.state).toBe("joined");
      expect(a.opens).toHaveLength(2);

      await a.c.leave();
      expect(doc.listeners.size).toBe(0); // the watch ends with the session
      await expectConverged([b]);
    });
  });

  test("the silence watchdog: nothing heard for the silence limit abandons the connection and schedules a rejoin", async () => {
    const mem = await memReflector();
    const a = await memClient(mem, "a");
    const b = await memClient(mem, "b");
    await a.c.start(a.handle);
    await b.c.start(b.handle);
    await expectConverged([a, b]);
    const view = joinedView(a);

    a.links[0]!.blackhole(); // a dead connection that never says so
    const deadSince = a.lastFrameAt;
    await clock.runUntil(() => a.c.state !== "joined", { maxMs: 20_000, stepMs: 100 });
    expect(a.c.state).toBe("disconnected");
    // 20 tps: 5 s of silence, checked every second.
    const silent = clock.now() - deadSince;
    expect(silent).toBeGreaterThan(5000);
    expect(silent).toBeLessThanOrEqual(6000 + 100);
    expect(a.closes).toEqual([{ code: 1000, reason: "abandoned" }]);
    expect(lostWarnings()).toEqual(["[Lockstep] lost the connection to the reflector (close code 1006: nothing heard from the reflector for 5 s); reconnecting"]);
    expect(a.c.rootView).toBe(view);

    joinedView(b).publish("tally", "add", 9);
    await clock.runUntil(() => a.c.state === "joined", { maxMs: 2000 });
    expect(a.opens).toHaveLength(2);
    expect(view.detached).toBe(1);
    await expectConverged([a, b]);
    expect(modelOf(a).total).toBe(9);
  });
});

// ---- (b) a scripted fake reflector ----

interface FakeClient {
  readonly c: SessionController;
  readonly server: FakeReflector;
  readonly ui: UiLog;
  readonly jitter: Jitter;
  readonly handle: object;
}

async function fakeClient(over: Partial<JoinParameters> = {}): Promise<FakeClient> {
  const server = new FakeReflector(clock);
  const ui = recordingUi();
  const j = jitter(`controller ${expect.getState().currentTestName}`);
  const c = await SessionController.create(joinParams({ socket: server.factory, ui: ui.ui, ...over }, j.random));
  return { c, server, ui, jitter: j, handle: {} };
}

/** Starts a join and waits until its Join frame was sent on an open socket. */
async function startJoin(f: FakeClient): Promise<{ joining: Promise<void>; outcome: { settled: boolean; error: unknown }; socket: FakeSocket }> {
  const joining = f.c.start(f.handle);
  const outcome = track(joining);
  await waitFor(() => f.server.sockets.at(-1)?.sent.length === 1, "the Join was sent");
  expect(f.c.state).toBe("syncing");
  return { joining, outcome, socket: f.server.last };
}

/** A first join the fake reflector answers: Sync at seq 0, then this client's view-join (#1). */
async function joinFake(f: FakeClient): Promise<FakeSocket> {
  const { joining, socket } = await startJoin(f);
  socket.deliver(syncFor(socket.join));
  socket.deliver(viewJoin(1, f.c.viewId));
  await joining;
  expect(f.c.state).toBe("joined");
  return socket;
}

/** Waits the scheduled backoff (attempt `attempt`) exactly; the rejoin's socket opens and sends its Join. */
async function rejoinAfterBackoff(f: FakeClient, attempt = 0): Promise<FakeSocket> {
  const sockets = f.server.sockets.length;
  const delay = f.jitter.lastDelay(attempt);
  await clock.advance(delay - 1);
  expect(f.server.sockets).toHaveLength(sockets);
  await clock.advance(1);
  await waitFor(() => f.server.sockets.length === sockets + 1 && f.server.last.sent.length === 1, "the rejoin's Join was sent");
  expect(f.c.state).toBe("syncing");
  return f.server.last;
}

const MALFORMED = new Uint8Array([1, 0x7f]); // version 1, no such frame type

describe("SessionController against a scripted fake reflector", () => {
  test("the join completes exactly at this client's own live view-join: not at the Sync, another view's join, a tick, or its join in the history", async () => {
    const progress: number[] = [];
    const f = await fakeClient({ progressReporter: (p) => progress.push(p) });
    const { joining, outcome, socket } = await startJoin(f);
    const join = socket.join;
    expect(join).toMatchObject({ type: MessageType.Join, viewId: f.c.viewId, tps: 20 });
    expect(f.c.rootModel).toBeUndefined();

    // A history with this view's join from an earlier connection (#1), and another view's (#2).
    socket.deliver(syncFor(join, { entries: [viewJoin(1, f.c.viewId), viewJoin(2, "other-view")] }));
    expect(f.c.state).toBe("syncing");
    expect((f.c.rootModel as Tally).members).toEqual([f.c.viewId, "other-view"]);
    expect(f.c.rootView).toBeUndefined();
    socket.deliver(viewJoin(3, "third-view"));
    socket.deliver({ type: MessageType.Tick, time: 1100 });
    await clock.settle();
    expect(f.c.state).toBe("syncing");
    expect(outcome.settled).toBe(false);
    expect(built).toHaveLength(0);

    socket.deliver(viewJoin(4, f.c.viewId));
    expect(f.c.state).toBe("joined");
    expect(built).toHaveLength(1);
    await joining;
    expect(f.c.rootView).toBe(built[0]);
    expect((f.c.rootModel as Tally).members).toEqual([f.c.viewId, "other-view", "third-view", f.c.viewId]);
    expect(progress.at(-1)).toBe(1);
    expect(f.ui.joined).toEqual([f.c.viewId]);
    expect(socket.sent).toHaveLength(1); // only the Join

    // Live: entries queue until a frame (step: manual); a view-join of this view's again builds nothing.
    socket.deliver(viewJoin(5, "late-view"));
    f.c.step();
    expect((f.c.rootModel as Tally).members).toContain("late-view");
    expect(built).toHaveLength(1);
  });

  test("entries and ticks before the Sync are ignored; the join then completes normally", async () => {
    const f = await fakeClient();
    const { joining, outcome, socket } = await startJoin(f);
    socket.deliver(viewJoin(7, "early-view"));
    socket.deliver({ type: MessageType.Tick, time: 50 });
    socket.deliver(viewJoin(8, f.c.viewId)); // own view-join before any Sync: not the join
    await clock.settle();
    expect(f.c.state).toBe("syncing");
    expect(f.c.rootModel).toBeUndefined();
    expect(outcome.settled).toBe(false);

    socket.deliver(syncFor(socket.join)); // seq 0: what came before is not expected to continue
    socket.deliver(viewJoin(1, f.c.viewId));
    await joining;
    expect(f.c.state).toBe("joined");
    expect((f.c.rootModel as Tally).members).toEqual([f.c.viewId]);
    expect(error).not.toHaveBeenCalled();
  });

  test("a malformed frame while joining rejects the join with a JoinError", async () => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliverBytes(MALFORMED);
    const e = await rejectionOf(joining);
    expect(e).toBeInstanceOf(JoinError);
    expect((e as JoinError).message).toBe("could not join: the reflector sent a malformed frame");
    expect((e as JoinError).cause).toBeInstanceOf(SessionError);
    expect(f.c.state).toBe("left");
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "join failed" }]);
    expect(f.ui.joined).toEqual([]);
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1);
  });

  test("a malformed frame while joined fails the session; its close brings nothing back", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    const view = f.c.rootView;
    socket.deliverBytes(MALFORMED);
    expect(f.c.state).toBe("failed");
    expect(f.c.rootView).toBe(view);
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "session failed" }]);
    expect(f.ui.messages).toEqual([["error", "the reflector sent a malformed frame"]]);
    expect(f.ui.ended).toBe(1);
    socket.finishClose();
    await clock.advance(60_000);
    expect(f.c.state).toBe("failed");
    expect(f.server.calls).toBe(1);
  });

  test("a text frame is malformed too", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    socket.onmessage?.({ data: "hello" });
    expect(f.c.state).toBe("failed");
    expect(error).toHaveBeenCalledWith("[Lockstep] error in session:", expect.objectContaining({ cause: expect.objectContaining({ message: "reflector sent a text frame" }) }));
  });

  // A failed session is over: what its socket still delivers before the close must not fail it again.
  test("a second bad frame after the session failed reports nothing more (one error toast, ui.ended once)", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    socket.deliverBytes(MALFORMED);
    socket.deliverBytes(MALFORMED); // in flight before the client's close took effect
    expect(f.c.state).toBe("failed");
    expect(f.ui.messages).toEqual([["error", "the reflector sent a malformed frame"]]);
    expect(f.ui.ended).toBe(1);
    expect(error).toHaveBeenCalledTimes(1);
  });

  test.each([
    [CloseCode.TokenRejected, "bad signature", "could not join: the reflector refused the app token: bad signature (TokenRejected). Pass Session.join({ token }) a token your app's backend issued for this appId and session name"],
    [CloseCode.SessionDamaged, "its log does not continue its snapshot", "could not join: the session's stored data is damaged; the reflector's operator must restore it (its log does not continue its snapshot (SessionDamaged))"],
    [CloseCode.Overloaded, "too many sessions created", "could not join: the reflector is at capacity (too many sessions created (Overloaded)): join again in a moment"],
    [CloseCode.VersionMismatch, "speak version 1", "could not join: connection to the reflector closed: speak version 1 (VersionMismatch)"],
  ])("an Error frame (%i) then its close while joining rejects the join with that code", async (code, text, message) => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliver({ type: MessageType.Error, code, message: text });
    expect(f.c.state).toBe("syncing"); // the close decides
    socket.closed(code, "closing");
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e).toBeInstanceOf(JoinError);
    expect(e.message).toBe(message);
    expect(e.code).toBe(code);
    expect(e.closeCode).toBe(code);
    expect(f.c.state).toBe("left");
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1); // a first join never retries
  });

  test("a plain close (1006) while joining rejects the join: JoinError.closeCode 1006, no Lockstep code", async () => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.closed(1006);
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e.message).toBe("could not join: connection to the reflector closed: close code 1006");
    expect(e.code).toBeUndefined();
    expect(e.closeCode).toBe(1006);
    expect(f.c.state).toBe("left");
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1);
  });

  test.each(["refuse", "throw"] as const)("a first join whose socket cannot open (%s) says the reflector is unreachable", async (mode) => {
    const f = await fakeClient();
    f.server.mode = mode;
    const e = (await rejectionOf(f.c.start(f.handle))) as JoinError;
    expect(e).toBeInstanceOf(JoinError);
    expect(e.message).toMatch(/^cannot reach the Lockstep reflector at mem:\/\/controller-test\/: is it running\?/);
    expect(f.c.state).toBe("left");
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1);
  });

  describe("AuthFailed while joining: the JoinError names the wrong password", () => {
    test("the access token refused (Error frame, then close 4008)", async () => {
      const f = await fakeClient();
      const { joining, socket } = await startJoin(f);
      socket.deliver({ type: MessageType.Error, code: CloseCode.AuthFailed, message: "access token does not match the session's verifier" });
      socket.closed(CloseCode.AuthFailed, "auth failed");
      const e = (await rejectionOf(joining)) as JoinError;
      expect(e).toBeInstanceOf(JoinError);
      expect(e.message).toBe(
        `wrong password for session "room" of test.controller (sessionId ${f.c.identity.sessionId}): the reflector refused this client's access token, ` +
          "although the session's id comes from this password. The reflector's operator should check its storage",
      );
      expect(e.code).toBe(CloseCode.AuthFailed);
      expect((e.cause as Error).message).toBe("access token does not match the session's verifier (AuthFailed)");
      expect(f.c.state).toBe("left");
    });

    test("the persisted data's slot refused", async () => {
      const f = await fakeClient();
      const { joining, socket } = await startJoin(f);
      socket.deliver({ type: MessageType.Error, code: CloseCode.AuthFailed, message: "the persisted data's slot token does not match" });
      socket.closed(CloseCode.AuthFailed);
      const e = (await rejectionOf(joining)) as JoinError;
      expect(e.message).toMatch(new RegExp(`^wrong password for the persisted data of session "room" of test\\.controller \\(persistentId ${f.c.identity.persistentId}\\)`));
      expect(e.code).toBe(CloseCode.AuthFailed);
    });

    test("a bare close 4008 (no Error frame)", async () => {
      const f = await fakeClient();
      const { joining, socket } = await startJoin(f);
      socket.closed(CloseCode.AuthFailed);
      const e = (await rejectionOf(joining)) as JoinError;
      expect(e.message).toMatch(/^wrong password for session "room" of test\.controller/);
      expect((e.cause as Error).message).toBe("close code 4008");
      expect(e.code).toBe(CloseCode.AuthFailed);
    });
  });

  test.each([
    ["another session", { sessionId: "someone-elses-session" }, (viewId: string, wire: string) => `could not join: reflector answered for session someone-elses-session/${viewId}, expected ${wire}/${viewId}`],
    ["another view", { viewId: "not-this-view" }, (viewId: string, wire: string) => `could not join: reflector answered for session ${wire}/not-this-view, expected ${wire}/${viewId}`],
  ])("a Sync answering %s rejects the join", async (_what, over, message) => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliver(syncFor(socket.join, over));
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e).toBeInstanceOf(JoinError);
    expect(e.message).toBe(message(f.c.viewId, socket.join.sessionId));
    expect(e.cause).toBeInstanceOf(SessionError);
    expect(f.c.state).toBe("left");
    expect(f.c.rootModel).toBeUndefined();
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "join failed" }]);
  });

  test("a Sync whose check envelope does not open (another password's) rejects the join as a misbehaving reflector", async () => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliver(syncFor(socket.join, { auth: new Uint8Array(48).fill(7) }));
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e.message).toMatch(/^wrong password for session "room" of test\.controller .*the reflector is misbehaving; nothing was joined$/);
    expect(e.code).toBe(CloseCode.AuthFailed);
    expect(f.c.state).toBe("left");
  });

  test("a Sync whose history has a gap rejects the join", async () => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliver(syncFor(socket.join, { entries: [viewJoin(1, "a"), viewJoin(3, "b")] }));
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e.message).toBe("could not join: history has a gap at #2");
    expect(f.c.state).toBe("left");
  });

  test("a Sync arriving twice: while catching up it rejects the join; while joined it fails the session", async () => {
    const f = await fakeClient();
    const { joining, socket } = await startJoin(f);
    socket.deliver(syncFor(socket.join));
    socket.deliver(syncFor(socket.join));
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e.message).toBe("could not join: unexpected sync from reflector");
    expect(f.c.state).toBe("left");

    const g = await fakeClient();
    const live = await joinFake(g);
    live.deliver(syncFor(live.join, { seq: 1, entries: [viewJoin(1, g.c.viewId)] }));
    expect(g.c.state).toBe("failed");
    expect(g.ui.messages).toEqual([["error", "unexpected sync from reflector"]]);
    expect(live.closeCalls).toEqual([{ code: 1000, reason: "session failed" }]);
    await clock.advance(60_000);
    expect(g.server.calls).toBe(1);
  });

  test("a stream gap fails the session (joining: rejects the join)", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    socket.deliver(viewJoin(2, "fine"));
    socket.deliver(viewJoin(4, "skipped-3"));
    expect(f.c.state).toBe("failed");
    expect(f.ui.messages).toEqual([["error", "stream gap: expected message #3, got #4"]]);
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1);

    const g = await fakeClient();
    const { joining, socket: s } = await startJoin(g);
    s.deliver(syncFor(s.join));
    s.deliver(viewJoin(2, g.c.viewId));
    const e = (await rejectionOf(joining)) as JoinError;
    expect(e.message).toBe("could not join: stream gap: expected message #1, got #2");
    expect(g.c.state).toBe("left");
  });

  test("an Error frame then a fatal close while joined: failed with that code's message, views kept until leave, no rejoin", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    const view = f.c.rootView!;
    socket.deliver({ type: MessageType.Error, code: CloseCode.SessionDamaged, message: "snapshot #40 does not decrypt" });
    expect(f.c.state).toBe("joined");
    socket.closed(CloseCode.SessionDamaged, "session damaged");
    expect(f.c.state).toBe("failed");
    const message = "the session's stored data is damaged; the reflector's operator must restore it (snapshot #40 does not decrypt (SessionDamaged))";
    expect(f.ui.messages).toEqual([["error", message]]);
    expect(error).toHaveBeenCalledWith("[Lockstep] error in session:", expect.objectContaining({ name: "SessionError", message, code: CloseCode.SessionDamaged }));
    expect(f.c.rootView).toBe(view);
    expect(() => view.publish("tally", "add", 1)).toThrow('cannot publish "tally:add": the session is failed');
    await clock.advance(60_000);
    expect(f.server.calls).toBe(1);
    await f.c.leave(); // the socket is gone: nothing to wait for
    expect(f.c.state).toBe("left");
    expect((view as TallyView).detached).toBe(1);
  });

  test("a retryable close while joined (with its Error frame) rejoins; the Error's code, not the close's, decides", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    socket.deliver({ type: MessageType.Error, code: CloseCode.SlowReader, message: "unsent data passed the cap" });
    socket.closed(CloseCode.SlowReader);
    expect(f.c.state).toBe("disconnected");
    expect(lostWarnings()).toEqual(["[Lockstep] lost the connection to the reflector (unsent data passed the cap (SlowReader)); reconnecting"]);
    const next = await rejoinAfterBackoff(f);
    // The Error frame was of the old connection: this one closes with 1006 and rejoins again.
    next.closed(1006);
    expect(f.c.state).toBe("disconnected");
  });

  test("a rejoin, frame by frame: the old view stays until the new Sync; a close while syncing goes back to disconnected", async () => {
    const f = await fakeClient();
    const first = await joinFake(f);
    const oldView = f.c.rootView as TallyView;
    const oldModel = f.c.rootModel;
    first.closed(1006);
    expect(f.c.state).toBe("disconnected");

    // Attempt 1: the Sync boots a new replica (the old view goes), then the connection drops.
    const second = await rejoinAfterBackoff(f, 0);
    expect(second.join).toEqual(first.join);
    expect(f.c.rootView).toBe(oldView);
    second.deliver(syncFor(second.join, { seq: 1, entries: [viewJoin(1, f.c.viewId)] }));
    expect(f.c.state).toBe("syncing");
    expect(oldView.detached).toBe(1);
    expect(f.c.rootView).toBeUndefined();
    const bootedModel = f.c.rootModel;
    expect(bootedModel).not.toBe(oldModel);
    second.closed(1006);
    expect(f.c.state).toBe("disconnected");
    expect(f.c.rootView).toBeUndefined();
    expect(f.c.rootModel).toBe(bootedModel);
    expect(lostWarnings()).toHaveLength(1); // only the loss of a live session is announced

    // Attempt 2 (a longer wait: not joined in between) completes.
    const third = await rejoinAfterBackoff(f, 1);
    third.deliver(syncFor(third.join, { seq: 1, entries: [viewJoin(1, f.c.viewId)] }));
    third.deliver(viewJoin(2, f.c.viewId));
    expect(f.c.state).toBe("joined");
    expect(built).toHaveLength(2);
    expect(f.c.rootView).toBe(built[1]);
    expect(built[1]!.detached).toBe(0);
    expect(oldView.detached).toBe(1);
    expect(f.ui.messages.at(-1)).toEqual(["status", "Reconnected"]);
    expect((f.c.rootModel as Tally).members).toEqual([f.c.viewId, f.c.viewId]);
  });

  test("the silence watchdog, exactly: the first check past 5 s of silence abandons the socket; a frame heard pushes it back", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f); // opened and heard at t = 0
    await clock.advance(4000);
    socket.deliver({ type: MessageType.Tick, time: 5000 }); // heard at 4000: silent from then
    // Checked every second from the open: silent 6 s > 5 s first at t = 10 000.
    await clock.advance(5999);
    expect(f.c.state).toBe("joined");
    expect(socket.closeCalls).toEqual([]);
    await clock.advance(1);
    expect(f.c.state).toBe("disconnected");
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "abandoned" }]);
    expect(socket.onmessage).toBeNull(); // it reports nothing any more
    expect(socket.onclose).toBeNull();
    expect(lostWarnings()).toEqual(["[Lockstep] lost the connection to the reflector (close code 1006: nothing heard from the reflector for 5 s); reconnecting"]);
    const next = await rejoinAfterBackoff(f);
    next.deliver(syncFor(next.join, { seq: 1, entries: [viewJoin(1, f.c.viewId)] }));
    next.deliver(viewJoin(2, f.c.viewId));
    expect(f.c.state).toBe("joined");
  });

  test("the silence limit follows tps: 10 missed ticks at 1 tps", async () => {
    const f = await fakeClient({ tps: 1 });
    const socket = await joinFake(f);
    await clock.advance(10_000);
    expect(f.c.state).toBe("joined");
    await clock.advance(1000);
    expect(f.c.state).toBe("disconnected");
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "abandoned" }]);
  });

  test("leave() from joined: Leave frame, close(1000, \"leave\"), and the promise waits for the close event", async () => {
    const f = await fakeClient();
    const socket = await joinFake(f);
    const view = f.c.rootView as TallyView;
    const leaving = f.c.leave();
    const outcome = track(leaving);
    await clock.settle();
    expect(f.c.state).toBe("left");
    expect(socket.sent.at(-1)).toEqual({ type: MessageType.Leave });
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: "leave" }]);
    expect(view.detached).toBe(1);
    expect(outcome.settled).toBe(false);
    await clock.advance(1000);
    expect(outcome.settled).toBe(false);
    socket.finishClose();
    await leaving;
    expect(f.ui.ended).toBe(1);
  });

  test("leave() while a rejoin's socket is opening: left at once; the socket that opens late is closed without a Join", async () => {
    const f = await fakeClient();
    const first = await joinFake(f);
    first.closed(1006);
    f.server.mode = "manual";
    await clock.advance(f.jitter.lastDelay(0));
    await waitFor(() => f.server.sockets.length === 2, "the rejoin's socket was made");
    expect(f.c.state).toBe("connecting");
    const view = f.c.rootView as TallyView;
    expect(view.detached).toBe(0);

    await f.c.leave();
    expect(f.c.state).toBe("left");
    expect(view.detached).toBe(1);
    const late = f.server.last;
    late.open();
    await clock.settle();
    expect(late.sent).toEqual([]);
    expect(late.closeCalls).toEqual([{ code: 1000, reason: "left" }]);
    await clock.advance(60_000);
    expect(f.server.calls).toBe(2);
  });

  // Apps publish from the root view's constructor (an initial request, a "hello"): it is built
  // right after the own view-join, before the state says joined, and its events must go out.
  test("a root view that publishes from its constructor joins, and its event reaches the session", async () => {
    class Greeter extends View {
      constructor(model: Tally) {
        super(model);
        this.publish("tally", "add", 1);
      }
    }
    const f = await fakeClient({ view: Greeter });
    const { joining, socket } = await startJoin(f);
    socket.deliver(syncFor(socket.join));
    socket.deliver(viewJoin(1, f.c.viewId));
    await joining;
    expect(f.c.state).toBe("joined");
    expect(socket.sentOf(MessageType.Send)).toHaveLength(1);
  });
});
