import { MessageType, type StreamEntry } from "@lockstep/protocol";
import { SessionDamagedError, SessionStore, StorageError, type BlobStore, type StoredSessionMeta } from "../../src/storage";

/**
 * The session state a restarted reflector resumes from, beyond the log: the durable time watermark
 * (`putTime`, `timeWatermark`) and the live views (`StoredSnapshot.views`, `liveViews`). One suite,
 * run on every adapter: memory and fs in session-state.test.ts, PostgreSQL in pg.int.test.ts.
 */

/** An adapter under test: a fresh store, and a way to close it and open the same data again. */
export interface SessionStateFixture {
  readonly store: BlobStore;
  /** Closes `store` (if the adapter can reopen) and returns a store on the same data: a restart. */
  reopen(): Promise<BlobStore>;
  cleanup(): Promise<void>;
}

const DAY = 24 * 60 * 60 * 1000;
const CLOCK = "sessions/S/clock";
const SNAPSHOT = "sessions/S/snapshot";
const meta: StoredSessionMeta = { sessionId: "S", persistentId: "p-S", tps: 20, verifier: new Uint8Array([1, 2]), check: new Uint8Array([3]), createdAt: 1_000 };

type Step = ["join" | "exit", string] | ["relay"];
/** Entries from seq `from` on, one per step, 10 ms of session time per seq. */
function stream(from: number, ...steps: Step[]): StreamEntry[] {
  return steps.map((step, i): StreamEntry => {
    const seq = from + i;
    const time = seq * 10;
    if (step[0] === "join") return { type: MessageType.ViewJoin, seq, time, viewId: step[1], viewData: new Uint8Array([seq & 0xff]) };
    if (step[0] === "exit") return { type: MessageType.ViewExit, seq, time, viewId: step[1] };
    return { type: MessageType.Relay, seq, time, payload: new Uint8Array([seq & 0xff]) };
  });
}

async function rejectionOf(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  return error as StorageError;
}

/** Runs the session-state suite on the adapter `make` opens. */
export function runSessionStateSuite(name: string, make: () => Promise<SessionStateFixture>): void {
  describe(`SessionStore time watermark and live views on ${name}`, () => {
    let fixture: SessionStateFixture;
    let store: BlobStore;
    let now: number;
    let sessions: SessionStore;
    /** A fresh SessionStore on the same blobs: what a restarted reflector sees. */
    const restarted = (): SessionStore => new SessionStore(store, { now: () => now });

    beforeEach(async () => {
      fixture = await make();
      store = fixture.store;
      now = 100 * DAY;
      sessions = restarted();
      await sessions.create(meta);
    });

    afterEach(async () => {
      await store.close();
      await fixture.cleanup();
    });

    describe("time watermark", () => {
      test("putTime is stored as a clock record and loads back as timeWatermark, also after a restart", async () => {
        await sessions.putTime("S", 5_000);
        expect(await store.get(CLOCK)).toEqual(Uint8Array.from([0x43, 1, 0x88, 0x27])); // "C", format 1, varUint 5000
        expect((await sessions.load("S"))?.timeWatermark).toBe(5_000);
        store = await fixture.reopen();
        expect((await restarted().load("S"))?.timeWatermark).toBe(5_000);
      });

      test("a lower or equal time is ignored: the watermark never decreases", async () => {
        await sessions.putTime("S", 5_000);
        await sessions.putTime("S", 4_999);
        await sessions.putTime("S", 5_000);
        await restarted().putTime("S", 0);
        expect((await restarted().load("S"))?.timeWatermark).toBe(5_000);
        await sessions.putTime("S", 7_000);
        expect((await restarted().load("S"))?.timeWatermark).toBe(7_000);
      });

      test("an exact putTime (a clean stop) may lower the watermark, never below the last entry's time", async () => {
        await sessions.appendEntries("S", [{ type: MessageType.Relay, seq: 1, time: 2_000, payload: Uint8Array.of(1) }]);
        await sessions.putTime("S", 9_000);
        await sessions.putTime("S", 3_000, { exact: true });
        expect((await restarted().load("S"))?.timeWatermark).toBe(3_000);
        await sessions.putTime("S", 1_000, { exact: true });
        expect((await restarted().load("S"))?.timeWatermark).toBe(2_000);
      });

      test("concurrent putTime calls leave the highest time", async () => {
        await Promise.all([sessions.putTime("S", 300), sessions.putTime("S", 900), sessions.putTime("S", 600), sessions.putTime("S", 100)]);
        expect((await restarted().load("S"))?.timeWatermark).toBe(900);
      });

      test("the watermark is never below lastTime, of an entry or of the snapshot", async () => {
        expect((await sessions.load("S"))?.timeWatermark).toBe(0);
        await sessions.appendEntries("S", stream(1, ["relay"], ["relay"], ["relay"]));
        await sessions.putTime("S", 15);
        expect(await restarted().load("S")).toMatchObject({ lastTime: 30, timeWatermark: 30 });
        await sessions.putSnapshot("S", { seq: 3, time: 30, bytes: new Uint8Array([1]) });
        expect(await restarted().load("S")).toMatchObject({ entries: [], lastTime: 30, timeWatermark: 30 });
        await sessions.putTime("S", 31);
        expect(await restarted().load("S")).toMatchObject({ lastTime: 30, timeWatermark: 31 });
      });

      test("putTime of an unknown session or a bad time fails and writes nothing", async () => {
        expect((await rejectionOf(sessions.putTime("nobody", 10))).message).toMatch(/not stored; create\(\) it first/);
        for (const time of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
          expect((await rejectionOf(sessions.putTime("S", time))).message).toMatch(/time must be a non-negative integer/);
        }
        await rejectionOf(sessions.putTime("a/b", 10));
        expect(await store.list("sessions/nobody/")).toEqual([]);
        expect(await store.get(CLOCK)).toBeUndefined();
      });

      test("a corrupt clock record is permanent damage naming the key, and putTime does not overwrite it", async () => {
        const damaged = [[], [0x43], [0x43, 1], [0x43, 1, 0x80], [0x43, 2, 5], [0x53, 1, 5], [0x43, 1, 5, 0]];
        for (const bytes of damaged) {
          await store.put(CLOCK, Uint8Array.from(bytes));
          const error = await rejectionOf(restarted().load("S"));
          expect(error).toBeInstanceOf(SessionDamagedError);
          expect(error).toMatchObject({ key: CLOCK, sessionId: "S", damaged: true });
          expect(error.message).toMatch(/"sessions\/S\/clock" is corrupt: .*Session S cannot be loaded until this is repaired/);
          expect(await rejectionOf(restarted().putTime("S", 1_000_000))).toBeInstanceOf(SessionDamagedError);
          expect(await store.get(CLOCK)).toEqual(Uint8Array.from(bytes));
        }
      });

      test("putTime waits for maintenance, never for appends", async () => {
        let release: () => void = () => undefined;
        const held = new Promise<void>((resolve) => (release = resolve));
        let started: () => void = () => undefined;
        const clockPutStarted = new Promise<void>((resolve) => (started = resolve));
        const slowClock: BlobStore = {
          get: (key) => store.get(key),
          list: (prefix) => store.list(prefix),
          delete: (key) => store.delete(key),
          put: async (key, value) => {
            if (key === CLOCK) {
              started();
              await held;
            }
            return store.put(key, value);
          },
          close: async () => undefined,
        };
        const slow = new SessionStore(slowClock, { now: () => now });
        await slow.load("S");
        const putTime = slow.putTime("S", 500);
        await clockPutStarted;
        // The clock put is held: appends go on, maintenance (a snapshot) queues behind it.
        await slow.appendEntries("S", stream(1, ["join", "A"], ["relay"]));
        let snapshotDone = false;
        const snapshot = slow.putSnapshot("S", { seq: 2, time: 20, views: ["A"], bytes: new Uint8Array([2]) }).then(() => (snapshotDone = true));
        await slow.appendEntries("S", stream(3, ["relay"]));
        expect(snapshotDone).toBe(false);
        release();
        await Promise.all([putTime, snapshot]);
        expect(await restarted().load("S")).toMatchObject({ lastSeq: 3, timeWatermark: 500, liveViews: ["A"], snapshot: { seq: 2 } });
      });

      test("deleting a session removes its clock with every other key, and a new session starts from 0", async () => {
        await sessions.appendEntries("S", stream(1, ["join", "A"], ["relay"]));
        await sessions.putSnapshot("S", { seq: 1, time: 10, views: ["A"], bytes: new Uint8Array([1]) });
        await sessions.putTime("S", 9_000);
        expect(await store.list("sessions/S/")).toContain(CLOCK);
        now += 31 * DAY;
        expect(await sessions.collectGarbage()).toBe(1);
        expect(await store.list("")).toEqual([]);
        expect(await rejectionOf(sessions.putTime("S", 10_000))).not.toBeInstanceOf(SessionDamagedError);

        // A clock left by a deletion that a crash interrupted must not leak into a new session.
        await store.put(CLOCK, Uint8Array.from([0x43, 1, 0x7f]));
        await sessions.create(meta);
        expect(await store.get(CLOCK)).toBeUndefined();
        expect((await restarted().load("S"))?.timeWatermark).toBe(0);
      });
    });

    describe("live views", () => {
      test("without a snapshot: the joins and exits of the whole log, in first-join order", async () => {
        await sessions.appendEntries("S", stream(1, ["join", "A"], ["join", "B"], ["relay"]));
        await sessions.appendEntries("S", stream(4, ["exit", "A"]));
        expect((await sessions.load("S"))?.liveViews).toEqual(["B"]);
        await sessions.appendEntries("S", stream(5, ["join", "C"], ["join", "B"], ["exit", "nobody"], ["join", "A"]));
        expect((await restarted().load("S"))?.liveViews).toEqual(["B", "C", "A"]);
        await sessions.appendEntries("S", stream(9, ["exit", "B"], ["join", "B"]));
        expect((await restarted().load("S"))?.liveViews).toEqual(["C", "A", "B"]);
      });

      test("with a snapshot: its views, then the joins and exits after it", async () => {
        await sessions.appendEntries("S", stream(1, ["join", "A"], ["join", "B"], ["relay"]));
        await sessions.putSnapshot("S", { seq: 3, time: 30, views: ["A", "B"], bytes: new Uint8Array([3]) });
        await sessions.appendEntries("S", stream(4, ["exit", "B"], ["join", "C"]));
        const loaded = await restarted().load("S");
        expect(loaded?.snapshot).toEqual({ seq: 3, time: 30, views: ["A", "B"], bytes: new Uint8Array([3]) });
        expect(loaded?.entries).toEqual(stream(4, ["exit", "B"], ["join", "C"]));
        expect(loaded?.liveViews).toEqual(["A", "C"]);
        store = await fixture.reopen();
        expect((await restarted().load("S"))?.liveViews).toEqual(["A", "C"]);
      });

      test("a snapshot stored without views counts as none, and is written as format 2", async () => {
        await sessions.appendEntries("S", stream(1, ["join", "A"], ["relay"], ["join", "B"]));
        await sessions.putSnapshot("S", { seq: 2, time: 20, bytes: new Uint8Array([7, 7]) });
        expect(await store.get(SNAPSHOT)).toEqual(Uint8Array.from([0x53, 2, 2, 20, 0, 7, 7]));
        expect(await restarted().load("S")).toMatchObject({ snapshot: { views: [] }, liveViews: ["B"] });
      });

      test("the format-2 snapshot record: header, views as length-prefixed UTF-8, then the bytes", async () => {
        await sessions.appendEntries("S", stream(1, ["join", "A"], ["join", "é"]));
        await sessions.putSnapshot("S", { seq: 2, time: 20, views: ["A", "é"], bytes: new Uint8Array([9]) });
        expect(await store.get(SNAPSHOT)).toEqual(Uint8Array.from([0x53, 2, 2, 20, 2, 1, 0x41, 2, 0xc3, 0xa9, 9]));
        expect((await restarted().load("S"))?.liveViews).toEqual(["A", "é"]);
      });

      test("a format-1 snapshot still loads, with its views unknown (undefined), also after reopening", async () => {
        await sessions.appendEntries("S", stream(1, ["join", "A"], ["relay"], ["join", "B"], ["exit", "A"]));
        await sessions.putSnapshot("S", { seq: 2, time: 20, views: ["A"], bytes: new Uint8Array([1]) });
        // What an older reflector wrote: "S", format 1, varUint seq, varUint time, then the bytes.
        await store.put(SNAPSHOT, Uint8Array.from([0x53, 1, 2, 20, 0xaa, 0xbb]));
        for (let round = 0; round < 2; round++) {
          const loaded = await restarted().load("S");
          expect(loaded?.snapshot).toEqual({ seq: 2, time: 20, bytes: new Uint8Array([0xaa, 0xbb]) });
          expect(loaded?.snapshot?.views).toBeUndefined();
          expect(loaded?.entries).toEqual(stream(3, ["join", "B"], ["exit", "A"]));
          expect(loaded?.liveViews).toBeUndefined();
          store = await fixture.reopen();
        }
        // The next snapshot is format 2 and makes the views known again.
        await restarted().putSnapshot("S", { seq: 4, time: 40, views: ["B"], bytes: new Uint8Array([4]) });
        expect((await restarted().load("S"))?.liveViews).toEqual(["B"]);
      });

      test("a damaged list of views is permanent damage naming the snapshot", async () => {
        await sessions.appendEntries("S", stream(1, ["join", "A"]));
        const damaged = [
          [0x53, 2, 1, 10], // the view count is missing
          [0x53, 2, 1, 10, 5, 1, 0x41], // claims more views than bytes remain
          [0x53, 2, 1, 10, 1, 4, 0x41], // a view id runs past the end
          [0x53, 2, 1, 10, 1, 1, 0xff], // a view id that is not UTF-8
          [0x53, 2, 1, 10, 2, 1, 0x41, 1, 0x41], // a view named twice
          [0x53, 3, 1, 10, 0], // a format this reflector does not read
        ];
        for (const bytes of damaged) {
          await store.put(SNAPSHOT, Uint8Array.from(bytes));
          const error = await rejectionOf(restarted().load("S"));
          expect(error).toBeInstanceOf(SessionDamagedError);
          expect(error).toMatchObject({ key: SNAPSHOT, sessionId: "S" });
        }
      });

      test("putSnapshot refuses views that are not distinct strings, and writes nothing", async () => {
        await sessions.appendEntries("S", stream(1, ["join", "A"]));
        for (const views of [["A", "A"], ["A", 7], "A"] as unknown as string[][]) {
          const error = await rejectionOf(sessions.putSnapshot("S", { seq: 1, time: 10, views, bytes: new Uint8Array() }));
          expect(error.message).toMatch(/views must be an array of distinct view id strings/);
        }
        expect(await store.get(SNAPSHOT)).toBeUndefined();
      });
    });
  });
}
