/**
 * The real-socket tier of reconnecting: a real reflector on loopback and `ws` sockets through a
 * TCP-level WebSocket proxy that cuts connections. No fixed sleeps: every wait is for an event (a
 * root view built, an entry processed). Everything else about reconnecting (silent deaths and the
 * watchdog, restarts and backoff, leaving while reconnecting, fatal errors, autoSleep) runs on the
 * in-memory link and a manual clock in reconnect.link.test.ts, with exact times.
 */
import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { Session, View, type LockstepSession } from "../src/index";
import { captureWhen } from "./int-helpers";
import { startProxy, type Proxy } from "./proxy";
import { Room } from "./room-model";


/** Counts root views built per viewId: a rejoin detaches the old one and builds a new one. */
class RoomView extends View {
  static built = new Map<string, number>();
  static waiters: Array<() => void> = [];
  detached = false;
  constructor(model: Room) {
    super(model);
    RoomView.built.set(this.viewId, (RoomView.built.get(this.viewId) ?? 0) + 1);
    for (const w of RoomView.waiters.splice(0)) w();
  }
  override detach(): void {
    this.detached = true;
    super.detach();
  }
}

/** Resolves once `session` has built `n` root views (the first join counts as one). */
async function viewsBuilt(session: LockstepSession, n: number): Promise<void> {
  while ((RoomView.built.get(session.viewId) ?? 0) < n) await new Promise<void>((resolve) => RoomView.waiters.push(resolve));
}

type R = LockstepSession<Room, RoomView>;
const base = { appId: "test.lockstep.reconnect", password: "pw", model: Room, view: RoomView, tps: 30 };

/** Writes `line` from `from` and resolves with every session's state hash right after it. */
async function writeAndCompare(from: R, line: string, all: R[]): Promise<string[]> {
  const points = all.map((s) => captureWhen(s, () => s.model.lines.includes(line)));
  from.view.publish("room", "write", line);
  const reached = await Promise.all(points);
  expect(new Set(reached.map((r) => r.seq)).size).toBe(1);
  return reached.map((r) => r.hash);
}

let reflector: Reflector;
let proxy: Proxy;
beforeEach(async () => {
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });
  proxy = await startProxy(reflector.url);
});
afterEach(async () => {
  await proxy.close();
  await reflector.close();
});

test("a dropped connection rejoins by itself with the same viewId: the others see its exit and join, and the replicas agree", async () => {
  const name = `drop-${Date.now()}`;
  const a = (await Session.join({ ...base, name, reflector: proxy.url })) as R;
  const b = (await Session.join({ ...base, name, reflector: reflector.url })) as R;
  await writeAndCompare(a, "before", [a, b]);
  const oldView = a.view;
  const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
  try {
    proxy.cut();
    await viewsBuilt(a, 2);
    expect(warn.mock.calls.some(([line]) => String(line).includes("lost the connection to the reflector"))).toBe(true);
  } finally {
    warn.mockRestore();
  }
  expect(oldView.detached).toBe(true);
  expect(a.view).not.toBe(oldView);
  const [ha, hb] = await writeAndCompare(a, "after", [a, b]);
  expect(ha).toBe(hb);
  // Nothing lost, nothing doubled; one exit for the dropped connection, then the rejoin.
  expect(a.model.lines).toEqual(["before", "after"]);
  expect(b.model.exits).toEqual([a.viewId]);
  expect(b.model.joins.filter((v) => v === a.viewId)).toHaveLength(2);
  expect(b.model.present).toEqual([b.viewId, a.viewId]); // a exited, then joined again
  await Promise.all([a.leave(), b.leave()]);
});
