import { DEFAULT_LIMITS, Reader, Writer } from "@lockstep/protocol";
import { Model } from "../kernel/model";
import type { ClassRegistry } from "../kernel/registry";
import { deserialize, serialize, type DeserializeOptions, type SerializeOptions } from "../serializer/index";
import type { SenderStamp } from "../kernel/senders";
import type { OpenedPayload, ViewEvent } from "../kernel/vm";

export type { SenderStamp } from "../kernel/senders";
export type { OpenedPayload } from "../kernel/vm";

/** Version byte that starts a message payload's plaintext. */
export const PAYLOAD_HEADER_VERSION = 1;

/** Writes `[u8 1][string viewId][varuint joinSeq][varuint counter]`. */
export function writeSenderStamp(w: Writer, sender: SenderStamp): void {
  w.u8(PAYLOAD_HEADER_VERSION);
  w.string(sender.viewId);
  w.varUint(sender.joinSeq);
  w.varUint(sender.counter);
}

/** A message payload's plaintext: the sender stamp, then `body` (from {@link PayloadCodec.encodeEventBody}). */
export function stampedPlaintext(sender: SenderStamp, body: Uint8Array): Uint8Array {
  const w = new Writer(32 + sender.viewId.length + body.length);
  writeSenderStamp(w, sender);
  w.raw(body);
  return w.finish();
}

/**
 * Splits a message payload's plaintext into sender stamp and event bytes.
 * @throws Error if the header is missing, of another version, or malformed.
 */
export function openPayload(plaintext: Uint8Array): OpenedPayload {
  try {
    const r = new Reader(plaintext);
    const version = r.u8();
    if (version !== PAYLOAD_HEADER_VERSION) throw new Error(`unknown header version ${version}`);
    const viewId = r.string(DEFAULT_LIMITS.maxIdLength);
    const joinSeq = r.varUint();
    const counter = r.varUint();
    return { sender: { viewId, joinSeq, counter }, event: plaintext.subarray(r.offset) };
  } catch (cause) {
    throw new Error(`relayed message has no valid sender header (${(cause as Error).message}); it was sent by an incompatible client`, { cause });
  }
}

/**
 * Encodes what views publish and what they join with. Built once per session: every relayed
 * message passes through here on every replica, so the serializer options are made once, not per
 * message.
 *
 * An event payload is the sender stamp ({@link writeSenderStamp}), then scope and event as
 * length-prefixed UTF-8, then the event data serialized in message mode (models travel as
 * references by id); no data → nothing after the event.
 */
export class PayloadCodec {
  readonly #messageOut: SerializeOptions;
  readonly #messageIn: DeserializeOptions;
  readonly #plainOut: SerializeOptions;
  readonly #plainIn: DeserializeOptions;

  constructor(registry: ClassRegistry, getModel: (id: string) => Model | undefined) {
    const classOf = (obj: object) => registry.codecOf(obj);
    const classById = (id: string) => registry.codecById(id);
    this.#plainOut = { classOf };
    this.#plainIn = { classById };
    this.#messageOut = { classOf, refOf: (obj) => (obj instanceof Model ? obj.id : undefined) };
    this.#messageIn = {
      classById,
      resolveRef: (id) => {
        const model = getModel(id);
        if (!model) throw new Error(`event data refers to model ${id}, which does not exist (destroyed?)`);
        return model;
      },
    };
  }

  /** The plaintext of a message payload: sender stamp, then the event. */
  encodeEvent(sender: SenderStamp, scope: string, event: string, data: unknown): Uint8Array {
    return stampedPlaintext(sender, this.encodeEventBody(scope, event, data));
  }

  /** The event part of a payload's plaintext (what follows the sender stamp): scope, event, data. */
  encodeEventBody(scope: string, event: string, data: unknown): Uint8Array {
    const w = new Writer(16 + scope.length + event.length);
    w.string(scope);
    w.string(event);
    if (data !== undefined) w.raw(serialize(data, this.#messageOut));
    return w.finish();
  }

  /** Decodes the event bytes of a payload (after its sender stamp: {@link openPayload}). */
  decodeEvent(payload: Uint8Array): ViewEvent {
    const r = new Reader(payload);
    const scope = r.string();
    const event = r.string();
    const data = r.remaining === 0 ? undefined : deserialize(payload.subarray(r.offset), this.#messageIn);
    return { scope, event, data };
  }

  /** `Session.join({ viewData })`: plain data, no models. */
  encodeViewData(viewData: unknown): Uint8Array {
    return serialize(viewData, this.#plainOut);
  }

  decodeViewData(bytes: Uint8Array): unknown {
    return deserialize(bytes, this.#plainIn);
  }
}
