/** One pending `future()` message of a model. */
export interface FutureMessage {
  /** Model time at which it runs. */
  readonly time: number;
  /** Scheduling order; breaks ties between futures of equal time. */
  readonly seq: number;
  /** The model whose method runs. */
  readonly receiver: object;
  /** Method name on the receiver. */
  readonly selector: string;
  readonly args: unknown[];
}

function before(a: FutureMessage, b: FutureMessage): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

/** A binary min-heap of future messages ordered by (time, seq). */
export class FutureQueue {
  #heap: FutureMessage[] = [];

  get size(): number {
    return this.#heap.length;
  }

  peek(): FutureMessage | undefined {
    return this.#heap[0];
  }

  push(msg: FutureMessage): void {
    const heap = this.#heap;
    heap.push(msg);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(msg, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = msg;
  }

  pop(): FutureMessage | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) this.#siftDown(0, last);
    return top;
  }

  #siftDown(i: number, msg: FutureMessage): void {
    const heap = this.#heap;
    const n = heap.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, msg)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = msg;
  }

  /** Removes and returns the earliest message matching `pred`, or undefined. */
  removeFirst(pred: (msg: FutureMessage) => boolean): FutureMessage | undefined {
    let best = -1;
    const heap = this.#heap;
    for (let i = 0; i < heap.length; i++) {
      if (pred(heap[i]!) && (best < 0 || before(heap[i]!, heap[best]!))) best = i;
    }
    if (best < 0) return undefined;
    return this.#removeAt(best);
  }

  /** Removes every message matching `pred`. */
  removeAll(pred: (msg: FutureMessage) => boolean): number {
    const kept = this.#heap.filter((m) => !pred(m));
    const removed = this.#heap.length - kept.length;
    if (removed > 0) {
      this.#heap = [];
      for (const m of kept) this.push(m);
    }
    return removed;
  }

  #removeAt(i: number): FutureMessage {
    const heap = this.#heap;
    const msg = heap[i]!;
    const last = heap.pop()!;
    if (i < heap.length) {
      this.#siftDown(i, last);
      // The moved element may also need to go up.
      let j = i;
      const moved = heap[j]!;
      while (j > 0) {
        const parent = (j - 1) >> 1;
        if (!before(moved, heap[parent]!)) break;
        heap[j] = heap[parent]!;
        j = parent;
      }
      heap[j] = moved;
    }
    return msg;
  }

  /** All pending messages in run order (for serialization). */
  sorted(): FutureMessage[] {
    return [...this.#heap].sort((a, b) => (before(a, b) ? -1 : 1));
  }
}
