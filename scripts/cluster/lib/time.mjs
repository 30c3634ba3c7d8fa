// Clock and waiting: everything the cluster scripts do against time.

/** Milliseconds on the monotonic clock. */
export const now = () => performance.now();
/** Resolves after `ms` (at once if `ms` ≤ 0). */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** `promise`, or a rejection naming `what` after `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${(ms / 1000).toFixed(0)} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The `p`th percentile of `xs` (nearest rank; NaN if empty). */
export function percentile(xs, p) {
  const sorted = [...xs].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Milliseconds as "1234 ms" ("n/a" if not a number). */
export const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : "n/a");
