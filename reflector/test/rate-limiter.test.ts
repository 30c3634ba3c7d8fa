import { KeyedBuckets, TokenBucket } from "../src/rate-limiter";

test("allows a burst, then the sustained rate", () => {
  let now = 0;
  const bucket = new TokenBucket(10, 3, () => now);
  expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
  now += 100; // one token at 10/s
  expect([bucket.take(), bucket.take()]).toEqual([true, false]);
  now += 10_000; // refills to the burst, never beyond
  expect(Array.from({ length: 4 }, () => bucket.take())).toEqual([true, true, true, false]);
});

test("a clock that goes backwards does not refill", () => {
  let now = 1000;
  const bucket = new TokenBucket(1000, 1, () => now);
  expect(bucket.take()).toBe(true);
  now = 0;
  expect(bucket.take()).toBe(false);
});

test("a zero burst still lets one message through per refill", () => {
  let now = 0;
  const bucket = new TokenBucket(1, 0, () => now);
  expect([bucket.take(), bucket.take()]).toEqual([true, false]);
  now += 1000;
  expect(bucket.take()).toBe(true);
});

test("take(n) takes n tokens or none", () => {
  let now = 0;
  const bucket = new TokenBucket(100, 10, () => now);
  expect(bucket.take(7)).toBe(true);
  expect(bucket.take(4)).toBe(false);
  expect(bucket.take(3)).toBe(true);
  now += 50; // 5 tokens at 100/s
  expect(bucket.take(6)).toBe(false);
  expect(bucket.take(5)).toBe(true);
});

test("KeyedBuckets limits each key on its own and forgets full buckets when many keys pile up", () => {
  let now = 0;
  const buckets = new KeyedBuckets(1, 2, () => now);
  expect([buckets.take("a"), buckets.take("a"), buckets.take("a")]).toEqual([true, true, false]);
  expect(buckets.take("b")).toBe(true);
  for (let i = 0; i < 5000; i++) buckets.take(`k${i}`);
  now += 10_000; // every bucket refills
  buckets.take("fresh");
  // Pruned when the map reached its bound: only buckets still below full survive.
  expect(buckets.size).toBeLessThan(5000);
  expect([buckets.take("a"), buckets.take("a"), buckets.take("a")]).toEqual([true, true, false]);
});
