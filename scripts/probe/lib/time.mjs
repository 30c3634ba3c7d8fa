// Clock, waiting and pacing: everything the probe does against time.
import { secs } from "./format.mjs";

/** Milliseconds on the monotonic clock. */
export const now = () => performance.now();
/** Resolves after `ms` (at once if `ms` ≤ 0). */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Resolves true once `pred()` holds, false after `timeoutMs`. */
export async function until(pred, timeoutMs, everyMs = 20) {
  const end = now() + timeoutMs;
  while (!pred()) {
    if (now() > end) return false;
    await sleep(everyMs);
  }
  return true;
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${secs(ms)}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A token bucket on the client side, so a sender stays under the reflector's per-connection rate. */
export class Pacer {
  constructor(perSecond, burst) {
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = burst;
    this.at = now();
  }
  /** Resolves once `n` tokens (bytes) could be taken. */
  async take(n) {
    for (;;) {
      const t = now();
      this.tokens = Math.min(Math.max(this.burst, n), this.tokens + ((t - this.at) * this.perSecond) / 1000);
      this.at = t;
      if (this.tokens >= n) {
        this.tokens -= n;
        return;
      }
      await sleep(((n - this.tokens) / this.perSecond) * 1000);
    }
  }
}
