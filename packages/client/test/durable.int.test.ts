import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startReflector, silentLogger, type Logger, type Reflector } from "@lockstep/reflector";
import { Model, Session, View, type LockstepSession } from "../src/index";
import { captureWhen } from "./int-helpers";
import { startReflectorProcess } from "./reflector-process";

/** A document with an edit log and a clock driven by futures: both must survive everything. */
class Journal extends Model {
  lines: string[] = [];
  beats = 0;
  override init(): void {
    this.subscribe("journal", "write", this.write);
    this.future(100).beat();
  }
  write(line: string): void {
    this.lines.push(line);
  }
  beat(): void {
    this.beats++;
    this.publish("journal", "beat", this.beats);
    this.future(100).beat();
  }
}
Journal.register("DurableInt.Journal");

const base = { appId: "test.lockstep.durable", password: "pw", model: Journal, view: View };
type J = LockstepSession<Journal>;

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "lockstep-durable-"));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

/** Publishes `count` lines from `from` and resolves once every session's model has `total` lines (all relayed). */
async function write(from: J, prefix: string, count: number, total: number, all: J[]): Promise<void> {
  const done = Promise.all(all.map((s) => captureWhen(s, () => s.model.lines.length === total)));
  for (let i = 0; i < count; i++) from.view.publish("journal", "write", `${prefix}${i}`);
  await done;
}

test("everyone leaves; the session is dropped from memory; rejoining later continues from the exact state", async () => {
  let dropped!: () => void;
  const droppedFromMemory = new Promise<void>((resolve) => (dropped = resolve));
  const logger: Logger = { ...silentLogger, info: (event: string) => event === "session.dropped" && dropped() };
  const reflector: Reflector = await startReflector({ port: 0, logger, dataDir, sessionIdleMs: 10, snapshots: { everyMessages: 25 } });
  try {
    const a = (await Session.join({ ...base, name: "leave", reflector: reflector.url })) as J;
    const b = (await Session.join({ ...base, name: "leave", reflector: reflector.url })) as J;
    await write(a, "a", 40, 40, [a, b]);
    await write(b, "b", 40, 80, [a, b]);
    const lines = a.model.lines.slice();
    await Promise.all([a.leave(), b.leave()]);
    await droppedFromMemory;
    expect(reflector.stats().sessions).toBe(0);
    const c = (await Session.join({ ...base, name: "leave", reflector: reflector.url })) as J;
    expect(c.id).toBe(a.id);
    expect(c.model.lines).toEqual(lines);
    // Pending futures came back with the state: the beat goes on from where it was.
    const before = c.model.beats;
    await new Promise<void>((resolve) => c.view.subscribe("journal", "beat", (n: number) => n === before + 1 && resolve()));
    const d = (await Session.join({ ...base, name: "leave", reflector: reflector.url })) as J;
    const points = [c, d].map((s) => captureWhen(s, () => s.model.lines.length === lines.length + 1));
    c.view.publish("journal", "write", "after");
    const [pc, pd] = await Promise.all(points);
    expect(pc!.hash).toBe(pd!.hash);
    await Promise.all([c.leave(), d.leave()]);
  } finally {
    await reflector.close();
  }
});

test("a reflector killed with SIGKILL and restarted on its data directory loses no relayed message", async () => {
  const first = await startReflectorProcess(["--data-dir", dataDir, "--snapshot-messages", "30"]);
  const a = (await Session.join({ ...base, name: "kill", reflector: first.url })) as J;
  const b = (await Session.join({ ...base, name: "kill", reflector: first.url })) as J;
  await write(a, "a", 45, 45, [a, b]);
  await write(b, "b", 20, 65, [a, b]);
  // Now kill it mid-burst: while a is still publishing, right when b has seen 40 more lines.
  const quiet = jest.spyOn(console, "error").mockImplementation(() => {});
  const killed = new Promise<void>((resolve) => {
    const stop = b.afterEntry(() => {
      if (b.model.lines.length < 105) return;
      stop();
      first.child.kill("SIGKILL");
      resolve();
    });
  });
  for (let i = 0; i < 300; i++) a.view.publish("journal", "write", `burst${i}`);
  await killed;
  await first.kill9();
  // Every line a client has seen was relayed, so it must survive the kill.
  const seen = b.model.lines.length >= a.model.lines.length ? b.model.lines.slice() : a.model.lines.slice();
  expect(seen.length).toBeGreaterThanOrEqual(105);
  await Promise.all([a.leave(), b.leave()]);
  quiet.mockRestore();

  const second = await startReflectorProcess(["--data-dir", dataDir, "--snapshot-messages", "30"]);
  try {
    const c = (await Session.join({ ...base, name: "kill", reflector: second.url })) as J;
    expect(c.id).toBe(a.id);
    // Storage may hold a few more (stored, not yet relayed when the process died), never fewer.
    expect(c.model.lines.slice(0, seen.length)).toEqual(seen);
    const d = (await Session.join({ ...base, name: "kill", reflector: second.url })) as J;
    const restored = c.model.lines.length;
    const points = [c, d].map((s) => captureWhen(s, () => s.model.lines.length === restored + 1));
    d.view.publish("journal", "write", "after restart");
    const [pc, pd] = await Promise.all(points);
    expect(pc!.hash).toBe(pd!.hash);
    await Promise.all([c.leave(), d.leave()]);
  } finally {
    expect(await second.stop()).toBe(0);
  }
});
