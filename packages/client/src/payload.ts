import { Reader, Writer } from "@lockstep/protocol";
import { Model } from "./model";
import type { ClassRegistry } from "./registry";
import { deserialize, serialize, type DeserializeOptions, type SerializeOptions } from "./serializer/index";
import type { ViewEvent } from "./vm";

/**
 * Encodes what views publish and what they join with. Built once per session: every relayed
 * message passes through here on every replica, so the serializer options are made once, not per
 * message.
 *
 * An event payload is scope and event as length-prefixed UTF-8, then the event data serialized in
 * message mode (models travel as references by id); no data → nothing after the event.
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

  encodeEvent(scope: string, event: string, data: unknown): Uint8Array {
    const w = new Writer(16 + scope.length + event.length);
    w.string(scope);
    w.string(event);
    if (data !== undefined) w.raw(serialize(data, this.#messageOut));
    return w.finish();
  }

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
