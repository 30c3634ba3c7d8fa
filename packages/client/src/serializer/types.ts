/**
 * How one registered class or custom type is serialized. The same codec (same `id`) must be
 * registered on every client.
 *
 * - Without `write`/`read`: a registered class. Instances are written as `id` plus their own
 *   enumerable properties and restored with `Object.create(prototype)` and the properties assigned
 *   (no constructor, no `init`). Only objects whose prototype is exactly `prototype` may use it.
 * - With `write`/`read`: a custom type (from a Model's `static types()`). `write(obj)` returns
 *   serializable data; `read(data)` recreates the value from a restored copy of that data. The data
 *   must not refer back to the object itself (such cycles are rejected), and `read()` should not
 *   depend on the contents of objects shared with the rest of the graph, which may still be filling.
 */
export interface ClassCodec {
  /** Registered class id, stable across clients. */
  readonly id: string;
  /** Prototype of the instances; restored objects get exactly this prototype. */
  readonly prototype: object;
  // write/read are method signatures on purpose: their parameters are then checked bivariantly,
  // so codecs for concrete classes (`(v: Vec3) => [v.x, v.y, v.z]`, `(data: number[]) => Vec3`)
  // are assignable without casts and without `any`.
  /** Custom types only: value → serializable data. Should be pure and deterministic. */
  write?(obj: object): unknown;
  /** Custom types only: data (a restored copy of what `write` returned) → value. */
  read?(data: unknown): object;
}

/** What {@link serialize} needs to know about the app's classes. */
export interface SerializeOptions {
  /**
   * Registration for an object whose prototype is not one of the supported built-ins (Object,
   * null, Array, Map, Set, ArrayBuffer, typed arrays, DataView); undefined → SerializationError.
   */
  classOf(obj: object): ClassCodec | undefined;
  /**
   * Message mode: objects for which this returns an id are written as a reference (e.g. models in
   * event data), not by content. Called once for each distinct object met.
   */
  refOf?(obj: object): string | undefined;
}

/** What {@link deserialize} needs to know about the app's classes. */
export interface DeserializeOptions {
  /** The codec registered under `id`; undefined → DeserializationError (unknown class id). */
  classById(id: string): ClassCodec | undefined;
  /** Message mode: the object `refOf` named `id`. Throwing → DeserializationError with the cause. */
  resolveRef?(id: string): object;
  /**
   * What the restored graph refers to instead of a registered-class instance just allocated (its
   * properties are still filled into `obj`); default: `obj` itself. `debug=write` wraps models here.
   */
  adopt?(obj: object): object;
}
