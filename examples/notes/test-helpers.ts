/** Test stand-ins shared by the notes tests (not part of the app). */
import type { TextField } from "./text-sync";

/** A textarea stand-in: a value and a selection that follows what `setSelectionRange` says. */
export class FakeField implements TextField {
  value = "";
  selectionStart = 0;
  selectionEnd = 0;

  setSelectionRange(start: number, end: number): void {
    this.selectionStart = Math.min(start, this.value.length);
    this.selectionEnd = Math.max(this.selectionStart, Math.min(end, this.value.length));
  }

  /** What a user does: replace the selection `[start, end)` with `text`, caret after it. */
  type(start: number, end: number, text: string): void {
    this.value = this.value.slice(0, start) + text + this.value.slice(end);
    this.setSelectionRange(start + text.length, start + text.length);
  }
}

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1). */
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

/** The seed of a randomized test: LOCKSTEP_TEST_SEED if set, else a fresh one; printed for replay. */
export function testSeed(name: string): number {
  const fromEnv = process.env.LOCKSTEP_TEST_SEED;
  const seed = fromEnv !== undefined ? Number(fromEnv) >>> 0 : (Date.now() ^ (Math.random() * 0x100000000)) >>> 0;
  console.log(`${name}: seed ${seed} (replay with LOCKSTEP_TEST_SEED=${seed})`);
  return seed;
}
