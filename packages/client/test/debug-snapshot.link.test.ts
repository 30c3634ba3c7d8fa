/**
 * `debug: "snapshot"` against the real reflector core (in-memory link, manual clock): the client
 * elected to upload says what it took, hashed and uploaded; a late joiner says what it loaded.
 */
import { createMemoryReflector, type MemoryReflector } from "@lockstep/test-support";
import { Model, Session, type LockstepSession } from "../src/index";

class Notes extends Model {
  notes: string[] = [];
  override init(): void {
    this.subscribe("notes", "add", this.add);
  }
  add(note: string): void {
    this.notes.push(note);
  }
}
Notes.register("Test.DebugSnapshot.Notes");

let mem: MemoryReflector;
const sessions: LockstepSession[] = [];

beforeEach(async () => {
  mem = await createMemoryReflector({ reflector: { snapshots: { everyMessages: 3 } } });
});

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.leave()));
  await mem.close();
});

test("snapshot: taking, voting, uploading, and loading, with sizes and times", async () => {
  const lines: string[] = [];
  const log = jest.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
  try {
    const join = async (): Promise<LockstepSession> => {
      const joining = Session.join({ appId: "test.debug", name: "snap", password: "pw", model: Notes, debug: "snapshot", socket: mem.socket, timers: mem.clock, reflector: mem.url });
      const session = await settle(joining);
      sessions.push(session);
      return session;
    };
    const a = await join();
    // One entry each (events of one turn would travel as one bundle).
    for (const note of ["one", "two", "three", "four"]) {
      a.view.publish("notes", "add", note);
      await mem.clock.advance(10);
    }
    await mem.clock.runUntil(() => lines.some((l) => /uploading/.test(l)), { maxMs: 10_000 });
    expect(lines.some((l) => /^\[Lockstep\] snapshot at #\d+: \d+(\.\d)?[KM]?B, serialized in \d+ ms, hashed in \d+ ms; voting$/.test(l))).toBe(true);
    expect(lines.some((l) => /^\[Lockstep\] snapshot at #\d+: this client was elected to upload it$/.test(l))).toBe(true);
    expect(lines.some((l) => /^\[Lockstep\] snapshot at #\d+: uploading \d+(\.\d)?[KM]?B encrypted in 1 chunk\(s\)$/.test(l))).toBe(true);

    // A late joiner boots from the stored snapshot.
    await mem.clock.advance(1000);
    const b = await join();
    expect(lines.some((l) => /^\[Lockstep\] snapshot: decrypted \d+(\.\d)?[KM]?B → \d+(\.\d)?[KM]?B in \d+ ms \(\d+ entries after it, up to #\d+\)$/.test(l))).toBe(true);
    expect(lines.some((l) => /^\[Lockstep\] snapshot: restored the state of #\d+ \(\d+(\.\d)?[KM]?B\) in \d+ ms$/.test(l))).toBe(true);
    expect((b.model as Notes).notes).toEqual(["one", "two", "three", "four"]);
    // Both replicas end identical.
    await mem.clock.advance(500);
    expect(await b.stateHash()).toBe(await a.stateHash());
  } finally {
    log.mockRestore();
  }
});

/** Awaits a join while driving the manual clock (the reflector's side runs only when it moves). */
async function settle<T>(promise: Promise<T>): Promise<T> {
  let done = false;
  const result = promise.finally(() => (done = true));
  while (!done) await mem.clock.advance(10);
  return result;
}
