/**
 * Time as the client and the reflector see it: a monotonic clock and one-shot timers, injected
 * (`Session.join({ timers })`, `startReflector({ timers })`) so tests drive time by hand instead
 * of sleeping. `realTimers` is the default.
 */

/** What `setTimeout` returned (a number in browsers, a `Timeout` in Node, anything for a fake). */
export type TimerHandle = unknown;

/** A monotonic clock in milliseconds and one-shot timers on it. */
export interface Timers {
  /** Monotonic milliseconds (fractions allowed). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** `performance.now()` and the global timers. */
export const realTimers: Timers = Object.freeze({
  now: () => performance.now(),
  setTimeout: (fn: () => void, ms: number): TimerHandle => setTimeout(fn, ms),
  clearTimeout: (handle: TimerHandle): void => clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
});

/** Lets a real Node timer not keep the process alive (a no-op for browser and fake timers). */
export function unrefTimer(handle: TimerHandle): void {
  (handle as { unref?: () => void } | null | undefined)?.unref?.();
}

/**
 * Calls `fn` every `ms` milliseconds until the returned function is called. Built on one-shot
 * timers so a fake clock needs only those.
 */
export function every(timers: Timers, ms: number, fn: () => void, opts?: { readonly unref?: boolean }): () => void {
  let handle: TimerHandle;
  let stopped = false;
  const arm = (): void => {
    handle = timers.setTimeout(tick, ms);
    if (opts?.unref) unrefTimer(handle);
  };
  const tick = (): void => {
    if (stopped) return;
    arm();
    fn();
  };
  arm();
  return () => {
    stopped = true;
    timers.clearTimeout(handle);
  };
}
