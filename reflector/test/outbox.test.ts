import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageType, type StreamEntry } from "@lockstep/protocol";
import { Outbox } from "../src/outbox";
import { SessionStore, StorageError, createMemoryStore } from "../src/storage";
import { openFsStore } from "../src/storage/fs-store";
import { TestIo } from "./storage/fs-test-io";

// The outbox relays an entry only once storage has it and every entry before it: with several
// batches in flight (storage that lands writes in order), still strictly in stamp order.

const entry = (seq: number): StreamEntry => ({ type: MessageType.Relay, seq, time: seq * 10, payload: new Uint8Array([seq]) });
const frameOf = (seq: number): Uint8Array => new Uint8Array([0xf0, seq]);
const ticks = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** An outbox over a persist whose writes the test settles one by one. */
function harness(maxInFlight: number) {
  const writes: { seqs: number[]; resolve(): void; reject(error: unknown): void }[] = [];
  const delivered: number[] = [];
  const errors: { error: unknown; seqs: number[] }[] = [];
  const outbox = new Outbox({
    persist: (entries) => new Promise<void>((resolve, reject) => writes.push({ seqs: entries.map((e) => e.seq), resolve, reject })),
    deliver: (frame, e) => {
      expect(frame).toEqual(frameOf(e.seq));
      delivered.push(e.seq);
    },
    onError: (error, entries) => errors.push({ error, seqs: entries.map((e) => e.seq) }),
    maxInFlight,
  });
  const push = (...seqs: number[]): void => {
    for (const seq of seqs) outbox.push(entry(seq), frameOf(seq));
  };
  return { outbox, writes, delivered, errors, push };
}

describe("Outbox with batches in flight", () => {
  test("the first entry is written at once, the rest of the callback in a second batch; a later batch stored first waits for the earlier", async () => {
    const { outbox, writes, delivered, push } = harness(4);
    push(1, 2, 3);
    expect(writes.map((w) => w.seqs)).toEqual([[1]]);
    await Promise.resolve();
    expect(writes.map((w) => w.seqs)).toEqual([[1], [2, 3]]);
    push(4);
    await ticks();
    expect(writes.map((w) => w.seqs)).toEqual([[1], [2, 3], [4]]);
    writes[1]!.resolve();
    writes[2]!.resolve();
    await ticks();
    expect(delivered).toEqual([]);
    expect(outbox.pending).toBe(true);
    writes[0]!.resolve();
    await outbox.drained();
    expect(delivered).toEqual([1, 2, 3, 4]);
    expect(outbox.pending).toBe(false);
  });

  test("at most maxInFlight batches are written at once; what gathers meanwhile is one batch, started when one retires", async () => {
    const { outbox, writes, delivered, push } = harness(2);
    push(1);
    push(2);
    await ticks();
    push(3);
    push(4);
    await ticks();
    expect(writes.map((w) => w.seqs)).toEqual([[1], [2]]);
    writes[0]!.resolve();
    await ticks();
    expect(delivered).toEqual([1]);
    expect(writes.map((w) => w.seqs)).toEqual([[1], [2], [3, 4]]);
    writes[1]!.resolve();
    writes[2]!.resolve();
    await outbox.drained();
    expect(delivered).toEqual([1, 2, 3, 4]);
  });

  test("a failed batch: nothing from it on is relayed, even a later batch that was stored; the owner hears once, with every lost entry", async () => {
    const { outbox, writes, delivered, errors, push } = harness(4);
    push(1);
    await ticks();
    push(2);
    await ticks();
    push(3);
    await ticks();
    expect(writes).toHaveLength(3);
    writes[0]!.resolve();
    writes[2]!.resolve();
    await ticks();
    expect(delivered).toEqual([1]);
    const failure = new Error("disk full");
    writes[1]!.reject(failure);
    await ticks();
    push(4); // stamped after the failure: dropped
    await outbox.drained();
    expect(delivered).toEqual([1]);
    expect(errors).toEqual([{ error: failure, seqs: [2, 3] }]);
    expect(writes).toHaveLength(3);
  });

  test("a stored batch of several entries goes to deliverAll at once, in order; one entry goes to deliver", async () => {
    const calls: number[][] = [];
    const writes: (() => void)[] = [];
    const outbox = new Outbox({
      persist: () => new Promise<void>((resolve) => writes.push(resolve)),
      deliver: (_, e) => calls.push([e.seq]),
      deliverAll: (frames, entries) => {
        expect(frames).toEqual(entries.map((e) => frameOf(e.seq)));
        calls.push(entries.map((e) => e.seq));
      },
      onError: () => undefined,
      maxInFlight: 4,
    });
    for (const seq of [1, 2, 3, 4]) outbox.push(entry(seq), frameOf(seq));
    await ticks();
    for (const resolve of writes) resolve();
    await outbox.drained();
    expect(calls).toEqual([[1], [2, 3, 4]]);
  });

  test("with maxInFlight 1 (the default), each batch waits for the one before", async () => {
    const { writes, push } = harness(1);
    push(1);
    await ticks();
    push(2);
    await ticks();
    expect(writes.map((w) => w.seqs)).toEqual([[1]]);
    writes[0]!.resolve();
    await ticks();
    expect(writes.map((w) => w.seqs)).toEqual([[1], [2]]);
  });
});

describe("SessionStore appends in flight on an ordered store", () => {
  const meta = { sessionId: "S", persistentId: "p-S", tps: 20, verifier: new Uint8Array([1]), check: new Uint8Array([2]), createdAt: 1_000 };
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "lockstep-outbox-"));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("the memory and filesystem stores allow appends in flight; a store without orderedWrites does not", async () => {
    expect(new SessionStore(createMemoryStore()).appendsInFlight).toBeGreaterThan(1);
    const fs = await openFsStore(dir, {}, new TestIo());
    expect(new SessionStore(fs).appendsInFlight).toBeGreaterThan(1);
    await fs.close();
    const plain = createMemoryStore();
    const unordered = { get: plain.get.bind(plain), put: plain.put.bind(plain), delete: plain.delete.bind(plain), list: plain.list.bind(plain), close: plain.close.bind(plain) };
    expect(new SessionStore(unordered).appendsInFlight).toBe(1);
  });

  test("appends issued without waiting land in order; when the first fails the second fails too, and the session continues from what is stored", async () => {
    const io = new TestIo();
    const fs = await openFsStore(dir, {}, io);
    const sessions = new SessionStore(fs);
    await sessions.create(meta);
    await sessions.appendEntries("S", [entry(1)]);

    // Both in flight: the first held at its sync, the second written meanwhile.
    let sync = io.hold("datasync");
    const second = sessions.appendEntries("S", [entry(2)]);
    await sync.reached;
    const third = sessions.appendEntries("S", [entry(3)]);
    await ticks();
    sync.release();
    await Promise.all([second, third]);
    expect((await sessions.load("S"))!.entries.map((e) => e.seq)).toEqual([1, 2, 3]);

    sync = io.hold("datasync");
    const fourth = sessions.appendEntries("S", [entry(4)]).catch((e: unknown) => e);
    await sync.reached;
    const fifth = sessions.appendEntries("S", [entry(5)]).catch((e: unknown) => e);
    await ticks();
    io.fail("datasync", "EIO");
    sync.release();
    expect(await fourth).toBeInstanceOf(StorageError);
    expect(await fifth).toBeInstanceOf(StorageError);
    // Neither is stored, and the next append continues the stored log (seq 4 again), not the lost one.
    expect((await sessions.load("S"))!.entries.map((e) => e.seq)).toEqual([1, 2, 3]);
    await expect(sessions.appendEntries("S", [entry(6)])).rejects.toThrow(StorageError);
    await sessions.appendEntries("S", [entry(4)]);
    expect((await sessions.load("S"))!.entries.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    await fs.close();
  });
});
