/**
 * The object-graph serializer: snapshots of the whole model graph (hashed by every replica, so the
 * output is deterministic) and, in message mode, event data with models passed by reference.
 *
 * Supported: undefined, null, booleans, numbers (−0, NaN, ±Infinity exactly), strings (any, lone
 * surrogates too), BigInt; arrays (holes kept; extra non-index properties are not written), plain
 * and null-prototype objects (own enumerable string keys, insertion order), Map, Set, ArrayBuffer,
 * every typed array and DataView (views keep sharing their buffers); registered class instances
 * and custom types (see {@link ClassCodec}); shared references and cycles of all of these.
 * Accessor properties are read and restored as data properties; frozen or sealed objects come
 * back unfrozen. The byte format is documented in `format.ts`.
 *
 * @example
 * ```ts
 * const bytes = serialize(state, { classOf: (obj) => registry.codecOf(obj) });
 * const copy = deserialize(bytes, { classById: (id) => registry.codecById(id) });
 * ```
 */
export { serialize } from "./writer";
export { deserialize } from "./reader";
export { SerializationError, DeserializationError } from "./errors";
export { FORMAT_VERSION } from "./format";
export { registerStandIn } from "./stand-ins";
export type { ClassCodec, SerializeOptions, DeserializeOptions } from "./types";
