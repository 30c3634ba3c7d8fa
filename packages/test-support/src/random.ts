/**
 * The one seeded PRNG of the repository's tests, and the one seed variable: `LOCKSTEP_TEST_SEED`.
 *
 * Every randomized test takes its randomness from `createRng(testSeed("what it is"))` (or
 * `testRng("what it is")`). Without `LOCKSTEP_TEST_SEED` a run picks a fresh seed and prints it
 * once (`[test-support] LOCKSTEP_TEST_SEED=<n> (set it to reproduce)`; under jest the global setup
 * prints it, once per run); setting the variable to that value replays every randomized test of the
 * run exactly. Each label gets its own stream derived from the one seed, so tests do not shift each
 * other's draws when one of them is added, removed or run alone.
 *
 * The generator is sfc32 (Chris Doty-Humphrey's "small fast counting" generator: 128 bits of state,
 * passes PractRand/BigCrush, a few integer ops per draw), seeded through a splitmix32 expansion of
 * the seed so that neighbouring seeds give unrelated streams. Why not the `seedrandom` package the
 * client already uses: that is the *model's* PRNG (the client's runtime dependency, with its own
 * compatibility constraints), and a test helper should not make every package that tests with
 * randomness depend on it; a 20-line generator we own has a stream that can never change under us,
 * has no dependency, and runs unchanged in Node, jest and a browser bundle.
 */

/** The environment variable that fixes the seed of every randomized test. */
export const TEST_SEED_VARIABLE = "LOCKSTEP_TEST_SEED";

/** A seeded pseudo-random generator. Deterministic: the same seed always gives the same draws. */
export interface Rng {
  /**
   * The seed this generator started from (give it to {@link createRng} to replay it). For a
   * {@link testRng}, a seed derived from the run's: name the run's in messages ({@link seedHint}).
   */
  readonly seed: number;
  /** A float in [0, 1), 53 random bits. */
  next(): number;
  /** An unsigned 32-bit integer. */
  u32(): number;
  /** An integer in [0, maxExclusive); `maxExclusive` is a positive safe integer. */
  int(maxExclusive: number): number;
  /** An integer in [lo, hi) (half-open, like {@link int}); `lo < hi`, both safe integers. */
  range(lo: number, hi: number): number;
  /** `true` with probability `p` (default 1/2). */
  bool(p?: number): boolean;
  /** A uniformly chosen element; throws on an empty array. */
  pick<T>(items: readonly T[]): T;
  /** A shuffled copy (Fisher–Yates); the argument is left as it was. */
  shuffle<T>(items: readonly T[]): T[];
  /** `n` random bytes. */
  bytes(n: number): Uint8Array;
  /**
   * An independent generator for a sub-task, derived from this one's seed and `label` only (not
   * from how many draws were made), so adding draws here does not change the fork's stream.
   */
  fork(label: string): Rng;
}

const TWO_POW_32 = 0x1_0000_0000;

/** murmur3's 32-bit finalizer: a bijective avalanche mix. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`a seed is a non-negative safe integer, got ${seed}`);
}

/**
 * A seed derived from `seed` and `label` (a 32-bit hash of both): how one run seed gives every test
 * its own stream. Stable: it will never change, or printed seeds would stop replaying.
 */
export function deriveSeed(seed: number, label: string): number {
  checkSeed(seed);
  let h = fmix32((seed >>> 0) ^ 0x9e3779b9) ^ fmix32(Math.floor(seed / TWO_POW_32) ^ 0x7f4a7c15);
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193); // FNV-1a step per UTF-16 unit
  return fmix32(h ^ label.length);
}

/** A generator seeded with `seed` (a non-negative safe integer, e.g. from {@link testSeed}). */
export function createRng(seed: number): Rng {
  checkSeed(seed);
  // splitmix32 expands the seed (both halves, if it exceeds 32 bits) into sfc32's state.
  let sm = (seed >>> 0) ^ fmix32(Math.floor(seed / TWO_POW_32));
  const splitmix = (): number => {
    sm = (sm + 0x9e3779b9) | 0;
    return fmix32(sm);
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = 1; // sfc32's counter: guarantees a period of at least 2^32 whatever the other words are
  const u32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 15; i++) u32(); // the customary warm-up: mixes the seed through all of the state

  const next = (): number => ((u32() >>> 5) * 0x400_0000 + (u32() >>> 6)) / 2 ** 53;
  const int = (maxExclusive: number): number => {
    if (!Number.isSafeInteger(maxExclusive) || maxExclusive < 1) throw new RangeError(`int(n) needs a positive safe integer, got ${maxExclusive}`);
    return Math.floor(next() * maxExclusive);
  };

  return {
    seed,
    next,
    u32,
    int,
    range(lo, hi) {
      if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || !(lo < hi)) throw new RangeError(`range(lo, hi) needs safe integers lo < hi, got ${lo}, ${hi}`);
      return lo + int(hi - lo);
    },
    bool(p = 0.5) {
      return next() < p;
    },
    pick(items) {
      if (items.length === 0) throw new RangeError("pick() from an empty array");
      return items[int(items.length)]!;
    },
    shuffle(items) {
      const out = [...items];
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(i + 1);
        [out[i], out[j]] = [out[j]!, out[i]!];
      }
      return out;
    },
    bytes(n) {
      if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`bytes(n) needs a non-negative safe integer, got ${n}`);
      const out = new Uint8Array(n);
      let i = 0;
      for (; i + 4 <= n; i += 4) {
        const x = u32();
        out[i] = x & 0xff;
        out[i + 1] = (x >>> 8) & 0xff;
        out[i + 2] = (x >>> 16) & 0xff;
        out[i + 3] = x >>> 24;
      }
      if (i < n) {
        let x = u32();
        for (; i < n; i++, x >>>= 8) out[i] = x & 0xff;
      }
      return out;
    },
    fork(label) {
      return createRng(deriveSeed(seed, label));
    },
  };
}

/** Parses a seed as `LOCKSTEP_TEST_SEED` gives it: decimal (`12345`) or hex (`0x3039`). */
export function parseSeed(text: string): number {
  const trimmed = text.trim();
  const value = /^[0-9]+$/.test(trimmed) ? Number(trimmed) : /^0x[0-9a-f]+$/i.test(trimmed) ? Number.parseInt(trimmed.slice(2), 16) : Number.NaN;
  if (!Number.isSafeInteger(value)) throw new RangeError(`${TEST_SEED_VARIABLE} must be a non-negative integer, decimal or 0x-hex; got "${text}"`);
  return value;
}

function environment(): Record<string, string | undefined> | undefined {
  return typeof process === "undefined" ? undefined : process.env;
}

/** Caches the run seed on the global object, so several copies of this module agree on it. */
const CACHE = Symbol.for("@lockstep/test-support.runSeed");
type SeedHolder = { [CACHE]?: number };

function freshSeed(): number {
  const cryptoApi = (globalThis as { crypto?: { getRandomValues(a: Uint32Array): Uint32Array } }).crypto;
  return cryptoApi ? cryptoApi.getRandomValues(new Uint32Array(1))[0]! : Math.floor(Math.random() * TWO_POW_32);
}

/**
 * The run seed: `LOCKSTEP_TEST_SEED` if set; else a fresh one, which is printed (once) and stored
 * in `process.env`, so that whatever reads the variable next (this process, the jest workers forked
 * after the global setup, a child process a test spawns) uses the same seed.
 */
export function ensureTestSeed(): number {
  const env = environment();
  const fromEnv = env?.[TEST_SEED_VARIABLE];
  if (fromEnv !== undefined && fromEnv !== "") return parseSeed(fromEnv);
  const holder = globalThis as SeedHolder;
  if (holder[CACHE] === undefined) {
    const seed = freshSeed();
    holder[CACHE] = seed;
    console.log(`[test-support] ${TEST_SEED_VARIABLE}=${seed} (set it to reproduce)`);
  }
  if (env) env[TEST_SEED_VARIABLE] = String(holder[CACHE]);
  return holder[CACHE];
}

/**
 * The seed of a randomized test. Without a label: the run seed itself. With one: a seed derived
 * from the run seed and the label, so each test has its own stream and one `LOCKSTEP_TEST_SEED`
 * still replays them all. Use distinct labels for distinct streams.
 */
export function testSeed(label?: string): number {
  const seed = ensureTestSeed();
  return label === undefined ? seed : deriveSeed(seed, label);
}

/**
 * `"LOCKSTEP_TEST_SEED=<run seed>"`, for failure messages. Use it rather than `rng.seed`: a labelled
 * generator's seed is derived, and setting the variable to it would derive again.
 */
export function seedHint(): string {
  return `${TEST_SEED_VARIABLE}=${ensureTestSeed()}`;
}

/** `createRng(testSeed(label))`. */
export function testRng(label?: string): Rng {
  return createRng(testSeed(label));
}
