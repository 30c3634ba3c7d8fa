import { Reader, Writer } from "@lockstep/protocol";
import { Model } from "./model";
import type { ClassRegistry } from "./registry";
import { deserialize, serialize } from "./serializer/index";
import type { ViewEvent } from "./vm";

/**
 * The payload of a relayed message: scope and event as length-prefixed UTF-8, then the event data
 * serialized in message mode (models travel as references by id). No data → nothing after the event.
 */
export function encodeEvent(registry: ClassRegistry, scope: string, event: string, data: unknown): Uint8Array {
  const w = new Writer(16 + scope.length + event.length);
  w.string(scope);
  w.string(event);
  if (data !== undefined) {
    w.raw(
      serialize(data, {
        classOf: (obj) => registry.codecOf(obj),
        refOf: (obj) => (obj instanceof Model ? obj.id : undefined),
      }),
    );
  }
  return w.finish();
}

/** Decodes {@link encodeEvent}'s output; model references resolve through `getModel`. */
export function decodeEvent(
  registry: ClassRegistry,
  getModel: (id: string) => Model | undefined,
  payload: Uint8Array,
): ViewEvent {
  const r = new Reader(payload);
  const scope = r.string();
  const event = r.string();
  const data =
    r.remaining === 0
      ? undefined
      : deserialize(payload.subarray(r.offset), {
          classById: (id) => registry.codecById(id),
          resolveRef: (id) => {
            const model = getModel(id);
            if (!model) throw new Error(`event data refers to model ${id}, which does not exist (destroyed?)`);
            return model;
          },
        });
  return { scope, event, data };
}

/** Encodes `Session.join({ viewData })` (plain data; no models). */
export function encodeViewData(registry: ClassRegistry, viewData: unknown): Uint8Array {
  if (viewData === undefined) return new Uint8Array(0);
  return serialize(viewData, { classOf: (obj) => registry.codecOf(obj) });
}

/** Decodes view data; empty → undefined. */
export function decodeViewData(registry: ClassRegistry, bytes: Uint8Array): unknown {
  if (bytes.length === 0) return undefined;
  return deserialize(bytes, { classById: (id) => registry.codecById(id) });
}
