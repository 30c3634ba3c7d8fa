/*
 * When a flush is written inline: with a synchronous write on the event loop's own thread.
 *
 * Why. An asynchronous write goes through libuv's thread pool: the loop hands it to a worker
 * thread, which writes and wakes the loop again. On a virtual machine, each wake-up of an idle
 * CPU costs tens of microseconds; for a small O_DSYNC write that is as much as the write itself.
 * Measured in the relay bench at 2,000 msg/s (1 × 10, ext4): fs p50 0.383 ms inline against 0.48
 * through the pool, and the server's CPU 26 % against 32 %. Redis's `appendfsync always` makes the
 * same choice.
 *
 * The cost is that the loop waits for the disk. So a flush is written inline only when that wait
 * buys latency and is short:
 * - nothing else is in flight (with flushes in flight, a busy store pipelines them instead);
 * - its batch is small (at most {@link INLINE_MAX_BYTES});
 * - inline writes took at most {@link INLINE_SHARE} of the loop's time in the current window of
 *   {@link INLINE_WINDOW_MS}: a loaded store goes back to the pool, where writes overlap the work;
 * - no inline write stalled lately: one that took more than {@link INLINE_STALL_MS} (a disk
 *   stalling) sends writes to the pool for {@link INLINE_BACKOFF_MS}, so a sick disk never keeps
 *   freezing the loop.
 * The guarantee is the same either way: the write returns once its bytes are durable (O_DSYNC).
 */

/** Largest batch written inline. */
export const INLINE_MAX_BYTES = 64 * 1024;
/** The window over which inline writes' share of the time is counted. */
export const INLINE_WINDOW_MS = 100;
/** Most of a window inline writes may take. */
export const INLINE_SHARE = 0.5;
/** An inline write slower than this is a stall. */
export const INLINE_STALL_MS = 20;
/** How long writes go to the pool after a stall. */
export const INLINE_BACKOFF_MS = 1000;

import { writeFullySync, type LogFile } from "./fs-log-io";

export class InlinePolicy {
  #windowStart = 0;
  #spent = 0;
  #offUntil = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /**
   * Writes `buffers` (a batch of `bytes`) at `position` of `file` inline and returns true, if the
   * file syncs on write and offers a synchronous write and this policy allows it now; false
   * otherwise, having written nothing. The caller checked that nothing else is in flight. A failed
   * write throws.
   */
  write(file: LogFile, buffers: readonly Buffer[], position: number, bytes: number): boolean {
    if (!file.syncsOnWrite || file.writevSync === undefined || !this.allows(bytes)) return false;
    const started = this.now();
    try {
      writeFullySync(file, buffers, position);
    } finally {
      this.spent(this.now() - started);
    }
    return true;
  }

  /** Whether a batch of `bytes` may be written inline now. */
  allows(bytes: number): boolean {
    if (bytes > INLINE_MAX_BYTES) return false;
    const t = this.now();
    if (t < this.#offUntil) return false;
    if (t - this.#windowStart >= INLINE_WINDOW_MS) {
      this.#windowStart = t;
      this.#spent = 0;
    }
    return this.#spent < INLINE_WINDOW_MS * INLINE_SHARE;
  }

  /** Records an inline write that took `ms`. */
  spent(ms: number): void {
    this.#spent += ms;
    if (ms > INLINE_STALL_MS) this.#offUntil = this.now() + INLINE_BACKOFF_MS;
  }
}
