import { MessageType, type StreamEntry, type TickMessage } from "@lockstep/protocol";
import { SessionError } from "./errors";

/** What waits to be fed to the VM: stream entries and ticks, in arrival order. */
export type QueuedItem = StreamEntry | TickMessage;

/**
 * The received-but-not-yet-processed part of a session's stream. It checks that entries arrive
 * gap-free and keeps only the latest of consecutive unprocessed ticks (they only advance time).
 */
export class StreamQueue {
  #items: QueuedItem[] = [];
  #head = 0;
  #lastSeq = 0;
  #taken = 0;

  /** Seq of the last entry received. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Items taken since the history was queued (for catch-up progress). */
  get taken(): number {
    return this.#taken;
  }

  /** Queues the history a Sync brought (already checked to be contiguous) and the time it was sent at. */
  pushHistory(entries: readonly StreamEntry[], lastSeq: number, time: number): void {
    for (const e of entries) this.#items.push(e);
    this.#items.push({ type: MessageType.Tick, time });
    this.#lastSeq = lastSeq;
  }

  /** Queues a live entry. @throws {SessionError} if it does not follow the last one. */
  pushEntry(entry: StreamEntry): void {
    if (entry.seq !== this.#lastSeq + 1) throw new SessionError(`stream gap: expected message #${this.#lastSeq + 1}, got #${entry.seq}`);
    this.#lastSeq = entry.seq;
    this.#items.push(entry);
  }

  pushTick(tick: TickMessage): void {
    const last = this.#items.length - 1;
    if (last >= this.#head && this.#items[last]!.type === MessageType.Tick) this.#items[last] = tick;
    else this.#items.push(tick);
  }

  /** The next item, or undefined when everything received was taken. */
  next(): QueuedItem | undefined {
    if (this.#head < this.#items.length) {
      this.#taken++;
      return this.#items[this.#head++];
    }
    if (this.#head > 0) {
      this.#items = [];
      this.#head = 0;
    }
    return undefined;
  }
}
