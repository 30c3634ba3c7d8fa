import { DEFAULT_LIMITS, Reader, Writer, varUintSize } from "@lockstep/protocol";
import { Model } from "../kernel/model";
import type { ClassRegistry } from "../kernel/registry";
import { deserialize, serialize, type DeserializeOptions, type SerializeOptions } from "../serializer/index";
import type { SenderStamp } from "../kernel/senders";
import type { OpenedPayload, ViewEvent } from "../kernel/vm";

export type { SenderStamp } from "../kernel/senders";
export type { OpenedPayload } from "../kernel/vm";

/** Version byte of a payload's plaintext that carries one event after its sender stamp. */
export const PAYLOAD_HEADER_VERSION = 1;
/** Version byte of a payload's plaintext that carries a bundle: a count, then each event length-prefixed. */
export const PAYLOAD_BUNDLE_VERSION = 2;

/** Writes `[u8 version][string viewId][varuint joinSeq][varuint counter]`. */
export function writeSenderStamp(w: Writer, sender: SenderStamp, version: number = PAYLOAD_HEADER_VERSION): void {
  w.u8(version);
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
 * The plaintext of a payload carrying `bodies` (each from {@link PayloadCodec.encodeEventBody}) in
 * order: `[u8 2][sender stamp][varuint count][count × (varuint length, body)]`. One stamp, one
 * seal and one stream entry for all the events a view published in one turn; a single event still
 * travels as version 1 ({@link stampedPlaintext}).
 */
export function bundlePlaintext(sender: SenderStamp, bodies: readonly Uint8Array[]): Uint8Array {
  if (bodies.length === 1) return stampedPlaintext(sender, bodies[0]!);
  let size = 40 + sender.viewId.length;
  for (const body of bodies) size += 5 + body.length;
  const w = new Writer(size);
  writeSenderStamp(w, sender, PAYLOAD_BUNDLE_VERSION);
  w.varUint(bodies.length);
  for (const body of bodies) w.bytes(body);
  return w.finish();
}

/** Bytes a body adds to a bundle's plaintext: its length prefix and itself. */
export function bundledSize(body: Uint8Array): number {
  return varUintSize(body.length) + body.length;
}

/**
 * Splits a message payload's plaintext into sender stamp and event bytes (one event for version 1,
 * the bundle's events in order for version 2).
 * @throws Error if the header is missing, of another version, or malformed.
 */
export function openPayload(plaintext: Uint8Array): OpenedPayload {
  try {
    const r = new Reader(plaintext);
    const version = r.u8();
    if (version !== PAYLOAD_HEADER_VERSION && version !== PAYLOAD_BUNDLE_VERSION) throw new Error(`unknown header version ${version}`);
    const viewId = r.string(DEFAULT_LIMITS.maxIdLength);
    const joinSeq = r.varUint();
    const counter = r.varUint();
    const sender = { viewId, joinSeq, counter };
    if (version === PAYLOAD_HEADER_VERSION) return { sender, events: [plaintext.subarray(r.offset)] };
    const count = r.varUint();
    // Every bundled event takes at least its length byte: a count past that is a lie, not a reason to allocate.
    if (count < 2 || count > r.remaining) throw new Error(`a bundle of ${count} events in ${r.remaining} bytes`);
    const events: Uint8Array[] = new Array(count);
    for (let i = 0; i < count; i++) events[i] = r.bytes();
    if (r.remaining !== 0) throw new Error(`${r.remaining} bytes after the bundle's last event`);
    return { sender, events };
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
