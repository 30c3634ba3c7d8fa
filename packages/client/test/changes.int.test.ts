// session.on("change") and session.viewIds, the client's hooks for UI libraries (the React
// bindings re-read models on "change"), against a real reflector.
import { Model, Session, View, type LockstepSession } from "@lockstep/client";
import { silentLogger, startReflector, type Reflector } from "@lockstep/reflector";
import { ChangeNotifier } from "../src/session/changes";
import type { VirtualMachine } from "../src/kernel/vm";

class Tally extends Model {
  n = 0;
  later = 0;
  override init(): void {
    this.subscribe("tally", "inc", this.inc);
    this.subscribe("tally", "incLater", this.incLater);
  }
  inc(): void {
    this.n++;
  }
  incLater(): void {
    this.future(30).bump();
  }
  bump(): void {
    this.later++;
  }
}
Tally.register("ChangesTestTally");

let reflector: Reflector;
beforeAll(async () => {
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });
});
afterAll(() => reflector.close());

const join = (name: string): Promise<LockstepSession<Tally>> => Session.join({ appId: "dev.lockstep.changes-test", name, password: "pw", model: Tally, view: View, reflector: reflector.url, tps: 60 });

/**
 * Resolves at the first "change" after which `pred()` holds, with what the listener saw, or at
 * once if it holds already: a change can land before the listener does (`b.leave()` waits for
 * its socket's closing handshake, and `a` may apply the exit and draw its frame first).
 */
function changeWhen(session: LockstepSession<Tally>, pred: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (pred()) return resolve();
    const stop = session.on("change", () => {
      if (!pred()) return;
      stop();
      resolve();
    });
  });
}

test("\"change\" follows events and futures: the listener sees the state they made", async () => {
  const a = await join("changes-1");
  const b = await join("changes-1");
  const sawInc = changeWhen(a, () => a.model.n === 1);
  b.view.publish("tally", "inc");
  await sawInc;
  // No event changes `later`: only the future does.
  const sawFuture = changeWhen(a, () => a.model.later === 1);
  b.view.publish("tally", "incLater");
  await sawFuture;
  expect(a.viewIds).toEqual([a.viewId, b.viewId]);
  await b.leave();
  await changeWhen(a, () => a.viewIds.length === 1);
  expect(a.viewIds).toEqual([a.viewId]);
  expect(() => a.on("nope" as "change", () => {})).toThrow(/unknown event "nope"/);
  await a.leave();
});

test("ChangeNotifier calls its listeners only when the VM on screen or its revision moved", () => {
  const calls: number[] = [];
  const errors: unknown[] = [];
  const changes = new ChangeNotifier((_context, error) => errors.push(error));
  const stop = changes.on(() => calls.push(1));
  changes.on(() => {
    throw new Error("a listener's bug");
  });
  const vm = { revision: 0 } as VirtualMachine;
  changes.frame(vm); // the first VM seen
  changes.frame(vm); // nothing ran
  vm.revision++;
  changes.frame(vm);
  changes.frame({ revision: 1 } as VirtualMachine); // a rejoin replaced the replica
  expect(calls).toHaveLength(3);
  expect(errors).toHaveLength(3); // reported, and the other listeners still ran
  stop();
  vm.revision++;
  changes.frame(vm);
  expect(calls).toHaveLength(3);
});
