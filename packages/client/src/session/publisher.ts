import { DEFAULT_LIMITS, encodeSend } from "@lockstep/protocol";
import { seal } from "./crypto";
import { UsageError } from "../errors";
import type { PayloadCodec } from "./payload";

/**
 * Turns what this client's views publish into Send frames: each payload's plaintext starts with
 * the sender stamp (this view, the seq of its own view-join on the current connection, and a
 * counter from 1), sealed with the session's message key. Every replica applies a stamp once,
 * and only from the view's current connection, so captured ciphertext sent again is dropped.
 */
export class Publisher {
  readonly #viewId: string;
  readonly #key: Uint8Array;
  readonly #payloads: PayloadCodec;
  #joinSeq = 0;
  #counter = 0;
  #droppedWarned = false;

  constructor(viewId: string, messageKey: Uint8Array, payloads: PayloadCodec) {
    this.#viewId = viewId;
    this.#key = messageKey;
    this.#payloads = payloads;
  }

  /** This client's own view-join of a new connection was processed, as entry `joinSeq`: counting starts again. */
  joined(joinSeq: number): void {
    this.#joinSeq = joinSeq;
    this.#counter = 0;
    this.#droppedWarned = false;
  }

  /**
   * A view published while the session is `state` (reconnecting or asleep): input made meanwhile
   * cannot be ordered, so it is dropped, and said so once until the next join.
   */
  dropped(state: string, scope: string, event: string): void {
    if (!this.#droppedWarned) console.warn(`[Lockstep] not connected (${state}): dropped "${scope}:${event}" and any further events until rejoined`);
    this.#droppedWarned = true;
  }

  /**
   * The Send frame of one event.
   * @throws {UsageError} if its payload exceeds the reflector's limit (nothing is counted then).
   */
  frame(scope: string, event: string, data: unknown): Uint8Array {
    const counter = this.#counter + 1;
    const plain = this.#payloads.encodeEvent({ viewId: this.#viewId, joinSeq: this.#joinSeq, counter }, scope, event, data);
    const payload = seal(this.#key, plain);
    if (payload.length > DEFAULT_LIMITS.maxPayloadBytes) {
      throw new UsageError(`event "${scope}:${event}" is ${payload.length} bytes; the limit is ${DEFAULT_LIMITS.maxPayloadBytes}. Send less data per event.`);
    }
    this.#counter = counter;
    return encodeSend(payload);
  }
}
