import { ReplayError } from "../errors";

/**
 * Who sent a relayed message and which of its messages it is: the header every message payload's
 * plaintext starts with. It travels inside the envelope, so only holders of the session key can
 * write one, and every replica checks it the same way (replay protection, below).
 */
export interface SenderStamp {
  /** The sending view. */
  readonly viewId: string;
  /** Seq of the sender's own view-join for the connection it sent on. */
  readonly joinSeq: number;
  /** 1, 2, 3 … per connection. */
  readonly counter: number;
}

/** One live view's connection as the replicas know it: its view-join's seq and the last counter applied. */
interface Sender {
  readonly joinSeq: number;
  lastCounter: number;
}

/**
 * How {@link Senders} appears in a VM state: `[viewId, joinSeq, lastCounter]` per live view, in
 * join order, then `[viewId, joinSeq, lastCounter, 1]` per retired connection, oldest first.
 */
export type SendersState = Array<[string, number, number] | [string, number, number, 1]>;

/** How many ended connections {@link Senders} remembers (what a client that rejoins asks about). */
export const MAX_RETIRED_SENDERS = 1024;

/**
 * Replay protection, as replicated VM state: for every live view, the seq of its view-join and
 * the highest message counter applied from it. A relayed message is new only if it names a live
 * view, that view's current connection and a higher counter; anything else is ciphertext someone
 * captured and sent again (or a message from an older connection of a view that rejoined since).
 * Every replica holds the same table at the same point of the stream, so every replica drops
 * the same messages.
 */
export class Senders {
  readonly #live = new Map<string, Sender>();
  /**
   * The last connection of views that exited, newest last (at most {@link MAX_RETIRED_SENDERS}):
   * a client that rejoins learns from it which of the messages it sent before were applied.
   */
  readonly #retired = new Map<string, Sender>();

  /** Restores the table from {@link Senders.state}'s output (a snapshot). */
  constructor(state?: SendersState) {
    for (const entry of state ?? []) {
      const [viewId, joinSeq, lastCounter, retired] = Array.isArray(entry) ? entry : [];
      if (typeof viewId !== "string" || !Number.isSafeInteger(joinSeq) || !Number.isSafeInteger(lastCounter) || (retired !== undefined && retired !== 1)) {
        throw new Error("the snapshot's table of live senders is malformed");
      }
      (retired === 1 ? this.#retired : this.#live).set(viewId, { joinSeq: joinSeq as number, lastCounter: lastCounter as number });
    }
  }

  /** A view joined at entry `joinSeq`: its messages count from 1 again. */
  joined(viewId: string, joinSeq: number): void {
    // Delete first: a rejoined view moves to the end, so the state's order is join order.
    this.#live.delete(viewId);
    this.#live.set(viewId, { joinSeq, lastCounter: 0 });
  }

  /** A view exited: nothing it sent before can be applied any more; what was applied is remembered. */
  exited(viewId: string): void {
    const sender = this.#live.get(viewId);
    if (sender === undefined) return;
    this.#live.delete(viewId);
    this.#retired.delete(viewId);
    this.#retired.set(viewId, sender);
    if (this.#retired.size > MAX_RETIRED_SENDERS) this.#retired.delete(this.#retired.keys().next().value as string);
  }

  /**
   * The counter of the last message applied from `viewId`'s connection that joined at `joinSeq`
   * (0: none yet), or undefined if that connection is not known (never joined, or forgotten).
   */
  appliedCounter(viewId: string, joinSeq: number): number | undefined {
    const sender = this.#live.get(viewId);
    if (sender?.joinSeq === joinSeq) return sender.lastCounter;
    const retired = this.#retired.get(viewId);
    return retired?.joinSeq === joinSeq ? retired.lastCounter : undefined;
  }

  /**
   * Applies a message's stamp if it is new, advancing its sender's counter.
   * @throws {ReplayError} (changing nothing) if it is not.
   */
  admit(stamp: SenderStamp): void {
    const { viewId, joinSeq, counter } = stamp;
    const sender = this.#live.get(viewId);
    if (sender === undefined) {
      throw new ReplayError(`it claims to come from view ${viewId}, which is not in the session (it left, or never joined): a replay`, "unknown-view", viewId);
    }
    if (joinSeq !== sender.joinSeq) {
      throw new ReplayError(
        `it was sent on the connection of view ${viewId} that joined at #${joinSeq}, but that view's current connection joined at #${sender.joinSeq}: a replay`,
        "stale-join",
        viewId,
      );
    }
    if (!(counter > sender.lastCounter)) {
      throw new ReplayError(
        `it is message ${counter} of view ${viewId}'s connection, whose messages up to ${sender.lastCounter} were applied already: a repeat or a replay`,
        "repeated",
        viewId,
      );
    }
    sender.lastCounter = counter;
  }

  /** The table, for the VM state (insertion order: identical on every replica). */
  state(): SendersState {
    const state: SendersState = [...this.#live].map(([viewId, s]) => [viewId, s.joinSeq, s.lastCounter]);
    for (const [viewId, s] of this.#retired) state.push([viewId, s.joinSeq, s.lastCounter, 1]);
    return state;
  }
}
