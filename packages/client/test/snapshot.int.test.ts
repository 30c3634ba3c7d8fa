import { DEFAULT_LIMITS, MessageType, decodeServerMessage, type SnapshotChunkMessage } from "@lockstep/protocol";
import { startReflector, type Logger, type Reflector } from "@lockstep/reflector";
import { Model, Session, View, type LockstepSession } from "../src/index";
import { testRng } from "@lockstep/test-support";
import { captureWhen, recordingSockets } from "./int-helpers";
import { startProxy } from "./proxy";

/** A busy model: a log, children with futures, and PRNG draws, all of which a snapshot must carry. */
class Busy extends Model {
  log: Array<[string, number]> = [];
  counters = new Map<string, Counter>();
  cheat?: number;
  override init(): void {
    this.subscribe("busy", "add", this.add);
  }
  add(data: { who: string; n: number }): void {
    this.log.push([data.who, Math.floor(this.random() * 1e6)]);
    let c = this.counters.get(data.who);
    if (!c) this.counters.set(data.who, (c = Counter.create()));
    c.bump(data.n);
  }
}
Busy.register("SnapshotInt.Busy");

class Counter extends Model {
  total = 0;
  ticks = 0;
  override init(): void {
    this.future(100).tick();
  }
  bump(n: number): void {
    this.total += n;
  }
  tick(): void {
    this.ticks++;
    this.future(100).tick();
  }
}
Counter.register("SnapshotInt.Counter");

/** Records divergence reports (a view-side event). */
class WatchView extends View {
  /** Every report any root view of this client got, by viewId (a rebuilt replica gets a new root view). */
  static reports = new Map<string, Array<{ seq: number; diverged: boolean; split: boolean; repaired?: boolean }>>();
  static waiters: Array<() => void> = [];
  divergence: Array<{ seq: number; diverged: boolean; split: boolean; repaired?: boolean }> = [];
  #got!: () => void;
  readonly gotDivergence = new Promise<void>((resolve) => (this.#got = resolve));
  constructor(model: Busy) {
    super(model);
    this.subscribe(model.sessionId, "divergence", this.onDivergence);
  }
  onDivergence(report: { seq: number; diverged: boolean; split: boolean; repaired?: boolean }): void {
    this.divergence.push(report);
    WatchView.reports.set(this.viewId, [...(WatchView.reports.get(this.viewId) ?? []), report]);
    for (const w of WatchView.waiters.splice(0)) w();
    this.#got();
  }
}

/** Resolves once `viewId`'s views got a report matching `pred`. */
async function reported(viewId: string, pred: (r: { diverged: boolean; split: boolean; repaired?: boolean }) => boolean): Promise<void> {
  while (!(WatchView.reports.get(viewId) ?? []).some(pred)) await new Promise<void>((resolve) => WatchView.waiters.push(resolve));
}

/** A view that writes into its model: exactly the bug that makes a replica diverge (once: a rebuilt replica is left alone). */
class CheatingView extends WatchView {
  static cheated = new Set<string>();
  constructor(model: Busy) {
    super(model);
    if (CheatingView.cheated.has(this.viewId)) return;
    CheatingView.cheated.add(this.viewId);
    model.cheat = 42;
  }
}

type Event = { event: string; fields: Record<string, unknown> };
const waiters: Array<{ pred: (e: Event) => boolean; resolve: () => void }> = [];
/** A logger that keeps the reflector's events and wakes tests waiting for one. */
function recordingLogger(events: Event[]): Logger {
  const record = (event: string, fields: Record<string, unknown> = {}) => {
    const e = { event, fields };
    events.push(e);
    for (const w of waiters.splice(0)) if (w.pred(e)) w.resolve(); else waiters.push(w);
  };
  return { info: record, warn: record, error: record } as unknown as Logger;
}
function nextEvent(pred: (e: Event) => boolean): Promise<void> {
  return new Promise((resolve) => waiters.push({ pred, resolve }));
}

/** The next turn of the event loop: what a view publishes in one turn travels as one stream entry. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

let reflector: Reflector;
const events: Event[] = [];
beforeAll(async () => {
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: recordingLogger(events), snapshots: { everyMessages: 40, voteTimeoutMs: 2000 } });
});
afterAll(() => reflector.close());

function join(name: string, view: typeof WatchView = WatchView): Promise<LockstepSession<Busy, WatchView>> {
  return Session.join({ appId: "test.lockstep.snapshots", name, password: "pw", model: Busy, view, reflector: reflector.url }) as Promise<LockstepSession<Busy, WatchView>>;
}

function stored(): Event[] {
  return events.filter((e) => e.event === "snapshot.stored");
}

test("a late joiner starts from the latest snapshot plus the messages since, and ends identical", async () => {
  const first = await join("late");
  const second = await join("late");
  const progress: number[] = [];
  const snapshotPast = nextEvent((e) => e.event === "snapshot.stored" && (e.fields.seq as number) > 120);
  // Each in its own turn: the publishes of one turn travel as one entry, and snapshots are due by entries.
  for (let n = 0; n < 150; n++) {
    [first, second][n % 2]!.view.publish("busy", "add", { who: n % 2 ? "b" : "a", n });
    await nextTurn();
  }
  await captureWhen(first, () => first.model.log.length === 150);
  // The messages call for snapshots; wait until one covers most of them.
  await snapshotPast;
  // The session stays busy while the late client joins (the others keep publishing), and until
  // at least three snapshots are stored: how many are stored by the time a join completes depends
  // on how fast the join is, so the test waits for them instead of counting on it.
  const threeStored = stored().length >= 3 ? Promise.resolve() : nextEvent((e) => e.event === "snapshot.stored" && stored().length >= 3);
  let busy = true;
  let extra = 0;
  const traffic = (async () => {
    while (busy) {
      for (let k = 0; k < 5; k++) [first, second][extra % 2]!.view.publish("busy", "add", { who: "busy", n: extra++ });
      await new Promise((r) => setImmediate(r));
    }
  })();
  const late = (await Session.join({
    appId: "test.lockstep.snapshots",
    name: "late",
    password: "pw",
    model: Busy,
    view: WatchView,
    reflector: reflector.url,
    progressReporter: (p) => progress.push(p),
  })) as LockstepSession<Busy, WatchView>;
  await threeStored;
  busy = false;
  await traffic;
  expect(extra).toBeGreaterThan(0);
  expect(progress[progress.length - 1]).toBe(1);
  expect(stored().length).toBeGreaterThanOrEqual(3);
  const total = 150 + extra + 1;
  const points = [first, second, late].map((s) => captureWhen(s, () => s.model.log.length === total));
  late.view.publish("busy", "add", { who: "late", n: 1 });
  const [a, b, c] = await Promise.all(points);
  expect(b!.hash).toBe(a!.hash);
  expect(c!.hash).toBe(a!.hash);
  expect(late.model.log).toEqual(first.model.log);
  expect(late.model.counters.get("busy")!.total).toBe(first.model.counters.get("busy")!.total);
  expect(events.filter((e) => e.event === "snapshot.divergence")).toEqual([]);
  await Promise.all([first, second, late].map((s) => s.leave()));
});

test("a replica that diverges is told so at the next snapshot and rebuilds itself to the majority's state", async () => {
  const honest1 = await join("diverge");
  const honest2 = await join("diverge");
  const cheater = await join("diverge", CheatingView);
  const error = jest.spyOn(console, "error").mockImplementation(() => undefined);
  const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
  try {
    for (let n = 0; n < 45; n++) {
      honest1.view.publish("busy", "add", { who: "h", n });
      await nextTurn();
    }
    await Promise.all([honest1.view.gotDivergence, honest2.view.gotDivergence, reported(cheater.viewId, (r) => r.diverged)]);
    expect(WatchView.reports.get(cheater.viewId)![0]).toMatchObject({ diverged: true, split: false });
    expect(honest1.view.divergence[0]).toMatchObject({ diverged: false, split: false });
    expect(honest2.view.divergence[0]).toMatchObject({ diverged: false, split: false });
    const logged = events.filter((e) => e.event === "snapshot.divergence");
    expect(logged).toHaveLength(1);
    expect(logged[0]!.fields.votes).toEqual([2, 1]);
    // The cheater rejoins from the session's state, and says so.
    await reported(cheater.viewId, (r) => r.repaired === true);
    expect(cheater.model.cheat).toBeUndefined();
    expect(error.mock.calls.some(([line]) => String(line).includes("rebuilding it from the session's state"))).toBe(true);
    const points = [honest1, honest2, cheater].map((s) => captureWhen(s, () => s.model.log.length === 46));
    honest2.view.publish("busy", "add", { who: "h2", n: 1 });
    const reached = await Promise.all(points);
    expect(new Set(reached.map((r) => r.seq)).size).toBe(1);
    expect(new Set(reached.map((r) => r.hash)).size).toBe(1);
  } finally {
    error.mockRestore();
    warn.mockRestore();
  }
  await Promise.all([honest1, honest2, cheater].map((s) => s.leave()));
});

test("a tie is reported to everyone as a split: nobody is blamed, nobody rebuilds", async () => {
  const honest = await join("split");
  const cheater = await join("split", CheatingView);
  const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
  try {
    for (let n = 0; n < 45; n++) {
      honest.view.publish("busy", "add", { who: "h", n });
      await nextTurn();
    }
    await Promise.all([honest.view.gotDivergence, cheater.view.gotDivergence]);
    for (const s of [honest, cheater]) expect(s.view.divergence[0]).toMatchObject({ diverged: false, split: true });
    expect(warn.mock.calls.some(([line]) => String(line).includes("no majority can tell which is right"))).toBe(true);
    const logged = events.filter((e) => e.event === "snapshot.divergence").at(-1)!;
    expect(logged.fields).toMatchObject({ votes: [1, 1], split: true });
    expect(cheater.model.cheat).toBe(42); // not rebuilt
  } finally {
    warn.mockRestore();
  }
  await Promise.all([honest, cheater].map((s) => s.leave()));
});

test("state that cannot be snapshotted fails the join with its property path, not hours later", async () => {
  class Dated extends Model {
    when?: Date;
    override init(): void {
      this.when = new Date(0);
    }
  }
  Dated.register("SnapshotInt.Dated");
  const attempt = Session.join({ appId: "test.lockstep.snapshots", name: "dated", password: "pw", model: Dated, reflector: reflector.url });
  await expect(attempt).rejects.toThrow(/Dated's state cannot be snapshotted.*Date/);
});

/** Keeps every text it is sent: a few events make a state of megabytes. */
class Archive extends Model {
  texts: string[] = [];
  override init(): void {
    this.subscribe("archive", "put", this.put);
  }
  put(text: string): void {
    this.texts.push(text);
  }
}
Archive.register("SnapshotInt.Archive");

test("a snapshot larger than three chunks is uploaded in chunks and a late joiner starts from it, identical", async () => {
  const random = testRng("big snapshot").next;
  const big = await startReflector({ port: 0, host: "127.0.0.1", logger: recordingLogger(events), snapshots: { everyMessages: 8, voteTimeoutMs: 2000 } });
  const proxy = await startProxy(big.url);
  try {
    const opts = { appId: "test.lockstep.snapshots", name: "big", password: "pw", model: Archive, view: View };
    const sockets = [recordingSockets(), recordingSockets()];
    const first = (await Session.join({ ...opts, reflector: big.url, socket: sockets[0]!.factory })) as LockstepSession<Archive>;
    const second = (await Session.join({ ...opts, reflector: big.url, socket: sockets[1]!.factory })) as LockstepSession<Archive>;
    // 8 texts of 240 KB (random letters, so nothing about the size is an accident): ~1.9 MB of state.
    const TEXTS = 8;
    const allIn = captureWhen(first, () => first.model.texts.length === TEXTS);
    for (let i = 0; i < TEXTS; i++) {
      const text = Array.from({ length: 240 * 1024 }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join("");
      [first, second][i % 2]!.view.publish("archive", "put", text);
      await nextTurn();
    }
    const { seq: lastText } = await allIn;
    // Small events (no model subscribes) until a snapshot taken after the last text is stored.
    const snapshotPast = nextEvent((e) => e.event === "snapshot.stored" && (e.fields.seq as number) > lastText);
    for (let i = 0; i < 10; i++) {
      first.view.publish("archive", "noop", i);
      await nextTurn();
    }
    await snapshotPast;

    const sent = sockets.flatMap((r) => r.sent);
    expect(sent.some((m) => m.type === MessageType.SnapshotUpload)).toBe(false);
    const chunks = sent.filter((m): m is SnapshotChunkMessage => m.type === MessageType.SnapshotChunk);
    const latest = Math.max(...chunks.map((c) => c.seq));
    expect(latest).toBeGreaterThan(lastText);
    const upload = chunks.filter((c) => c.seq === latest);
    const total = upload[0]!.total;
    expect(total).toBeGreaterThan(3 * DEFAULT_LIMITS.maxChunkBytes);
    expect(upload.length).toBeGreaterThan(3);
    // One upload: in order, back to back, each chunk within the limit, covering the envelope exactly.
    let offset = 0;
    for (const c of upload) {
      expect(c.offset).toBe(offset);
      expect(c.total).toBe(total);
      expect(c.data.length).toBeLessThanOrEqual(DEFAULT_LIMITS.maxChunkBytes);
      offset += c.data.length;
    }
    expect(offset).toBe(total);

    const late = (await Session.join({ ...opts, reflector: proxy.url })) as LockstepSession<Archive>;
    const sync = proxy.frames.filter((f) => f.direction === "toClient").map((f) => decodeServerMessage(f.bytes)).find((m) => m.type === MessageType.Sync);
    expect(sync?.type === MessageType.Sync && sync.snapshot.length).toBe(total);
    expect(late.model.texts).toEqual(first.model.texts);
    const points = [first, second, late].map((s) => captureWhen(s, () => s.model.texts.length === TEXTS + 1));
    late.view.publish("archive", "put", "late");
    const [a, b, c] = await Promise.all(points);
    expect(b!.hash).toBe(a!.hash);
    expect(c!.hash).toBe(a!.hash);
    await Promise.all([first, second, late].map((s) => s.leave()));
  } finally {
    await proxy.close();
    await big.close();
  }
});
