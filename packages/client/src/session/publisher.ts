import { DEFAULT_LIMITS } from "@lockstep/protocol";
import { UsageError } from "../errors";
import { ENVELOPE_OVERHEAD, seal } from "./crypto";
import type { PublishOptions } from "../view/view";
import { stampedPlaintext, type PayloadCodec } from "./payload";

/** Bounds of the events a session keeps while it cannot send them (`Session.join({ offline })`). */
export interface OfflineQueueLimits {
  /** Events kept, at most. */
  readonly maxEvents: number;
  /** Bytes of their encoded data kept, at most. */
  readonly maxBytes: number;
}

/** Default {@link OfflineQueueLimits}: 1,000 events and 1 MiB. */
export const DEFAULT_OFFLINE_QUEUE: OfflineQueueLimits = Object.freeze({ maxEvents: 1000, maxBytes: 1 << 20 });


/** An event a view published: its scope, name and encoded data, and the stamp it was last sent with. */
interface Outgoing {
  readonly scope: string;
  readonly event: string;
  readonly body: Uint8Array;
  /** The sender stamp it was sent with (0: not sent yet). */
  joinSeq: number;
  counter: number;
}

/** Room for the sender stamp in front of an event body: version byte, viewId, two varUints. */
const STAMP_BYTES = 1 + 1 + DEFAULT_LIMITS.maxIdLength + 2 * 8;

/**
 * Turns what this client's views publish into Send frames, and makes sure each is applied exactly
 * once even when the connection fails. Each payload's plaintext starts with the sender stamp (this
 * view, the seq of its own view-join for the connection, a counter from 1) and is sealed with the
 * session's message key; every replica applies a stamp once (`kernel/senders.ts`), so the stamp is
 * also the idempotency tag.
 *
 * Sent events stay *unconfirmed* until the replica applies them. When the connection is lost, new
 * events are *queued* (bounded, see {@link OfflineQueueLimits}). Once the session is live again,
 * the replicated sender table says how far the old connection's events were applied: those are
 * done, the rest are sent again, then the queue, all in their original order.
 */
export class Publisher {
  readonly #viewId: string;
  readonly #key: Uint8Array;
  readonly #payloads: PayloadCodec;
  readonly #limits: OfflineQueueLimits | false;
  /** Sent and not yet applied, then queued (not sent), in publish order. */
  #outgoing: Outgoing[] = [];
  #queuedBytes = 0;
  #joinSeq = 0;
  #counter = 0;
  #warned = false;

  constructor(viewId: string, messageKey: Uint8Array, payloads: PayloadCodec, limits: OfflineQueueLimits | false) {
    this.#viewId = viewId;
    this.#key = messageKey;
    this.#payloads = payloads;
    this.#limits = limits;
  }

  /** Events published and not yet applied by this client's replica (sent or queued). */
  get pending(): number {
    return this.#outgoing.length;
  }

  /**
   * An event a view published. `send` is given while the session is live: the event goes out now
   * and its sealed payload is passed to it (the connection bundles the payloads of a turn). Without it, the event is queued (or dropped, said once).
   * Returns whether it was kept (sent or queued).
   * @throws {UsageError} if the event's payload would exceed the reflector's limit.
   */
  publish(scope: string, event: string, data: unknown, options: PublishOptions | undefined, send: ((payload: Uint8Array) => void) | undefined): boolean {
    const body = this.#payloads.encodeEventBody(scope, event, data);
    const size = ENVELOPE_OVERHEAD + STAMP_BYTES + body.length;
    if (size > DEFAULT_LIMITS.maxPayloadBytes) {
      throw new UsageError(`event "${scope}:${event}" is about ${size} bytes; the limit is ${DEFAULT_LIMITS.maxPayloadBytes}. Send less data per event.`);
    }
    const out: Outgoing = { scope, event, body, joinSeq: 0, counter: 0 };
    if (send !== undefined) {
      this.#outgoing.push(out);
      send(this.#payload(out));
      return true;
    }
    const limits = this.#limits;
    if (options?.offline === "drop") return false;
    if (limits === false || this.#outgoing.length >= limits.maxEvents || this.#queuedBytes + body.length > limits.maxBytes) {
      this.#dropped(scope, event, limits);
      return false;
    }
    this.#outgoing.push(out);
    this.#queuedBytes += body.length;
    return true;
  }

  /**
   * The replica applied messages of this client's current connection up to `applied` (its
   * counter): they are done. Cheap when nothing is pending.
   */
  confirm(applied: number | undefined): void {
    if (applied === undefined || this.#outgoing.length === 0) return;
    let done = 0;
    for (const out of this.#outgoing) {
      if (out.joinSeq !== this.#joinSeq || out.counter === 0 || out.counter > applied) break;
      done++;
    }
    if (done > 0) this.#outgoing.splice(0, done);
  }

  /**
   * The session is live on a connection whose own view-join was entry `joinSeq`. `applied(joinSeq)`
   * asks the replica how far a connection's messages were applied. What the previous connection
   * sent and was not applied is sent again, then what was queued; returns their sealed payloads, in order.
   */
  live(joinSeq: number, applied: (joinSeq: number) => number | undefined): Uint8Array[] {
    const previous = this.#joinSeq;
    const done = previous === 0 ? 0 : applied(previous);
    // Applied from the previous connection: done. The rest (unknown if the table forgot it: sent again) keeps its order.
    this.#outgoing = this.#outgoing.filter((out) => !(out.joinSeq === previous && out.counter !== 0 && done !== undefined && out.counter <= done));
    if (joinSeq !== previous) {
      this.#joinSeq = joinSeq;
      this.#counter = 0;
    } else {
      // The same connection goes on (resumed): counting continues after what was applied.
      this.#counter = Math.max(done ?? 0, 0);
    }
    this.#warned = false;
    this.#queuedBytes = 0;
    return this.#outgoing.map((out) => this.#payload(out));
  }

  #payload(out: Outgoing): Uint8Array {
    out.joinSeq = this.#joinSeq;
    out.counter = ++this.#counter;
    return seal(this.#key, stampedPlaintext({ viewId: this.#viewId, joinSeq: out.joinSeq, counter: out.counter }, out.body));
  }

  #dropped(scope: string, event: string, limits: OfflineQueueLimits | false): void {
    if (this.#warned) return;
    this.#warned = true;
    const why = limits === false ? "offline queueing is off" : `the offline queue is full (${limits.maxEvents} events or ${limits.maxBytes} bytes)`;
    console.warn(`[Lockstep] not connected and ${why}: dropped "${scope}:${event}" and further events until reconnected`);
  }
}
