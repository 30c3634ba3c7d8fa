import { createHash } from "node:crypto";
import type { LockstepSession } from "../src/index";

/** A small seeded PRNG for tests (mulberry32); tests print their seed so a failure can be replayed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed from LOCKSTEP_TEST_SEED, or a fresh one; printed either way. */
export function testSeed(label: string): number {
  const fromEnv = process.env.LOCKSTEP_TEST_SEED;
  const seed = fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  console.log(`${label}: seed ${seed} (rerun with LOCKSTEP_TEST_SEED=${seed})`);
  return seed;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("base64url");
}

/**
 * Resolves with the seq and state hash of the first stream entry after which `reached()` is true:
 * the same point of the stream on every replica, whatever ticks each one saw afterwards.
 */
export function captureWhen(session: LockstepSession, reached: () => boolean): Promise<{ seq: number; hash: string }> {
  return new Promise((resolve) => {
    const stop = session.afterEntry((seq) => {
      if (!reached()) return;
      stop();
      resolve({ seq, hash: sha256(session.stateBytes()) });
    });
  });
}
