// Session time and membership across reflector restarts, on the core over in-memory links and a
// manual clock. A "crash" abandons a reflector without closing it (nothing of its shutdown runs);
// a clean stop closes it. Both restarts reopen the same store.
import { MessageType } from "@lockstep/protocol";
import { createMemoryStore, type BlobStore } from "@lockstep/reflector";
import { ManualClock, createMemoryReflector, keepOpen, type MemoryReflector } from "@lockstep/test-support";
import { TIME_LEAD_MS } from "../src/session-time";
import { RawClient } from "./raw-client";
import { randomId } from "./helpers";

const GRACE = 5000;
let store: BlobStore;
let mem: MemoryReflector;
const open: MemoryReflector[] = [];

async function start(options: { readonly viewGraceMs?: number; readonly storage?: BlobStore; readonly everyMessages?: number } = {}): Promise<MemoryReflector> {
  const snapshots = options.everyMessages === undefined ? {} : { snapshots: { everyMessages: options.everyMessages } };
  mem = await createMemoryReflector({ clock: new ManualClock(), reflector: { storage: options.storage ?? store, viewGraceMs: options.viewGraceMs ?? GRACE, ...snapshots } });
  open.push(mem);
  return mem;
}

async function connect(): Promise<RawClient> {
  const client = new RawClient(mem.open());
  await mem.clock.settle();
  expect(client.opened).toBe(true);
  return client;
}

/** Every time a client was shown, in order: Sync, entries and ticks. */
function times(c: RawClient): number[] {
  return c.frames.flatMap((f) => ("time" in f && typeof f.time === "number" && f.type !== MessageType.Pong ? [f.time] : []));
}

beforeEach(() => {
  store = sharedMemoryStore();
});
afterEach(async () => {
  for (const m of open.splice(0)) await m.close().catch(() => undefined);
});

/** A memory store whose close() keeps the data, so a "restarted" reflector finds it again. */
const sharedMemoryStore = (): BlobStore => keepOpen(createMemoryStore());

/** A store whose puts of matching keys wait, while held, until released (storage that stalls). */
function gatedStore(matches: (key: string) => boolean): { store: BlobStore; hold(): void; release(): void } {
  const inner = sharedMemoryStore();
  let held = false;
  const waiting: Array<() => void> = [];
  const store: BlobStore = {
    ...inner,
    put: async (key, value) => {
      if (held && matches(key)) await new Promise<void>((resolve) => waiting.push(resolve));
      return inner.put(key, value);
    },
  };
  return {
    store,
    hold: () => void (held = true),
    release: () => {
      held = false;
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}

/** Two raw clients joined to a new session (settled): what most tests start from. */
async function twoJoined(): Promise<{ sessionId: string; a: RawClient; b: RawClient }> {
  const sessionId = randomId();
  const [a, b] = [await connect(), await connect()];
  a.join(sessionId);
  b.join(sessionId);
  await mem.clock.settle();
  return { sessionId, a, b };
}

test("model time never goes back across a crash: a restart continues at or after the last tick anyone saw", async () => {
  await start();
  const sessionId = randomId();
  const a = await connect();
  a.join(sessionId);
  await mem.clock.advance(12_000);
  const seen = Math.max(...times(a));
  expect(seen).toBe(12_000);
  // Crash: the old reflector is abandoned mid-flight; a new one opens the same store.
  await start();
  const b = await connect();
  b.join(sessionId);
  await mem.clock.settle();
  const sync = b.of(MessageType.Sync)[0]!;
  expect(sync.time).toBeGreaterThanOrEqual(seen);
  expect(sync.time).toBeLessThanOrEqual(seen + TIME_LEAD_MS);
  await mem.clock.advance(1000);
  const after = times(b);
  expect(after).toEqual([...after].sort((x, y) => x - y));
});

test("after a clean stop a restart continues from exactly the time last shown", async () => {
  await start();
  const sessionId = randomId();
  const a = await connect();
  a.join(sessionId);
  await mem.clock.advance(3_000);
  const seen = Math.max(...times(a));
  await mem.close();
  await start();
  const b = await connect();
  b.join(sessionId);
  await mem.clock.settle();
  expect(b.of(MessageType.Sync)[0]!.time).toBe(seen);
});

test("ticks never run ahead of the stored watermark: with storage stalled, model time stops, then goes on", async () => {
  const gate = gatedStore((key) => key.endsWith("/clock"));
  await start({ storage: gate.store });
  const a = await connect();
  a.join(randomId());
  await mem.clock.advance(1000);
  gate.hold();
  await mem.clock.advance(20_000);
  const capped = Math.max(...times(a));
  expect(capped).toBeLessThanOrEqual(1000 + TIME_LEAD_MS);
  expect(capped).toBeGreaterThan(1000);
  gate.release();
  await mem.clock.advance(1000);
  expect(Math.max(...times(a))).toBeGreaterThan(capped);
});

test("a view live when the reflector crashed gets its view-exit after the grace period; one that comes back in time rejoins", async () => {
  await start();
  const sessionId = randomId();
  const [a, b] = [await connect(), await connect()];
  a.join(sessionId);
  b.join(sessionId);
  await mem.clock.advance(100);
  await start();
  const a2 = await connect();
  a2.join(sessionId, 20, a.viewId);
  await mem.clock.settle();
  // a came back: its models start over, so its old view leaves and joins again.
  const sync = a2.of(MessageType.Sync)[0]!;
  expect(a2.of(MessageType.ViewExit).map((e) => e.viewId)).toEqual([a.viewId]);
  expect(a2.of(MessageType.ViewJoin).map((e) => e.viewId)).toEqual([a.viewId]);
  await mem.clock.advance(GRACE - 200);
  expect(a2.of(MessageType.ViewExit).map((e) => e.viewId)).toEqual([a.viewId]);
  await mem.clock.advance(300);
  // b never came back: its exit is stamped once the grace period is over.
  expect(a2.of(MessageType.ViewExit).map((e) => e.viewId)).toEqual([a.viewId, b.viewId]);
  // Across the whole stream every view-join has exactly one view-exit (a's current join aside).
  const stream = [...sync.entries, ...a2.frames.filter((f) => f.type === MessageType.ViewJoin || f.type === MessageType.ViewExit)];
  const balance = new Map<string, number>();
  for (const e of stream) {
    if (e.type === MessageType.ViewJoin) balance.set(e.viewId, (balance.get(e.viewId) ?? 0) + 1);
    if (e.type === MessageType.ViewExit) balance.set(e.viewId, (balance.get(e.viewId) ?? 0) - 1);
  }
  expect(Object.fromEntries(balance)).toEqual({ [a.viewId]: 1, [b.viewId]: 0 });
});

test("a dropped connection keeps its view for the grace period: no view-exit for a blip, one when it does not return", async () => {
  await start();
  const { sessionId, a, b } = await twoJoined();
  mem.drop((link) => link === b.link);
  await mem.clock.advance(GRACE - 100);
  expect(a.of(MessageType.ViewExit)).toEqual([]);
  await mem.clock.advance(200);
  expect(a.of(MessageType.ViewExit).map((e) => e.viewId)).toEqual([b.viewId]);
  // A Leave is not a blip: its exit is stamped at once.
  const c = await connect();
  c.join(sessionId);
  await mem.clock.settle();
  c.send({ type: MessageType.Leave });
  await mem.clock.settle();
  expect(a.of(MessageType.ViewExit).map((e) => e.viewId)).toEqual([b.viewId, c.viewId]);
});

test("a joiner's Sync is never later than entries still being stored: they reach it in time order", async () => {
  const gate = gatedStore((key) => key.includes("/log/"));
  await start({ storage: gate.store });
  const sessionId = randomId();
  const a = await connect();
  a.join(sessionId);
  await mem.clock.advance(500);
  gate.hold();
  a.send({ type: MessageType.Send, payload: Uint8Array.of(1) });
  await mem.clock.advance(700);
  const b = await connect();
  b.join(sessionId);
  await mem.clock.settle();
  gate.release();
  await mem.clock.advance(100);
  const sync = b.of(MessageType.Sync)[0]!;
  const relay = b.of(MessageType.Relay)[0]!;
  expect(relay.time).toBe(500);
  expect(sync.time).toBeLessThanOrEqual(relay.time);
  expect(times(b)).toEqual([...times(b)].sort((x, y) => x - y));
});

/** The seq of the last stream entry `c` received (Sync included). */
function lastSeqOf(c: RawClient): number {
  let seq = 0;
  for (const f of c.frames) {
    if (f.type === MessageType.Sync) seq = f.seq;
    else if ("seq" in f && f.type !== MessageType.SnapshotRequest && typeof f.seq === "number") seq = Math.max(seq, f.seq);
    else if (f.type === MessageType.SnapshotRequest) seq = Math.max(seq, f.seq);
  }
  return seq;
}

test("a client back within the grace period resumes from its last seq: a resumed Sync of what it missed, nothing stamped", async () => {
  await start();
  const { sessionId, a, b } = await twoJoined();
  const seen = lastSeqOf(b);
  mem.drop((link) => link === b.link);
  a.send({ type: MessageType.Send, payload: Uint8Array.of(1) });
  a.send({ type: MessageType.Send, payload: Uint8Array.of(2) });
  await mem.clock.advance(1000);
  const b2 = await connect();
  b2.join(sessionId, 20, b.viewId, seen);
  await mem.clock.settle();
  const sync = b2.of(MessageType.Sync)[0]!;
  expect(sync).toMatchObject({ resumed: true, snapshot: new Uint8Array(0), persisted: new Uint8Array(0) });
  expect(sync.entries.map((e) => e.seq)).toEqual([seen + 1, seen + 2]);
  expect(sync.entries.map((e) => e.type)).toEqual([MessageType.Relay, MessageType.Relay]);
  expect(b2.of(MessageType.ViewJoin)).toEqual([]);
  await mem.clock.advance(GRACE + 100);
  // Nobody saw b leave or come back.
  expect(a.of(MessageType.ViewExit)).toEqual([]);
  expect(a.of(MessageType.ViewJoin).map((e) => e.viewId)).toEqual([a.viewId, b.viewId]);
  a.send({ type: MessageType.Send, payload: Uint8Array.of(3) });
  await mem.clock.settle();
  expect(b2.of(MessageType.Relay).map((r) => r.payload[0])).toEqual([3]);
});

test("a resume the reflector cannot honour is an ordinary join: after the grace period, or from before the snapshot", async () => {
  await start({ viewGraceMs: 1000 });
  const { sessionId, a, b } = await twoJoined();
  const seen = lastSeqOf(b);
  mem.drop((link) => link === b.link);
  await mem.clock.advance(1500); // its exit is stamped
  const b2 = await connect();
  b2.join(sessionId, 20, b.viewId, seen);
  await mem.clock.settle();
  expect(b2.of(MessageType.Sync)[0]!.resumed).toBe(false);
  expect(b2.of(MessageType.ViewJoin).map((e) => e.viewId)).toEqual([b.viewId]);
  // A resumeSeq ahead of the log (a stream it never was in) is refused the same way.
  const c = await connect();
  c.join(sessionId, 20, a.viewId, 10_000);
  await mem.clock.settle();
  expect(c.of(MessageType.Sync)[0]!.resumed).toBe(false);
});

test("a client whose old connection is still open resumes on a new one: the old is replaced, no view-exit", async () => {
  await start();
  const { sessionId, a, b } = await twoJoined();
  const b2 = await connect();
  b2.join(sessionId, 20, b.viewId, lastSeqOf(b));
  await mem.clock.settle();
  expect(b2.of(MessageType.Sync)[0]!.resumed).toBe(true);
  expect(b.closed?.code).toBe(4006);
  await mem.clock.advance(GRACE + 100);
  expect(a.of(MessageType.ViewExit)).toEqual([]);
});

test("after a crash a client resumes its view on the restarted reflector", async () => {
  await start();
  const { sessionId, a, b } = await twoJoined();
  a.send({ type: MessageType.Send, payload: Uint8Array.of(9) });
  await mem.clock.advance(100);
  const seenA = lastSeqOf(a);
  await start();
  const a2 = await connect();
  a2.join(sessionId, 20, a.viewId, seenA);
  await mem.clock.settle();
  const sync = a2.of(MessageType.Sync)[0]!;
  expect(sync.resumed).toBe(true);
  expect(sync.entries).toEqual([]);
  expect(sync.time).toBeGreaterThanOrEqual(Math.max(...times(a)));
  await mem.clock.advance(GRACE + 100);
  // b never came back: its exit; a's view never left.
  expect(a2.of(MessageType.ViewExit).map((e) => e.viewId)).toEqual([b.viewId]);
});

test("while a view is away, snapshots wait (a snapshot would trim the log it resumes from); they go on once it is back", async () => {
  await start({ everyMessages: 3 });
  const { sessionId, a, b } = await twoJoined();
  const seen = lastSeqOf(b);
  mem.drop((link) => link === b.link);
  for (let i = 0; i < 10; i++) a.send({ type: MessageType.Send, payload: Uint8Array.of(i) });
  await mem.clock.advance(2000);
  expect(a.of(MessageType.SnapshotRequest)).toEqual([]);
  const b2 = await connect();
  b2.join(sessionId, 20, b.viewId, seen);
  await mem.clock.settle();
  expect(b2.of(MessageType.Sync)[0]).toMatchObject({ resumed: true });
  expect(b2.of(MessageType.Sync)[0]!.entries.filter((e) => e.type === MessageType.Relay)).toHaveLength(10);
  await mem.clock.advance(200);
  expect(a.of(MessageType.SnapshotRequest)).toHaveLength(1);
});
