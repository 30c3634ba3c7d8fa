import { MessageType, decodeServerMessage, type ServerMessage } from "@lockstep/protocol";
import { silentLogger } from "../src/logger";
import { Session, type SessionMember } from "../src/session";

class FakeMember implements SessionMember {
  readonly frames: ServerMessage[] = [];
  readonly raw: Uint8Array[] = [];
  constructor(readonly viewId: string) {}
  send(frame: Uint8Array): void {
    this.raw.push(frame);
    this.frames.push(decodeServerMessage(frame));
  }
  sendSync(frame: Uint8Array): void {
    this.send(frame);
  }
  failed: Array<[number, string]> = [];
  fail(code: number, message: string): void {
    this.failed.push([code, message]);
  }
}

let now = 0;
let emptied: Session[] = [];
const make = (tps = 10) => new Session({ sessionId: "S", tps, clock: () => now, logger: silentLogger, onEmpty: (s) => emptied.push(s), access: { verifier: new Uint8Array(32), check: new Uint8Array(1) }, snapshots: { everyMessages: 1e9, everyMs: 1e9, voteTimeoutMs: 1000 } });

beforeEach(() => {
  jest.useFakeTimers();
  now = 1000;
  emptied = [];
});
afterEach(() => {
  jest.useRealTimers();
});

test("join syncs the log, then stamps and broadcasts the view-join", () => {
  const s = make();
  const a = new FakeMember("a");
  expect(s.join(a, Uint8Array.of(9))).toBe("joined");
  expect(a.frames.map((f) => f.type)).toEqual([MessageType.Sync, MessageType.ViewJoin]);
  expect(a.frames[1]).toMatchObject({ seq: 1, time: 0, viewId: "a" });
  now += 5.7;
  const b = new FakeMember("b");
  s.join(b, new Uint8Array(0));
  expect(b.frames[0]).toMatchObject({ type: MessageType.Sync, seq: 1, time: 5, entries: [{ type: MessageType.ViewJoin, viewId: "a" }] });
  expect(a.frames[2]).toEqual(b.frames[1]);
  expect(s.join(new FakeMember("a"), new Uint8Array(0))).toBe("taken");
  s.dispose();
});

test("a relay is encoded once, sent as the same bytes to all, and the log keeps its own copy", () => {
  const s = make();
  const [a, b] = [new FakeMember("a"), new FakeMember("b")];
  s.join(a, new Uint8Array(0));
  s.join(b, new Uint8Array(0));
  const incoming = Uint8Array.of(1, 2, 3);
  expect(s.relay(incoming)).toBe(3);
  expect(a.raw.at(-1)).toBe(b.raw.at(-1));
  incoming.fill(0); // the receive buffer gets reused
  const c = new FakeMember("c");
  s.join(c, new Uint8Array(0));
  const sync = c.frames[0]!;
  expect(sync.type === MessageType.Sync && Array.from((sync.entries[2] as { payload: Uint8Array }).payload)).toEqual([1, 2, 3]);
  s.dispose();
});

test("ticks only while idle and while there are members; exits pair with joins", () => {
  const s = make(10);
  const a = new FakeMember("a");
  s.join(a, new Uint8Array(0));
  const ticks = () => a.frames.filter((f) => f.type === MessageType.Tick).length;
  jest.advanceTimersByTime(100); // the join was an entry: this tick is skipped
  expect(ticks()).toBe(0);
  now += 200;
  jest.advanceTimersByTime(100);
  expect(ticks()).toBe(1);
  expect(a.frames.at(-1)).toEqual({ type: MessageType.Tick, time: 200 });
  s.relay(Uint8Array.of(1));
  jest.advanceTimersByTime(100);
  expect(ticks()).toBe(1);
  jest.advanceTimersByTime(100);
  expect(ticks()).toBe(2);

  const b = new FakeMember("b");
  s.join(b, new Uint8Array(0));
  expect(s.exit(b)).toBe(true);
  expect(s.exit(b)).toBe(false);
  expect(a.frames.at(-1)).toMatchObject({ type: MessageType.ViewExit, viewId: "b" });
  expect(emptied).toEqual([]);
  s.exit(a);
  expect(emptied).toEqual([s]);
  expect(jest.getTimerCount()).toBe(0);
});

test("session time never decreases", () => {
  const s = make();
  now += 50;
  expect(s.now()).toBe(50);
  now -= 30;
  expect(s.now()).toBe(50);
  now += 100;
  expect(s.now()).toBe(120);
});

test("a round that ends because its only voter went away asks the members still here again, while the log is past half its cap", () => {
  const s = new Session({
    sessionId: "S",
    tps: 10,
    clock: () => now,
    logger: silentLogger,
    onEmpty: (x) => emptied.push(x),
    access: { verifier: new Uint8Array(32), check: new Uint8Array(1) },
    caps: { maxLogBytes: 20_000, maxLogMemoryBytes: 20_000 },
    snapshots: { everyMessages: 1e9, everyMs: 1e9, voteTimeoutMs: 60_000 },
  });
  const requests = (m: FakeMember): number => m.frames.filter((f) => f.type === MessageType.SnapshotRequest).length;
  const a = new FakeMember("a");
  s.join(a, new Uint8Array(0));
  for (let i = 0; i < 40; i++) s.relay(new Uint8Array(300));
  expect(requests(a)).toBe(1); // at half the cap; a never answers
  // b joins while the round still waits for a's vote: that round is not b's.
  const b = new FakeMember("b");
  s.join(b, new Uint8Array(0));
  expect(requests(b)).toBe(0);
  // a's connection is lost (a LogFull close, say): the round ends with no votes, and b is asked at once,
  // not only once something is stamped again (a full log stamps nothing more).
  s.away(a);
  expect(requests(b)).toBe(1);
  s.dispose();
});
