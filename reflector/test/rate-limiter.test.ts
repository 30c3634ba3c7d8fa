import { TokenBucket } from "../src/rate-limiter";

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
