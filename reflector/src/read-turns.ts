/**
 * Read budgets per turn of the event loop: one per connection, one for all of them.
 *
 * Why. libuv reads a readable socket until it is drained (up to 32 reads of 64 KiB in one go), and
 * `ws` hands every message of each read to the reflector at once; one poll phase reads every
 * readable socket. So clients with a backlog (a burst, a reconnect flushing a queue, many clients
 * at once) hold the loop for as long as parsing and stamping all of it takes, and everything else
 * waits: ticks, and, with a durable store, the relays whose storage write has ended, which the
 * loop only sees between two such stretches. Measured in the relay bench (saturating, fs store):
 * the loop ran up to 100 ms without a turn, relays went out in bursts of 50,000 entries, and
 * clients sat idle meanwhile (scripts/bench/reflector.mjs; figures in STORAGE.md).
 *
 * How. A connection that has delivered `bytesPerTurn` of messages in the current turn is paused
 * until the next turn (it may finish the read it is in). Once every connection together has
 * delivered `totalBytesPerTurn`, a message that arrives is not handed on: it waits in its
 * connection's queue, whose socket is paused, and so does everything the connection receives
 * after it (its close too), in order. At the start of the next turn (setImmediate: after the poll
 * phase, so the store's flushes of this turn have launched and finished writes were seen) the
 * queues are delivered in the order they formed, within that turn's budget, and a connection
 * whose queue emptied reads again. Nothing is dropped or refused: the kernel keeps the bytes, TCP
 * flow control slows a client that keeps sending, and the rate limits count every frame as it is
 * delivered. Tokio's cooperative budget (a task yields after so many operations) does the same for
 * the same reason.
 */
// From node:timers, not the global: a reflector started inside a jsdom test environment (the React
// package's tests) has no global setImmediate.
import { setImmediate } from "node:timers";

export class ReadTurns {
  /** The current turn: a new one starts at each check phase after a turn in which a connection read. */
  #turn = 0;
  #scheduled = false;
  /** Bytes delivered in this turn by every connection together. */
  #used = 0;
  /** Connections paused for the rest of this turn. */
  #waiting: ReadBudget[] = [];
  /** Connections with messages waiting, in the order their queues formed. */
  #deferred: ReadBudget[] = [];
  readonly #next = (): void => this.#startTurn();

  /**
   * @param bytesPerTurn what one connection may deliver in a turn before it is paused until the next
   * @param totalBytesPerTurn what every connection together may deliver in a turn; past it, messages wait for the next
   */
  constructor(
    readonly bytesPerTurn: number,
    readonly totalBytesPerTurn: number,
  ) {}

  /** The current turn's number; reading in it makes sure a next one comes. */
  get turn(): number {
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#next);
    }
    return this.#turn;
  }

  /** Takes `bytes` from this turn's total budget: false (taking nothing) once it is spent. */
  spend(bytes: number): boolean {
    if (this.#used >= this.totalBytesPerTurn) return false;
    this.#used += bytes;
    return true;
  }

  /** `budget` is paused for the rest of the turn. */
  hold(budget: ReadBudget): void {
    this.#waiting.push(budget);
    void this.turn;
  }

  /** `budget` has messages waiting for a turn with budget left. */
  defer(budget: ReadBudget): void {
    this.#deferred.push(budget);
    void this.turn;
  }

  #startTurn(): void {
    this.#scheduled = false;
    this.#turn++;
    this.#used = 0;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const budget of waiting) budget.release();
    const deferred = this.#deferred;
    this.#deferred = [];
    let i = 0;
    while (i < deferred.length && (deferred[i] as ReadBudget).drain()) i++;
    // A queue the budget ran out in stays first, and the rest keep their order.
    for (; i < deferred.length; i++) this.#deferred.push(deferred[i] as ReadBudget);
    if (this.#deferred.length > 0) void this.turn;
  }
}

/** Where a connection's messages go (its PeerSocketListener's message and close). */
export interface ReadSink {
  message(data: Uint8Array, isBinary: boolean): void;
  close(code: number): void;
}

/**
 * One connection's share of a {@link ReadTurns}: every message and the close go through it.
 * Messages it queues must stay valid after their event (ws gives each message buffers of its own).
 */
export class ReadBudget {
  #turn = -1;
  #used = 0;
  /** Paused for the rest of the turn (its own budget is spent). */
  #held = false;
  /** Messages waiting (data, isBinary, data, isBinary, …), and the close that came after them. */
  #queue: Array<Uint8Array | boolean> | undefined;
  #head = 0;
  #closed: number | undefined;

  /**
   * @param pause stops reading the socket
   * @param resume reads it again, once neither this turn's budget nor a queue holds it
   */
  constructor(
    private readonly turns: ReadTurns,
    private readonly sink: ReadSink,
    private readonly pause: () => void,
    private readonly resume: () => void,
  ) {}

  /** Whether this budget holds the socket paused now. */
  get holds(): boolean {
    return this.#held || this.#queue !== undefined;
  }

  /** A message arrived: it is delivered now, or queued behind earlier ones or for a turn with budget left. */
  message(data: Uint8Array, isBinary: boolean): void {
    const turns = this.turns;
    const turn = turns.turn;
    if (this.#queue !== undefined) {
      this.#queue.push(data, isBinary);
      return;
    }
    if (!turns.spend(data.length)) {
      this.#queue = [data, isBinary];
      this.#head = 0;
      if (!this.#held) this.pause();
      turns.defer(this);
      return;
    }
    if (turn !== this.#turn) {
      this.#turn = turn;
      this.#used = 0;
    }
    this.#used += data.length;
    if (this.#used >= turns.bytesPerTurn && !this.#held) {
      this.#held = true;
      this.pause();
      turns.hold(this);
    }
    this.sink.message(data, isBinary);
  }

  /** The socket closed: reported now, or after the messages still queued. */
  close(code: number): void {
    if (this.#queue === undefined) this.sink.close(code);
    else this.#closed = code;
  }

  /** A new turn: no longer held by the last one's budget. */
  release(): void {
    this.#held = false;
    if (this.#queue === undefined) this.resume();
  }

  /** Delivers queued messages while the turn's budget lasts; true once the queue (and a close after it) went. */
  drain(): boolean {
    const queue = this.#queue as Array<Uint8Array | boolean>;
    while (this.#head < queue.length) {
      const data = queue[this.#head] as Uint8Array;
      if (!this.turns.spend(data.length)) return false;
      const isBinary = queue[this.#head + 1] as boolean;
      this.#head += 2;
      this.sink.message(data, isBinary);
    }
    this.#queue = undefined;
    if (this.#closed !== undefined) this.sink.close(this.#closed);
    else if (!this.#held) this.resume();
    return true;
  }
}
