import { Session, View, type LockstepSession } from "@lockstep/client";
import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { expectSame, hashesWhen } from "@lockstep/test-support";
import { HelloModel } from "./model";

/** The example's model, driven headless: a view that records what the model tells it. */
class RecordingView extends View {
  seen: number[] = [];
  #waiters: Array<{ pred: (seen: number[]) => boolean; resolve: () => void }> = [];
  constructor(model: HelloModel) {
    super(model);
    this.subscribe("counter", "changed", this.changed);
  }
  changed(count: number): void {
    this.seen.push(count);
    this.#waiters = this.#waiters.filter((w) => !(w.pred(this.seen) && (w.resolve(), true)));
  }
  /** Resolves once what this view has seen satisfies `pred`. */
  when(pred: (seen: number[]) => boolean): Promise<void> {
    if (pred(this.seen)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ pred, resolve }));
  }
}

let reflector: Reflector;
beforeAll(async () => {
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });
});
afterAll(() => reflector.close());

function join(): Promise<LockstepSession<HelloModel, RecordingView>> {
  return Session.join({
    appId: "dev.lockstep.hello",
    name: "hello-test",
    password: "pw",
    model: HelloModel,
    view: RecordingView,
    reflector: reflector.url,
    tps: 60,
  });
}

test("two clients count together and a reset reaches both", async () => {
  const a = await join();
  const b = await join();
  expect(b.id).toBe(a.id);
  // The model counts once a second of session time; both views see it climb.
  await Promise.all([a.view.when((seen) => seen.includes(2)), b.view.when((seen) => seen.includes(2))]);
  // Both replicas at one point of the stream: right after the reset (counting is at 2 or more now).
  const reset = hashesWhen([a, b], (s) => s.model.count === 0);
  const before = b.view.seen.length;
  a.view.publish("counter", "reset");
  await b.view.when((seen) => seen.slice(before).includes(0));
  expect(b.model.count).toBeLessThan(2);
  expectSame(await reset);
  await Promise.all([a.leave(), b.leave()]);
});
