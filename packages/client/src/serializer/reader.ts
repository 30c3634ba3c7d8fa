/** The graph reader: rebuilds a value graph from bytes written by the writer (see format.ts). */
import { errorText } from "./describe";
import { DeserializationError } from "./errors";
import { FORMAT_VERSION, MAX_DEPTH, Str, Tag, VIEW_ELEMENT_SIZE, VIEW_KINDS } from "./format";
import { ByteSource } from "./source";
import type { ClassCodec, DeserializeOptions } from "./types";

/**
 * Rebuilds the graph {@link serialize} wrote: same values, same sharing and cycles, same key and
 * entry orders, registered classes with their prototypes, custom types via their `read()`.
 *
 * @throws {@link DeserializationError} for any malformed, truncated or adversarial input, never
 * anything else (failures of `classById`, `resolveRef` and `read()` are wrapped as its `cause`).
 * @example
 * ```ts
 * const state = deserialize(bytes, { classById: (id) => registry.codecById(id) });
 * ```
 */
export function deserialize(bytes: Uint8Array, options: DeserializeOptions): unknown {
  if (!(bytes instanceof Uint8Array)) throw new DeserializationError("deserialize() needs a Uint8Array");
  const reader = new GraphReader(bytes, options);
  try {
    return reader.run();
  } catch (error) {
    if (error instanceof DeserializationError) throw error;
    // The safety net: a constructor or assignment rejecting what the checks let through, or a
    // stack overflow. Callers must only ever see the typed error.
    throw new DeserializationError(`malformed serialized data: ${errorText(error)}`, reader.offset, { cause: error });
  }
}

/** Marks an object index whose object is still being built (custom types, views). */
const PENDING: unique symbol = Symbol("pending");

class GraphReader extends ByteSource {
  readonly #options: DeserializeOptions;
  readonly #objects: unknown[] = [];
  readonly #strings: string[] = [];
  #depth = 0;
  readonly #deferred: object[] = [];
  readonly #deferredTags: number[] = [];

  constructor(bytes: Uint8Array, options: DeserializeOptions) {
    super(bytes);
    this.#options = options;
  }

  run(): unknown {
    const version = this.u8();
    if (version !== FORMAT_VERSION) {
      throw new DeserializationError(
        `unsupported serialization format version ${version} (this client reads version ${FORMAT_VERSION})`,
        0,
      );
    }
    const root = this.#value();
    for (let i = 0; i < this.#deferred.length; i++) {
      this.#depth = 0;
      this.#body(this.#deferred[i]!, this.#deferredTags[i]!);
    }
    this.expectEnd();
    return root;
  }

  #value(): unknown {
    return this.#tagged(this.u8());
  }

  #tagged(tag: number): unknown {
    switch (tag) {
      case Tag.UNDEFINED:
        return undefined;
      case Tag.NULL:
        return null;
      case Tag.FALSE:
        return false;
      case Tag.TRUE:
        return true;
      case Tag.INT: {
        const z = this.varUint();
        if (z <= 0xffffffff) return (z >>> 1) ^ -(z & 1);
        return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      }
      case Tag.FLOAT:
        return this.f64();
      case Tag.STRING:
        return this.#string();
      case Tag.BIGINT_POS:
        return this.bigMagnitude();
      case Tag.BIGINT_NEG:
        return -this.bigMagnitude();
      case Tag.BACKREF:
        return this.#backref();
      case Tag.REF:
        return this.#ref();
      case Tag.ARRAY:
      case Tag.OBJECT:
      case Tag.NULL_OBJECT:
      case Tag.MAP:
      case Tag.SET: {
        const container = this.#emptyContainer(tag);
        this.#body(container, tag);
        return container;
      }
      case Tag.CLASS: {
        const index = this.#objects.length;
        this.#body(this.#emptyContainer(tag), tag);
        return this.#objects[index]; // adopted
      }
      case Tag.CUSTOM:
        return this.#custom();
      case Tag.ARRAY_BUFFER: {
        const bytes = this.bytes(this.varUint());
        // A fresh buffer of this realm (input bytes may come from another realm).
        const buffer = new ArrayBuffer(bytes.length);
        new Uint8Array(buffer).set(bytes);
        this.#objects.push(buffer);
        return buffer;
      }
      case Tag.VIEW:
        return this.#view();
      case Tag.DEFERRED: {
        const inner = this.u8();
        if (!isContainerTag(inner)) throw this.#unexpected(inner, "a deferred container kind");
        const index = this.#objects.length;
        this.#deferred.push(this.#emptyContainer(inner));
        this.#deferredTags.push(inner);
        return this.#objects[index]; // adopted, if a class instance
      }
      default:
        throw this.#unexpected(tag, "a value tag");
    }
  }

  #unexpected(tag: number, expected: string): DeserializationError {
    return new DeserializationError(`unexpected tag 0x${tag.toString(16).padStart(2, "0")} where ${expected} belongs`, this.offset - 1);
  }

  /** A `str` (format.ts). */
  #string(): string {
    const h = this.varUint();
    if (h >= Str.TABLE_BASE) {
      const text = this.#strings[h - Str.TABLE_BASE];
      if (text === undefined) {
        throw new DeserializationError(`string reference ${h - Str.TABLE_BASE} beyond the ${this.#strings.length} strings read`, this.offset);
      }
      return text;
    }
    if (h === Str.NEW_INTERNED) {
      const text = this.utf8();
      this.#strings.push(text);
      return text;
    }
    return h === Str.LITERAL_UTF8 ? this.utf8() : this.utf16();
  }

  #backref(): unknown {
    const index = this.varUint();
    if (index >= this.#objects.length) {
      throw new DeserializationError(`back-reference to object ${index}, but only ${this.#objects.length} were read`, this.offset);
    }
    const obj = this.#objects[index];
    if (obj === PENDING) {
      throw new DeserializationError(`back-reference to object ${index} from inside its own data`, this.offset);
    }
    return obj;
  }

  #ref(): object {
    const id = this.#string();
    const resolveRef = this.#options.resolveRef;
    if (resolveRef === undefined) {
      throw new DeserializationError(`data holds a reference to "${id}", but no resolveRef was given`, this.offset);
    }
    let obj: unknown;
    try {
      obj = resolveRef.call(this.#options, id);
    } catch (cause) {
      throw new DeserializationError(`reference to "${id}" cannot be resolved: ${errorText(cause)}`, this.offset, { cause });
    }
    if ((typeof obj !== "object" && typeof obj !== "function") || obj === null) {
      throw new DeserializationError(`resolveRef("${id}") returned ${String(obj)}, not an object`, this.offset);
    }
    this.#objects.push(obj);
    return obj;
  }

  #codec(): ClassCodec {
    const id = this.#string();
    let codec: ClassCodec | undefined;
    try {
      codec = this.#options.classById(id);
    } catch (cause) {
      throw new DeserializationError(`classById("${id}") threw: ${errorText(cause)}`, this.offset, { cause });
    }
    if (codec === undefined) {
      throw new DeserializationError(
        `unknown class id "${id}": register the class under that id on every client (e.g. MyClass.register("${id}"))`,
        this.offset,
      );
    }
    return codec;
  }

  /** Creates a container, taking its object index; contents come from {@link #body}. */
  #emptyContainer(tag: number): object {
    let container: object;
    if (tag === Tag.ARRAY) container = [];
    else if (tag === Tag.OBJECT) container = {};
    else if (tag === Tag.MAP) container = new Map();
    else if (tag === Tag.SET) container = new Set();
    else if (tag === Tag.NULL_OBJECT) container = Object.create(null) as object;
    else {
      const codec = this.#codec();
      if (codec.read !== undefined) {
        throw new DeserializationError(`class id "${codec.id}" is a custom type, but the data holds a plain instance`, this.offset);
      }
      container = Object.create(codec.prototype) as object;
      const adopt = this.#options.adopt;
      this.#objects.push(adopt === undefined ? container : adopt.call(this.#options, container));
      return container;
    }
    this.#objects.push(container);
    return container;
  }

  #body(container: object, tag: number): void {
    if (++this.#depth > MAX_DEPTH) throw new DeserializationError(`nested more than ${MAX_DEPTH} levels deep`, this.offset);
    if (tag === Tag.ARRAY) this.#arrayBody(container as unknown[]);
    else if (tag === Tag.MAP) this.#mapBody(container as Map<unknown, unknown>);
    else if (tag === Tag.SET) this.#setBody(container as Set<unknown>);
    else this.#propsBody(container as Record<string, unknown>);
    this.#depth--;
  }

  #arrayBody(array: unknown[]): void {
    const length = this.varUint();
    if (length > 0xffffffff) throw new DeserializationError(`array length ${length} exceeds 2^32 - 1`, this.offset);
    let filled = 0;
    while (filled < length) {
      const tag = this.u8();
      if (tag === Tag.HOLES) {
        const count = this.varUint();
        if (count === 0 || count > length - filled) {
          throw new DeserializationError(`run of ${count} holes does not fit an array of length ${length}`, this.offset);
        }
        filled += count;
        array.length = filled;
      } else {
        array.push(this.#tagged(tag));
        filled++;
      }
    }
  }

  #propsBody(obj: Record<string, unknown>): void {
    const count = this.varUint();
    this.checkCount(count, 2, "property list");
    for (let i = 0; i < count; i++) {
      const key = this.#string();
      const value = this.#value();
      if (key === "__proto__") {
        // Assignment would set the prototype; the writer saw an own property of that name.
        Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
      } else {
        obj[key] = value;
      }
    }
  }

  #mapBody(map: Map<unknown, unknown>): void {
    const size = this.varUint();
    this.checkCount(size, 2, "Map");
    for (let i = 0; i < size; i++) {
      const key = this.#value();
      map.set(key, this.#value());
    }
  }

  #setBody(set: Set<unknown>): void {
    const size = this.varUint();
    this.checkCount(size, 1, "Set");
    for (let i = 0; i < size; i++) set.add(this.#value());
  }

  #custom(): unknown {
    const codec = this.#codec();
    const read = codec.read;
    if (read === undefined) {
      throw new DeserializationError(`class id "${codec.id}" is a registered class, but the data holds custom-type data`, this.offset);
    }
    const index = this.#objects.length;
    this.#objects.push(PENDING);
    const data = this.#value();
    let obj: unknown;
    try {
      obj = read.call(codec, data);
    } catch (cause) {
      throw new DeserializationError(`custom type "${codec.id}" could not read its data: ${errorText(cause)}`, this.offset, { cause });
    }
    this.#objects[index] = obj;
    return obj;
  }

  #view(): ArrayBufferView {
    const kind = this.u8();
    const ctor = VIEW_KINDS[kind];
    const size = VIEW_ELEMENT_SIZE[kind];
    if (ctor === undefined || size === undefined) throw new DeserializationError(`unknown binary view kind ${kind}`, this.offset - 1);
    const index = this.#objects.length;
    this.#objects.push(PENDING);
    const buffer = this.#value();
    if (!(buffer instanceof ArrayBuffer)) throw new DeserializationError("a binary view's buffer is not an ArrayBuffer", this.offset);
    const byteOffset = this.varUint();
    const length = this.varUint();
    if (byteOffset % size !== 0 || byteOffset + length * size > buffer.byteLength) {
      throw new DeserializationError(
        `binary view (offset ${byteOffset}, ${length} × ${size} bytes) does not fit its ${buffer.byteLength}-byte buffer`,
        this.offset,
      );
    }
    const view = new ctor(buffer, byteOffset, length);
    this.#objects[index] = view;
    return view;
  }
}

function isContainerTag(tag: number): boolean {
  return (
    tag === Tag.ARRAY || tag === Tag.OBJECT || tag === Tag.NULL_OBJECT || tag === Tag.MAP || tag === Tag.SET || tag === Tag.CLASS
  );
}
