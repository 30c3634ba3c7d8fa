/**
 * The real-socket tier of reconnecting: a real reflector on loopback and `ws` sockets through a
 * TCP-level WebSocket proxy that cuts connections. No fixed sleeps: every wait is for an event (a
 * root view built, an entry processed). Everything else about reconnecting (silent deaths and the
 * watchdog, restarts and backoff, leaving while reconnecting, fatal errors, autoSleep) runs on the
 * in-memory link and a manual clock in reconnect.link.test.ts, with exact times.
 */
import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { Session, View, type LockstepSession } from "../src/index";
import { backOnline, captureWhen } from "./int-helpers";
import { startProxy, type Proxy } from "./proxy";
import { Room } from "./room-model";


/** Counts root views built per viewId: a rejoin detaches the old one and builds a new one. */
class RoomView extends View {
  static built = new Map<string, number>();
  detached = false;
  constructor(model: Room) {
    super(model);
    RoomView.built.set(this.viewId, (RoomView.built.get(this.viewId) ?? 0) + 1);
  }
  override detach(): void {
    this.detached = true;
    super.detach();
  }
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

test("a dropped connection resumes by itself with the same viewId: the same view goes on, the others see no exit, the replicas agree", async () => {
  const name = `drop-${Date.now()}`;
  const a = (await Session.join({ ...base, name, reflector: proxy.url })) as R;
  const b = (await Session.join({ ...base, name, reflector: reflector.url })) as R;
  await writeAndCompare(a, "before", [a, b]);
  const view = a.view;
  const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
  try {
    const back = backOnline(a);
    proxy.cut();
    await back;
    expect(warn.mock.calls.some(([line]) => String(line).includes("lost the connection to the reflector"))).toBe(true);
  } finally {
    warn.mockRestore();
  }
  expect(view.detached).toBe(false);
  expect(a.view).toBe(view);
  expect(RoomView.built.get(a.viewId)).toBe(1);
  const [ha, hb] = await writeAndCompare(a, "after", [a, b]);
  expect(ha).toBe(hb);
  // Nothing lost, nothing doubled, nobody left.
  expect(a.model.lines).toEqual(["before", "after"]);
  expect(b.model.exits).toEqual([]);
  expect(b.model.present).toEqual([a.viewId, b.viewId]);
  await Promise.all([a.leave(), b.leave()]);
});
