import { hex, normHex, sameBytes, toHex } from "../src/hex";
import { TEST_SEED_VARIABLE, createRng, deriveSeed, ensureTestSeed, parseSeed, seedHint, testRng, testSeed } from "../src/random";

describe("createRng", () => {
  test("the stream of a seed is pinned: printed seeds must keep replaying the same draws", () => {
    const rng = createRng(1);
    expect(Array.from({ length: 5 }, () => rng.u32())).toEqual([1151041103, 1990438114, 272676157, 1346144161, 1089960743]);
    expect(createRng(0).u32()).toBe(1338548054);
    expect(createRng(2 ** 40).u32()).toBe(655686938);
    expect(deriveSeed(4293, "a")).toBe(768876950);
  });

  test("same seed, same draws; another seed, other draws; seeds above 2^32 are not truncated", () => {
    const draw = (seed: number): number[] => {
      const rng = createRng(seed);
      return [rng.next(), rng.int(1000), rng.range(-5, 5), Number(rng.bool()), ...rng.bytes(9)];
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    expect(draw(7)).not.toEqual(draw(7 + 2 ** 32));
  });

  test("next, int, range, bool stay in bounds and cover them evenly", () => {
    const rng = createRng(42);
    const counts = new Array<number>(10).fill(0);
    const seen = new Set<number>();
    let trues = 0;
    let outOfBounds = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = rng.next();
      if (!(x >= 0 && x < 1)) outOfBounds++;
      counts[rng.int(10)]!++;
      seen.add(rng.range(-3, 4));
      if (rng.bool(0.25)) trues++;
    }
    expect(outOfBounds).toBe(0);
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(600);
    expect([...seen].sort((a, b) => a - b)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
    expect(Math.abs(trues - 25_000)).toBeLessThan(800);
    expect(rng.int(Number.MAX_SAFE_INTEGER)).toBeLessThan(Number.MAX_SAFE_INTEGER);
  });

  test("bad arguments throw instead of returning garbage", () => {
    const rng = createRng(1);
    expect(() => rng.int(0)).toThrow(RangeError);
    expect(() => rng.int(1.5)).toThrow(RangeError);
    expect(() => rng.range(3, 3)).toThrow(RangeError);
    expect(() => rng.pick([])).toThrow(RangeError);
    expect(() => rng.bytes(-1)).toThrow(RangeError);
    expect(() => createRng(-1)).toThrow(RangeError);
    expect(() => createRng(0.5)).toThrow(RangeError);
  });

  test("pick, shuffle and bytes", () => {
    const rng = createRng(3);
    const items = ["a", "b", "c"] as const;
    expect(new Set(Array.from({ length: 200 }, () => rng.pick(items)))).toEqual(new Set(items));
    const input = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = rng.shuffle(input);
    expect(input).toEqual(Array.from({ length: 50 }, (_, i) => i)); // untouched
    expect(shuffled).not.toEqual(input);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(input);
    for (const n of [0, 1, 3, 4, 5, 1000]) expect(rng.bytes(n)).toHaveLength(n);
    const big = rng.bytes(256 * 64);
    const histogram = new Array<number>(256).fill(0);
    for (const b of big) histogram[b]!++;
    expect(Math.min(...histogram)).toBeGreaterThan(20);
  });

  test("fork depends on the seed and the label only, not on draws made before", () => {
    const a = createRng(9);
    const b = createRng(9);
    for (let i = 0; i < 10; i++) b.next();
    expect(a.fork("x").u32()).toBe(b.fork("x").u32());
    expect(a.fork("x").u32()).not.toBe(a.fork("y").u32());
    expect(a.fork("x").seed).toBe(deriveSeed(9, "x"));
  });
});

describe("the run seed", () => {
  const saved = process.env[TEST_SEED_VARIABLE];
  afterEach(() => {
    if (saved === undefined) delete process.env[TEST_SEED_VARIABLE];
    else process.env[TEST_SEED_VARIABLE] = saved;
    jest.restoreAllMocks();
  });

  test("LOCKSTEP_TEST_SEED is read as decimal or 0x-hex; labels derive per-test seeds from it", () => {
    process.env[TEST_SEED_VARIABLE] = "0x10c5";
    expect(testSeed()).toBe(4293);
    expect(testSeed("a")).toBe(deriveSeed(4293, "a"));
    expect(testSeed("a")).not.toBe(testSeed("b"));
    expect(testRng("a").u32()).toBe(createRng(deriveSeed(4293, "a")).u32());
    process.env[TEST_SEED_VARIABLE] = "4293";
    expect(testSeed("a")).toBe(deriveSeed(4293, "a"));
    expect(seedHint()).toBe("LOCKSTEP_TEST_SEED=4293");
    expect(parseSeed(" 12 ")).toBe(12);
    for (const bad of ["abc", "-1", "1.5", "0x", "1e3", String(2 ** 60)]) expect(() => parseSeed(bad)).toThrow(RangeError);
    process.env[TEST_SEED_VARIABLE] = "nope";
    expect(() => testSeed()).toThrow(/LOCKSTEP_TEST_SEED/);
  });

  test("without the variable a fresh seed is picked, printed once, and kept for the rest of the process", () => {
    delete process.env[TEST_SEED_VARIABLE];
    delete (globalThis as Record<symbol, unknown>)[Symbol.for("@lockstep/test-support.runSeed")];
    const log = jest.spyOn(console, "log").mockImplementation(() => undefined);
    const seed = ensureTestSeed();
    expect(testSeed()).toBe(seed);
    delete process.env[TEST_SEED_VARIABLE]; // even if something clears it, the process keeps its seed
    expect(testSeed()).toBe(seed);
    expect(process.env[TEST_SEED_VARIABLE]).toBe(String(seed));
    expect(log.mock.calls).toEqual([[`[test-support] LOCKSTEP_TEST_SEED=${seed} (set it to reproduce)`]]);
  });
});

describe("hex", () => {
  test("parses fixtures with any spacing and case, formats them back normalised", () => {
    expect(Array.from(hex("01 02\nFF  a0"))).toEqual([1, 2, 255, 160]);
    expect(toHex(Uint8Array.of(0, 15, 255))).toBe("00 0f ff");
    expect(normHex("0A0b  ff")).toBe("0a 0b ff");
    expect(hex("")).toHaveLength(0);
    expect(() => hex("0")).toThrow(/bad hex/);
    expect(() => hex("zz")).toThrow(/bad hex/);
  });

  test("sameBytes compares the views, not their backing buffers", () => {
    const backing = Uint8Array.of(9, 1, 2, 3, 9);
    expect(sameBytes(backing.subarray(1, 4), Uint8Array.of(1, 2, 3))).toBe(true);
    expect(sameBytes(backing.subarray(1, 4), Uint8Array.of(1, 2, 4))).toBe(false);
    expect(sameBytes(backing.subarray(1, 4), Uint8Array.of(1, 2))).toBe(false);
  });
});
