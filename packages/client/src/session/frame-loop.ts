import { every, type Timers } from "@lockstep/protocol";

/**
 * Calls `step(time)` once per frame: on requestAnimationFrame where there is one (browsers), else
 * every 16 ms of `timers` (Node). Returns a function that stops it.
 */
export function startFrameLoop(timers: Timers, step: (time?: number) => void): () => void {
  const g = globalThis as {
    requestAnimationFrame?: (cb: (t: number) => void) => number;
    cancelAnimationFrame?: (handle: number) => void;
  };
  const raf = g.requestAnimationFrame;
  if (!raf) {
    return every(timers, 16, () => step());
  }
  let running = true;
  let handle = 0;
  const loop = (t: number): void => {
    if (!running) return;
    step(t);
    handle = raf(loop);
  };
  handle = raf(loop);
  return () => {
    running = false;
    g.cancelAnimationFrame?.(handle);
  };
}
