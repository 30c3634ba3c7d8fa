/**
 * Calls `step(time)` once per frame: on requestAnimationFrame where there is one (browsers), else
 * every 16 ms (Node). Returns a function that stops it.
 */
export function startFrameLoop(step: (time?: number) => void): () => void {
  const g = globalThis as {
    requestAnimationFrame?: (cb: (t: number) => void) => number;
    cancelAnimationFrame?: (handle: number) => void;
  };
  const raf = g.requestAnimationFrame;
  if (!raf) {
    const timer = setInterval(() => step(), 16);
    return () => clearInterval(timer);
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
