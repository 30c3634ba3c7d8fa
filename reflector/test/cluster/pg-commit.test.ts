/**
 * The group commit's batching rules, with a fake statement: what goes out together, in what
 * order, within which limits, and what a deadlock or a failure does to the appends of a batch.
 */
import { GroupCommit, type PendingAppend } from "../../src/cluster/pg-commit";

function append(id: string, prevSeq: number, bytes = 1): PendingAppend {
  return { id, epoch: 1, prevSeq, newSeq: prevSeq + 1, newTime: prevSeq + 1, segment: new Uint8Array(bytes) };
}

/** A fake statement that records each batch and stores everything unless told otherwise. */
function recorder(answer: (batch: readonly PendingAppend[], call: number) => Promise<ReadonlySet<string>> = async (batch) => new Set(batch.map((a) => a.id))) {
  const batches: string[][] = [];
  const write = (batch: readonly PendingAppend[]): Promise<ReadonlySet<string>> => {
    batches.push(batch.map((a) => `${a.id}@${a.prevSeq}`));
    return answer(batch, batches.length);
  };
  return { batches, write };
}

test("appends submitted in one turn go out in one statement; those queued during a flush in the next", async () => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const { batches, write } = recorder(async (batch, call) => {
    if (call === 1) await gate;
    return new Set(batch.map((a) => a.id));
  });
  const commit = new GroupCommit(write);
  const first = [commit.submit(append("a", 0)), commit.submit(append("b", 0)), commit.submit(append("c", 0))];
  await new Promise((resolve) => setImmediate(resolve));
  const second = [commit.submit(append("d", 0)), commit.submit(append("e", 0))];
  release();
  expect(await Promise.all([...first, ...second])).toEqual([true, true, true, true, true]);
  expect(batches).toEqual([["a@0", "b@0", "c@0"], ["d@0", "e@0"]]);
  expect(commit.stats).toEqual({ flushes: 2, appends: 5, largestBatch: 3, retries: 0 });
  expect(commit.idle).toBe(true);
});

test("a batch holds at most one append per session, keeps each session's order, and stays within its limits", async () => {
  const { batches, write } = recorder();
  const commit = new GroupCommit(write, { maxSessions: 2, maxBytes: 10 });
  await Promise.all([
    commit.submit(append("a", 0, 8)),
    commit.submit(append("a", 1)),
    commit.submit(append("b", 0, 8)), // too big to join a's 8 bytes
    commit.submit(append("c", 0)),
    commit.submit(append("d", 0)), // a third session: over maxSessions
  ]);
  expect(batches).toEqual([["a@0", "c@0"], ["a@1", "b@0"], ["d@0"]]);
});

test("fenced appends resolve false; the others of the batch are stored", async () => {
  const { write } = recorder(async () => new Set(["b"]));
  const commit = new GroupCommit(write);
  expect(await Promise.all([commit.submit(append("a", 0)), commit.submit(append("b", 0))])).toEqual([false, true]);
});

test("a deadlocked batch is sent once more; a second failure, or any other, rejects every append of it", async () => {
  const deadlock = Object.assign(new Error("deadlock detected"), { code: "40P01" });
  let failures = 1;
  const { batches, write } = recorder(async (batch) => {
    if (failures-- > 0) throw deadlock;
    return new Set(batch.map((a) => a.id));
  });
  const commit = new GroupCommit(write);
  expect(await Promise.all([commit.submit(append("a", 0)), commit.submit(append("b", 0))])).toEqual([true, true]);
  expect(batches).toHaveLength(2);
  expect(commit.stats.retries).toBe(1);

  failures = 2;
  const results = await Promise.allSettled([commit.submit(append("a", 1)), commit.submit(append("b", 1))]);
  expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
  const broken = Object.assign(new Error("connection terminated"), { code: "57P01" });
  const once = new GroupCommit(async () => {
    throw broken;
  });
  await expect(once.submit(append("a", 0))).rejects.toBe(broken);
  expect(once.stats).toMatchObject({ flushes: 1, retries: 0 });
});
