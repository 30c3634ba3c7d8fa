/**
 * Unit tests of a client's part in snapshots (session/snapshots.ts, `Snapshotter`): the vote,
 * the upload when elected, divergence reports and how long the serialized state is kept. No
 * reflector: frames go to a recorder that decodes them; time is a ManualClock. The vote's HMAC is
 * WebCrypto (asynchronous, off the event loop), so tests wait for the frame itself, not for time.
 */
import {
  DEFAULT_LIMITS,
  MessageType,
  decodeClientMessage,
  type ClientMessage,
  type SnapshotChunkMessage,
  type SnapshotVoteMessage,
} from "@lockstep/protocol";
import { ManualClock, sameBytes, testRng } from "@lockstep/test-support";
import { BULK_ENVELOPE_VERSION, deriveSessionKeys, hmac, open, openBulk, type SessionKeys } from "../src/session/crypto";
import { Snapshotter } from "../src/session/snapshots";

let keys: SessionKeys;

beforeAll(async () => {
  keys = await deriveSessionKeys("snapshot password", "snapshots-test", "snapshots-session");
});

/** A Snapshotter on a ManualClock whose frames are decoded and recorded. */
function setup() {
  const clock = new ManualClock();
  const sent: ClientMessage[] = [];
  const errors: unknown[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const snapshotter = new Snapshotter(
    keys,
    clock,
    (frame) => {
      sent.push(decodeClientMessage(frame));
      for (const w of waiters.splice(0)) {
        if (sent.length >= w.count) w.resolve();
        else waiters.push(w);
      }
    },
    (error) => errors.push(error),
  );
  return {
    clock,
    snapshotter,
    sent,
    errors,
    /** Resolves once `count` frames in all were sent (an event: the HMAC, or the seal, finishing). */
    frames(count: number): Promise<void> {
      if (sent.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    votes: () => sent.filter((m): m is SnapshotVoteMessage => m.type === MessageType.SnapshotVote),
    chunks: () => sent.filter((m): m is SnapshotChunkMessage => m.type === MessageType.SnapshotChunk),
  };
}

function reassemble(frames: readonly SnapshotChunkMessage[]): Uint8Array {
  expect(frames.length).toBeGreaterThan(0);
  const first = frames[0]!;
  const out = new Uint8Array(first.total);
  let offset = 0;
  for (const f of frames) {
    expect(f.seq).toBe(first.seq);
    expect(f.total).toBe(first.total);
    expect(sameBytes(f.hash, first.hash)).toBe(true);
    expect(f.offset).toBe(offset);
    expect(f.data.length).toBeGreaterThan(0);
    expect(f.data.length).toBeLessThanOrEqual(DEFAULT_LIMITS.maxChunkBytes);
    out.set(f.data, offset);
    offset += f.data.length;
  }
  expect(offset).toBe(first.total);
  return out;
}

test("the vote goes out once the state's keyed hash is computed, never synchronously", async () => {
  const s = setup();
  const state = testRng("snapshots.test vote").bytes(5000);
  s.snapshotter.taken(7, state);
  expect(s.sent).toHaveLength(0);
  await s.frames(1);
  expect(s.sent).toHaveLength(1);
  const [vote] = s.votes();
  expect(vote).toBeDefined();
  expect(vote!.seq).toBe(7);
  expect(sameBytes(vote!.hash, await hmac(keys.snapshotHash, state))).toBe(true);
  expect(s.errors).toEqual([]);
});

test("equal states vote equal hashes; different states, different ones", async () => {
  const s = setup();
  const rng = testRng("snapshots.test equal votes");
  const state = rng.bytes(300);
  const changed = state.slice();
  const at = rng.int(changed.length);
  changed[at] = changed[at]! ^ 1;
  s.snapshotter.taken(1, state);
  await s.frames(1);
  s.snapshotter.taken(2, state.slice());
  await s.frames(2);
  s.snapshotter.taken(3, changed);
  await s.frames(3);
  const [a, b, c] = s.votes();
  expect(sameBytes(a!.hash, b!.hash)).toBe(true);
  expect(sameBytes(a!.hash, c!.hash)).toBe(false);
});

test("nothing is uploaded unless requested", async () => {
  const s = setup();
  s.snapshotter.taken(3, new Uint8Array([1, 2, 3]));
  await s.frames(1);
  await s.clock.advance(1000);
  expect(s.chunks()).toHaveLength(0);
});

test("an upload requested after the vote goes out once sealed, as version-2 chunks that reassemble and open with keys.snapshot", async () => {
  const s = setup();
  const state = testRng("snapshots.test upload").bytes(DEFAULT_LIMITS.maxChunkBytes * 2 + 12_345);
  s.snapshotter.taken(42, state);
  await s.frames(1);
  s.snapshotter.uploadRequested(42);
  expect(s.chunks()).toHaveLength(0); // sealing is asynchronous (WebCrypto)
  await s.frames(4);
  const frames = s.chunks();
  expect(frames.length).toBe(3);
  expect(frames[0]!.seq).toBe(42);
  expect(sameBytes(frames[0]!.hash, s.votes()[0]!.hash)).toBe(true);
  const envelope = reassemble(frames);
  expect(envelope[0]).toBe(BULK_ENVELOPE_VERSION);
  expect(sameBytes(await openBulk(keys.snapshot, envelope), state)).toBe(true);
  expect(() => open(keys.snapshot.box, envelope)).toThrow(/unknown envelope version 2/);
  expect(s.errors).toEqual([]);
});

test("an upload requested before the hash is ready follows the vote", async () => {
  const s = setup();
  const state = testRng("snapshots.test early request").bytes(10_000);
  s.snapshotter.taken(9, state);
  s.snapshotter.uploadRequested(9);
  expect(s.sent).toHaveLength(0);
  await s.frames(2);
  expect(s.sent.map((m) => m.type)).toEqual([MessageType.SnapshotVote, MessageType.SnapshotChunk]);
  expect(sameBytes(await openBulk(keys.snapshot, reassemble(s.chunks())), state)).toBe(true);
});

test("the state is uploaded once: a repeated request sends nothing more, even while the first is being sealed", async () => {
  const s = setup();
  s.snapshotter.taken(5, new Uint8Array(100).fill(7));
  await s.frames(1);
  s.snapshotter.uploadRequested(5);
  s.snapshotter.uploadRequested(5);
  await s.frames(2);
  s.snapshotter.uploadRequested(5);
  // A later snapshot's upload is sent after anything a repeated request could have sent.
  s.snapshotter.taken(6, new Uint8Array([6]));
  s.snapshotter.uploadRequested(6);
  await s.frames(4);
  expect(s.chunks().map((c) => c.seq)).toEqual([5, 6]);
});

test("a request for an older seq than the latest snapshot is ignored", async () => {
  const s = setup();
  s.snapshotter.taken(10, new Uint8Array([1]));
  await s.frames(1);
  s.snapshotter.taken(20, new Uint8Array([2]));
  await s.frames(2);
  s.snapshotter.uploadRequested(10);
  s.snapshotter.uploadRequested(15);
  s.snapshotter.uploadRequested(20);
  await s.frames(3);
  expect(s.chunks()).toHaveLength(1);
  expect(s.chunks()[0]!.seq).toBe(20);
  expect(await openBulk(keys.snapshot, reassemble(s.chunks()))).toEqual(new Uint8Array([2]));
});

test("a snapshot superseded while it is being sealed is not sent (the reflector would reject it)", async () => {
  const s = setup();
  s.snapshotter.taken(30, testRng("snapshots.test superseded").bytes(2_000_000));
  await s.frames(1);
  s.snapshotter.uploadRequested(30);
  s.snapshotter.taken(31, new Uint8Array([3, 1]));
  s.snapshotter.uploadRequested(31);
  // Uploads go out in the order asked for: 31's chunk comes after whatever 30's seal gave.
  await s.frames(3);
  expect(s.sent.map((m) => `${m.type === MessageType.SnapshotVote ? "vote" : "chunk"} ${(m as SnapshotVoteMessage).seq}`)).toEqual(["vote 30", "vote 31", "chunk 31"]);
  expect(await openBulk(keys.snapshot, reassemble(s.chunks()))).toEqual(new Uint8Array([3, 1]));
  expect(s.errors).toEqual([]);
});

test("a state too large for the reflector is reported, not sealed or sent", async () => {
  const s = setup();
  const state = new Uint8Array(DEFAULT_LIMITS.maxSnapshotBytes - 28);
  s.snapshotter.taken(3, state);
  s.snapshotter.uploadRequested(3);
  await s.frames(1);
  expect(s.errors).toHaveLength(1);
  expect((s.errors[0] as Error).message).toMatch(/as a snapshot, over the reflector's 64.0MB limit/);
  expect(s.chunks()).toHaveLength(0);
});

test("divergence() tells this replica's divergence from another one's", async () => {
  const s = setup();
  const state = new Uint8Array([4, 5, 6]);
  // Before any snapshot, or before its hash is known, this replica cannot be the one that diverged.
  expect(s.snapshotter.divergence(1, new Uint8Array(32))).toEqual({ seq: 1, diverged: false, split: false });
  s.snapshotter.taken(8, state);
  expect(s.snapshotter.divergence(8, new Uint8Array(32))).toEqual({ seq: 8, diverged: false, split: false });
  await s.frames(1);
  const mine = s.votes()[0]!.hash;
  // The majority voted what this replica voted: another replica diverged.
  expect(s.snapshotter.divergence(8, mine.slice())).toEqual({ seq: 8, diverged: false, split: false });
  // The majority voted something else: this replica diverged.
  const other = mine.slice();
  other[0] = other[0]! ^ 0xff;
  expect(s.snapshotter.divergence(8, other)).toEqual({ seq: 8, diverged: true, split: false });
  expect(s.snapshotter.divergence(8, mine.subarray(0, 16))).toEqual({ seq: 8, diverged: true, split: false });
  // A report for another snapshot point says nothing about this one.
  expect(s.snapshotter.divergence(7, other)).toEqual({ seq: 7, diverged: false, split: false });
});

test("the serialized state is kept for 60 s of the clock for an upload request, then dropped", async () => {
  const kept = setup();
  kept.snapshotter.taken(3, new Uint8Array([9, 9, 9]));
  await kept.frames(1);
  expect(kept.clock.pending).toBe(1);
  await kept.clock.advance(59_999);
  kept.snapshotter.uploadRequested(3);
  await kept.frames(2);
  expect(kept.chunks()).toHaveLength(1);

  const dropped = setup();
  dropped.snapshotter.taken(3, new Uint8Array([9, 9, 9]));
  await dropped.frames(1);
  await dropped.clock.advance(60_000);
  expect(dropped.clock.pending).toBe(0);
  dropped.snapshotter.uploadRequested(3);
  expect(dropped.chunks()).toHaveLength(0);
  expect(dropped.errors).toEqual([]);
  // Divergence is still told apart: the hash is kept, only the bytes are dropped.
  const mine = dropped.votes()[0]!.hash;
  expect(dropped.snapshotter.divergence(3, mine)).toEqual({ seq: 3, diverged: false, split: false });
});

test("a snapshot uploaded on request sets no timer to drop it", async () => {
  const s = setup();
  s.snapshotter.taken(4, new Uint8Array([1, 2]));
  s.snapshotter.uploadRequested(4);
  await s.frames(2);
  expect(s.clock.pending).toBe(0);
});
