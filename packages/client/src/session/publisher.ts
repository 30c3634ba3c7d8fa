import { DEFAULT_LIMITS } from "@lockstep/protocol";
import { UsageError } from "../errors";
import { ENVELOPE_OVERHEAD, seal } from "./crypto";
import type { PublishOptions } from "../view/view";
import { bundlePlaintext, bundledSize, type PayloadCodec } from "./payload";

/** Bounds of the events a session keeps while it cannot send them (`Session.join({ offline })`). */
export interface OfflineQueueLimits {
  /** Events kept, at most. */
  readonly maxEvents: number;
  /** Bytes of their encoded data kept, at most. */
  readonly maxBytes: number;
}

/** Default {@link OfflineQueueLimits}: 1,000 events and 1 MiB. */
export const DEFAULT_OFFLINE_QUEUE: OfflineQueueLimits = Object.freeze({ maxEvents: 1000, maxBytes: 1 << 20 });


/** An event a view published: its encoded scope, name and data, and the stamp of the payload it was last sent in. */
interface Outgoing {
  readonly body: Uint8Array;
  /** The sender stamp of its payload (0: not sent yet). */
  joinSeq: number;
  counter: number;
}

/** Room for the sender stamp in front of an event body: version byte, viewId, two varUints. */
const STAMP_BYTES = 1 + 1 + DEFAULT_LIMITS.maxIdLength + 2 * 8;
/** Room for a bundle's event count. */
const COUNT_BYTES = 5;
/** Bytes of bundled events one payload carries at most, so that it stays within the reflector's payload limit. */
const MAX_BUNDLE_BYTES = DEFAULT_LIMITS.maxPayloadBytes - ENVELOPE_OVERHEAD - STAMP_BYTES - COUNT_BYTES;

/**
 * Turns what this client's views publish into message payloads, and makes sure each is applied
 * exactly once even when the connection fails. The events published within one turn travel as one
 * payload (a bundle, `payload.ts`; split only where it would exceed the payload limit): one stamp,
 * one seal, one stream entry, applied in order on every replica. Each payload's plaintext starts with
 * the sender stamp (this view, the seq of its own view-join for the connection, a counter from 1)
 * and is sealed with the session's message key; every replica applies a stamp once
 * (`kernel/senders.ts`), so the stamp is also the idempotency tag.
 *
 * Sent events stay *unconfirmed* until the replica applies them. When the connection is lost, new
 * events are *queued* (bounded, see {@link OfflineQueueLimits}). Once the session is live again,
 * the replicated sender table says how far the old connection's payloads were applied: those are
 * done, the rest are sent again, then the queue, all in their original order.
 */
export class Publisher {
  readonly #viewId: string;
  readonly #key: Uint8Array;
  readonly #payloads: PayloadCodec;
  readonly #limits: OfflineQueueLimits | false;
  /** Sent and not yet applied, then published this turn (not sealed yet) or queued (not sent), in publish order. */
  #outgoing: Outgoing[] = [];
  /** Published this turn while live: sealed together by {@link flush}. */
  #open: Outgoing[] = [];
  #openBytes = 0;
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
   * An event a view published. `wake` is given while the session is live: the event joins this
   * turn's bundle, and `wake` asks the connection to {@link flush} it at the end of the turn (or
   * before any other frame it sends). Without it, the event is queued (or dropped, said once).
   * Returns whether it was kept (bundled or queued).
   * @throws {UsageError} if the event's payload would exceed the reflector's limit.
   */
  publish(scope: string, event: string, data: unknown, options: PublishOptions | undefined, wake: (() => void) | undefined): boolean {
    const body = this.#payloads.encodeEventBody(scope, event, data);
    const size = ENVELOPE_OVERHEAD + STAMP_BYTES + body.length;
    if (size > DEFAULT_LIMITS.maxPayloadBytes) {
      throw new UsageError(`event "${scope}:${event}" is about ${size} bytes; the limit is ${DEFAULT_LIMITS.maxPayloadBytes}. Send less data per event.`);
    }
    const out: Outgoing = { body, joinSeq: 0, counter: 0 };
    if (wake !== undefined) {
      this.#outgoing.push(out);
      this.#open.push(out);
      this.#openBytes += bundledSize(body);
      wake();
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
   * Seals what was published this turn and passes the payloads to `send`, in order: one, unless the
   * events would exceed the payload limit together. The connection calls this before it sends anything.
   */
  flush(send: (payload: Uint8Array) => void): void {
    if (this.#open.length === 0) return;
    const open = this.#open;
    const bytes = this.#openBytes;
    this.#open = [];
    this.#openBytes = 0;
    for (const payload of this.#seal(open, bytes)) send(payload);
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
    this.#open = [];
    this.#openBytes = 0;
    let bytes = 0;
    for (const out of this.#outgoing) bytes += bundledSize(out.body);
    return this.#seal(this.#outgoing, bytes);
  }

  /** Stamps and seals `events` (`bytes` of them bundled) as payloads of at most the payload limit, in order. */
  #seal(events: readonly Outgoing[], bytes: number): Uint8Array[] {
    if (events.length === 0) return [];
    if (bytes <= MAX_BUNDLE_BYTES) return [this.#sealBundle(events)];
    const payloads: Uint8Array[] = [];
    let from = 0;
    let size = 0;
    for (let i = 0; i < events.length; i++) {
      const add = bundledSize(events[i]!.body);
      if (i > from && size + add > MAX_BUNDLE_BYTES) {
        payloads.push(this.#sealBundle(events.slice(from, i)));
        from = i;
        size = 0;
      }
      size += add;
    }
    payloads.push(this.#sealBundle(events.slice(from)));
    return payloads;
  }

  #sealBundle(events: readonly Outgoing[]): Uint8Array {
    const joinSeq = this.#joinSeq;
    const counter = ++this.#counter;
    const bodies: Uint8Array[] = new Array(events.length);
    for (let i = 0; i < events.length; i++) {
      const out = events[i]!;
      out.joinSeq = joinSeq;
      out.counter = counter;
      bodies[i] = out.body;
    }
    return seal(this.#key, bundlePlaintext({ viewId: this.#viewId, joinSeq, counter }, bodies));
  }

  #dropped(scope: string, event: string, limits: OfflineQueueLimits | false): void {
    if (this.#warned) return;
    this.#warned = true;
    const why = limits === false ? "offline queueing is off" : `the offline queue is full (${limits.maxEvents} events or ${limits.maxBytes} bytes)`;
    console.warn(`[Lockstep] not connected and ${why}: dropped "${scope}:${event}" and further events until reconnected`);
  }
}
