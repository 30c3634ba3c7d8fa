/**
 * Carves small frames out of shared ArrayBuffers. `new Uint8Array(n)` gives each frame a backing
 * store of its own (a malloc, zeroing, and external memory the GC accounts for): about 400 ns for a
 * 110-byte Relay frame on Node 20, against about 50 ns for a view into a slab. The reflector
 * encodes every relayed message into one such frame, so that difference is most of what encoding
 * costs it.
 *
 * A view keeps its whole slab alive. One slab per session whose log keeps a contiguous run of its
 * frames (trimmed from the front) wastes at most the two slabs at the ends of that run; a slab
 * shared between sessions could be kept alive by one long-lived frame each. So: one FrameSlab per
 * owner whose frames are freed in order, never one for a whole process. The owner also keeps its
 * current slab, so slabs stay small (4 KiB by default: 37 frames of 110 bytes, which is nearly all
 * of the saving): 10,000 live sessions keep at most 40 MB in them.
 */
export class FrameSlab {
  #buffer: ArrayBuffer | undefined;
  #used = 0;
  #size: number;

  /**
   * @param first size of the first slab; each next one is twice as large, up to `max`.
   * @param max largest slab; a frame of more than a quarter of it gets a buffer of its own.
   */
  constructor(
    first = 1024,
    readonly max = 4096,
  ) {
    if (!(Number.isSafeInteger(first) && first > 0 && Number.isSafeInteger(max) && max >= first)) throw new RangeError(`FrameSlab sizes must be integers with 0 < first (${first}) ≤ max (${max})`);
    this.#size = first;
  }

  /** A view of `n` fresh bytes (no two views share one). */
  take(n: number): Uint8Array {
    if (n > this.max >> 2) return new Uint8Array(n);
    if (this.#buffer === undefined || this.#used + n > this.#buffer.byteLength) {
      if (this.#buffer !== undefined) this.#size = Math.min(this.max, this.#size * 2);
      this.#buffer = new ArrayBuffer(Math.max(this.#size, n));
      this.#used = 0;
    }
    const view = new Uint8Array(this.#buffer, this.#used, n);
    this.#used += n;
    return view;
  }
}
