import { decodeJoinAuth } from "@lockstep/protocol";
import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { Model, Session, View, type LockstepSession } from "../src/index";
import { testRng } from "@lockstep/test-support";
import { captureWhen, recordingSockets } from "./int-helpers";

/**
 * The shared state under test: an ordered log of everything every client published, with a
 * PRNG draw per event and futures whose delays come from the PRNG, so that any divergence in
 * order, randomness or timing shows up in the state.
 */
class Ledger extends Model {
  entries: Array<[string, number, number]> = [];
  echoes = 0;
  done: string[] = [];
  override init(): void {
    this.subscribe("ledger", "event", this.onEvent);
    this.subscribe("ledger", "done", this.onDone);
  }
  onEvent(data: { from: string; n: number }): void {
    this.entries.push([data.from, data.n, Math.floor(this.random() * 1000)]);
    if (data.n % 7 === 0) this.future(Math.floor(Math.random() * 200)).echo(data.n);
  }
  echo(n: number): void {
    this.echoes += n;
  }
  onDone(from: string): void {
    this.done.push(from);
  }
}
Ledger.register("SessionInt.Ledger");

const CLIENTS = 3;
const EVENTS_PER_CLIENT = 300;

let reflector: Reflector;
beforeAll(async () => {
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });
});
afterAll(async () => {
  await reflector.close();
});

function join(name: string, extra: Partial<Parameters<typeof Session.join>[0]> = {}): Promise<LockstepSession<Ledger>> {
  return Session.join({
    appId: "test.lockstep.session",
    name,
    password: "pw",
    model: Ledger,
    view: View,
    reflector: reflector.url,
    tps: 30,
    ...extra,
  }) as Promise<LockstepSession<Ledger>>;
}

test("three clients publishing interleaved bursts end with identical state and order", async () => {
  const sessions = await Promise.all(Array.from({ length: CLIENTS }, () => join("bursts")));
  expect(new Set(sessions.map((s) => s.id)).size).toBe(1);
  const done = sessions.map((s) => captureWhen(s, () => s.model.done.length === CLIENTS));

  await Promise.all(
    sessions.map(async (s, i) => {
      const random = testRng("interleaved bursts").fork(String(i)).next;
      let n = 0;
      while (n < EVENTS_PER_CLIENT) {
        const burst = 1 + Math.floor(random() * 25);
        for (let k = 0; k < burst && n < EVENTS_PER_CLIENT; k++) s.view.publish("ledger", "event", { from: s.viewId, n: n++ });
        // Yield to the event loop for a random number of turns so the bursts interleave.
        const turns = Math.floor(random() * 4);
        for (let t = 0; t < turns; t++) await new Promise((r) => setImmediate(r));
      }
      s.view.publish("ledger", "done", s.viewId);
    }),
  );
  const points = await Promise.all(done);

  expect(points.map((p) => p.seq)).toEqual(Array(CLIENTS).fill(points[0]!.seq));
  expect(new Set(points.map((p) => p.hash)).size).toBe(1);
  const orders = sessions.map((s) => JSON.stringify(s.model.entries));
  expect(new Set(orders).size).toBe(1);
  expect(sessions[0]!.model.entries).toHaveLength(CLIENTS * EVENTS_PER_CLIENT);
  // Each client's own events arrive in the order it sent them.
  for (const s of sessions) {
    const own = s.model.entries.filter(([from]) => from === s.viewId).map(([, n]) => n);
    expect(own).toEqual(Array.from({ length: EVENTS_PER_CLIENT }, (_, k) => k));
  }
  await Promise.all(sessions.map((s) => s.leave()));
});

test("a late joiner replays the history and ends identical", async () => {
  const first = await join("late");
  for (let n = 0; n < 50; n++) first.view.publish("ledger", "event", { from: "early", n });
  first.view.publish("ledger", "done", "early");
  await new Promise<void>((resolve) => {
    const stop = first.afterEntry(() => first.model.done.length === 1 && (stop(), resolve()));
  });
  const late = await join("late");
  expect(late.id).toBe(first.id);
  expect(late.model.entries).toHaveLength(50);
  const points = [first, late].map((s) => captureWhen(s, () => s.model.done.length === 2));
  late.view.publish("ledger", "done", "late");
  const [a, b] = await Promise.all(points);
  expect(a!.seq).toBe(b!.seq);
  expect(a!.hash).toBe(b!.hash);
  await Promise.all([first.leave(), late.leave()]);
});

test("every replica sees view-join and view-exit at the same point", async () => {
  class Roster extends Model {
    log: string[] = [];
    override init(): void {
      this.subscribe(this.sessionId, "view-join", this.joined);
      this.subscribe(this.sessionId, "view-exit", this.exited);
    }
    joined(e: { viewId: string; viewData: { nick: string } }): void {
      this.log.push(`+${e.viewData.nick}`);
    }
    exited(): void {
      this.log.push("-");
    }
  }
  Roster.register("SessionInt.Roster");
  const opts = { appId: "test.lockstep.roster", name: "r", password: "pw", model: Roster, reflector: reflector.url };
  const a = await Session.join({ ...opts, viewData: { nick: "ann" } });
  const b = await Session.join({ ...opts, viewData: { nick: "bob" } });
  const c = await Session.join({ ...opts, viewData: { nick: "cid" } });
  const exitSeen = captureWhen(a, () => a.model.log.length === 4);
  const exitSeenC = captureWhen(c, () => c.model.log.length === 4);
  await b.leave();
  const [pa, pc] = await Promise.all([exitSeen, exitSeenC]);
  expect(a.model.log).toEqual(["+ann", "+bob", "+cid", "-"]);
  expect(c.model.log).toEqual(a.model.log);
  expect(pa.hash).toBe(pc.hash);
  expect(a.model.viewCount).toBe(2);
  await Promise.all([a.leave(), c.leave()]);
});

test("same code, appId, name and options share a session; other options or names do not", async () => {
  const a = await join("same");
  const b = await join("same");
  const c = await join("same", { options: { level: 2 } });
  const d = await join("other");
  expect(b.id).toBe(a.id);
  expect(c.id).not.toBe(a.id);
  expect(c.persistentId).toBe(a.persistentId);
  expect(d.persistentId).not.toBe(a.persistentId);
  expect(a.versionId).toBe(d.versionId);
  await Promise.all([a, b, c, d].map((s) => s.leave()));
});

test("the reflector knows a session by a keyed wire id: not session.id, another for another password, printed by ?debug=session", async () => {
  const sockets = recordingSockets();
  const lines: string[] = [];
  const log = jest.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
  try {
    const a = await join("wire", { socket: sockets.factory, debug: "session" });
    const b = await join("wire", { socket: sockets.factory });
    const c = await join("wire", { socket: sockets.factory, password: "another" });
    const [ja, jb, jc] = sockets.joins();
    expect(ja!.sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ja!.sessionId).not.toBe(a.id);
    expect(jb!.sessionId).toBe(ja!.sessionId);
    expect(c.id).toBe(a.id);
    expect(jc!.sessionId).not.toBe(ja!.sessionId);
    expect(jc!.sessionId).not.toBe(c.id);
    // The persistentId travels as is: the reflector stores it and checks app tokens against it.
    expect(ja!.persistentId).toBe(a.persistentId);
    expect(lines).toContain(
      `[Lockstep] Joining session (sessionId: ${a.id}, persistentId: ${a.persistentId}, versionId: ${a.versionId}, viewId: ${a.viewId}, reflectorId: ${ja!.sessionId})`,
    );
    // Without a token, JoinAuth (version 3) carries none, nor the names.
    expect(decodeJoinAuth(ja!.auth)).toMatchObject({ appToken: "", appId: "", name: "" });
    expect(a.model.viewCount).toBe(2);
    expect(c.model.viewCount).toBe(1);
    await Promise.all([a, b, c].map((s) => s.leave()));
  } finally {
    log.mockRestore();
  }
});

test("a changed class body gives a new sessionId and versionId, same persistentId", async () => {
  type ClientModule = typeof import("../src/index");
  const load = (variant: "v1" | "v2"): { client: ClientModule; cls: typeof Model } => {
    let out!: { client: ClientModule; cls: typeof Model };
    jest.isolateModules(() => {
      const client = require("../src/index") as ClientModule;
      const cls =
        variant === "v1"
          ? class Doc extends client.Model {
              text = "";
            }
          : class Doc extends client.Model {
              text = "";
              title = "untitled";
            };
      cls.register("SessionInt.Doc");
      out = { client, cls };
    });
    return out;
  };
  const v1 = load("v1");
  const v1again = load("v1");
  const v2 = load("v2");
  const opts = { appId: "test.lockstep.versions", name: "doc", password: "pw", reflector: reflector.url };
  const s1 = await v1.client.Session.join({ ...opts, model: v1.cls as never });
  const s1b = await v1again.client.Session.join({ ...opts, model: v1again.cls as never });
  const s2 = await v2.client.Session.join({ ...opts, model: v2.cls as never });
  expect(s1b.id).toBe(s1.id);
  expect(s2.id).not.toBe(s1.id);
  expect(s2.versionId).not.toBe(s1.versionId);
  expect(s2.persistentId).toBe(s1.persistentId);
  await Promise.all([s1.leave(), s1b.leave(), s2.leave()]);
});

test("joining an unreachable reflector fails with a clear error", async () => {
  await expect(join("nowhere", { reflector: "ws://127.0.0.1:9/" })).rejects.toThrow(/cannot reach the Lockstep reflector at ws:\/\/127\.0\.0\.1:9\//);
});

test("bad join options fail before connecting", async () => {
  await expect(join("x", { password: "" })).rejects.toThrow(/password must be a non-empty string/);
  await expect(join("x", { appId: "bad/app" } as never)).rejects.toThrow(/appId/);
  await expect(join("x", { tps: "fast" })).rejects.toThrow(/tps must be a number of ticks per second/); // 500 is clamped to 60, as in Croquet
  await expect(join("x", { token: "" })).rejects.toThrow(/token must be a non-empty string/);
  await expect(join("x", { token: 42 } as never)).rejects.toThrow(/token must be a string or a function/);
  await expect(join("x", { token: "t".repeat(5000) })).rejects.toThrow(/token is 5000 bytes; reflectors accept at most 3072/);
  await expect(join("n".repeat(300), { token: "t" })).rejects.toThrow(/with a token, name may be at most 256 bytes/);
});
