/** The graph writer: turns a value and everything reachable from it into bytes (see format.ts). */
import { className, errorText, unregistered, unregisteredSubclass } from "./describe";
import { SerializationError, Unserializable, mapValueSegment, propSegment, withSegment } from "./errors";
import {
  BUILTIN_BY_PROTOTYPE,
  Builtin,
  DATA_VIEW_KIND,
  DEFER_DEPTH,
  FORMAT_VERSION,
  INT_LIMIT,
  MAX_DEPTH,
  Tag,
} from "./format";
import { locate } from "./locate";
import { originalOf } from "./stand-ins";
import { foreignBuiltin } from "./realm";
import { ByteSink } from "./sink";
import { StringWriter } from "./strings";
import type { ClassCodec, SerializeOptions } from "./types";

/**
 * Serializes `value` and everything reachable from it. The output depends only on the graph's
 * shape, contents and insertion orders, so replicas holding the same graph produce identical bytes.
 *
 * @throws {@link SerializationError} for anything unsupported, with the path to it.
 * @example
 * ```ts
 * const bytes = serialize(model.state, { classOf: (obj) => registry.codecOf(obj) });
 * ```
 */
export function serialize(value: unknown, options: SerializeOptions): Uint8Array {
  return new GraphWriter(options).run(value);
}

class GraphWriter extends ByteSink {
  readonly #options: SerializeOptions;
  readonly #refOf: ((obj: object) => string | undefined) | undefined;
  /** Object → index; a custom type's index is stored as −index − 1 while its data is written. */
  readonly #objects = new Map<object, number>();
  readonly #strings: StringWriter = new StringWriter(this);
  #depth = 0;
  /** > 0 while writing custom-type data, which is never deferred. */
  #customDepth = 0;
  readonly #deferred: object[] = [];
  readonly #deferredTags: number[] = [];

  constructor(options: SerializeOptions) {
    super();
    this.#options = options;
    this.#refOf = options.refOf === undefined ? undefined : (obj) => options.refOf!(obj);
  }

  run(root: unknown): Uint8Array {
    this.u8(FORMAT_VERSION);
    let current = -1;
    try {
      this.#value(root);
      for (current = 0; current < this.#deferred.length; current++) {
        this.#depth = 0;
        this.#body(this.#deferred[current]!, this.#deferredTags[current]!);
      }
    } catch (error) {
      throw this.#publicError(error, root, current);
    }
    return this.finish();
  }

  #publicError(error: unknown, root: unknown, current: number): unknown {
    if (error instanceof Unserializable) {
      const deferred = this.#deferred[current];
      const prefix = deferred === undefined ? "root" : (locate(root, deferred, this.#options) ?? "root…");
      return error.toPublic(prefix);
    }
    if (error instanceof RangeError && /call stack/i.test(error.message)) {
      return new SerializationError(
        "cannot serialize: the object graph is nested too deeply for the call stack (deeply nested custom-type data?)",
        "root",
        { cause: error },
      );
    }
    return error; // thrown by classOf / refOf: the caller's own error, unchanged
  }

  #value(value: unknown): void {
    switch (typeof value) {
      case "number":
        this.#number(value);
        return;
      case "string":
        this.u8(Tag.STRING);
        this.#strings.value(value);
        return;
      case "object":
        if (value === null) this.u8(Tag.NULL);
        else this.#object(value);
        return;
      case "boolean":
        this.u8(value ? Tag.TRUE : Tag.FALSE);
        return;
      case "undefined":
        this.u8(Tag.UNDEFINED);
        return;
      case "bigint":
        if (value < 0n) {
          this.u8(Tag.BIGINT_NEG);
          this.bigMagnitude(-value);
        } else {
          this.u8(Tag.BIGINT_POS);
          this.bigMagnitude(value);
        }
        return;
      case "function":
        throw new Unserializable("a function", "");
      case "symbol":
        throw new Unserializable(String(value), " (symbols are unique to each client: use a string)");
    }
  }

  #number(value: number): void {
    if ((value | 0) === value) {
      // int32 (or −0, which must stay a float)
      if (value !== 0 || 1 / value > 0) {
        const zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
        if (zigzag < 0x80) {
          this.u8u8(Tag.INT, zigzag);
        } else {
          this.u8(Tag.INT);
          this.varUint(zigzag);
        }
        return;
      }
    } else if (Number.isInteger(value) && value >= -INT_LIMIT && value < INT_LIMIT) {
      this.u8(Tag.INT);
      this.varUint(value >= 0 ? value * 2 : -value * 2 - 1);
      return;
    }
    this.u8(Tag.FLOAT);
    this.f64(value);
  }

  #object(value: object): void {
    const obj = originalOf(value);
    const objects = this.#objects;
    const seen = objects.get(obj);
    if (seen !== undefined) {
      if (seen < 0) throw this.#customCycle(obj);
      if (seen < 0x80) {
        this.u8u8(Tag.BACKREF, seen);
      } else {
        this.u8(Tag.BACKREF);
        this.varUint(seen);
      }
      return;
    }
    const index = objects.size;
    if (this.#refOf !== undefined) {
      const id = this.#refOf(obj);
      if (id !== undefined) {
        objects.set(obj, index);
        this.u8(Tag.REF);
        this.#strings.name(id);
        return;
      }
    }
    const proto: unknown = Object.getPrototypeOf(obj);
    if (proto === Object.prototype) {
      objects.set(obj, index);
      this.#container(obj, Tag.OBJECT, undefined);
    } else if (proto === Array.prototype) {
      objects.set(obj, index);
      this.#container(obj, Tag.ARRAY, undefined);
    } else if (proto === null) {
      objects.set(obj, index);
      this.#container(obj, Tag.NULL_OBJECT, undefined);
    } else {
      const builtin = BUILTIN_BY_PROTOTYPE.get(proto as object);
      if (builtin === undefined) this.#instance(obj, proto as object, index);
      else this.#builtin(obj, builtin, index);
    }
  }

  /** `kind`: a VIEW kind or a {@link Builtin} code. */
  #builtin(obj: object, kind: number, index: number): void {
    this.#objects.set(obj, index);
    if (kind === Builtin.MAP) this.#container(obj, Tag.MAP, undefined);
    else if (kind === Builtin.SET) this.#container(obj, Tag.SET, undefined);
    else if (kind === Builtin.ARRAY_BUFFER) this.#arrayBuffer(obj as ArrayBuffer);
    else if (kind === Builtin.OBJECT) this.#container(obj, Tag.OBJECT, undefined);
    else if (kind === Builtin.ARRAY) this.#container(obj, Tag.ARRAY, undefined);
    else this.#view(obj as ArrayBufferView, kind);
  }

  #instance(obj: object, proto: object, index: number): void {
    const codec = this.#options.classOf(obj);
    if (codec === undefined) {
      const foreign = foreignBuiltin(obj, proto);
      if (foreign === undefined) throw unregistered(obj, proto);
      this.#builtin(obj, foreign, index);
      return;
    }
    if (codec.write !== undefined) {
      this.#custom(obj, codec, index);
      return;
    }
    // Restoring uses codec.prototype: any other prototype would silently change on other clients.
    if (codec.prototype !== proto) throw unregisteredSubclass(proto, codec.id);
    this.#objects.set(obj, index);
    this.#container(obj, Tag.CLASS, codec.id);
  }

  #custom(obj: object, codec: ClassCodec, index: number): void {
    this.#objects.set(obj, -index - 1);
    this.u8(Tag.CUSTOM);
    this.#strings.name(codec.id);
    let data: unknown;
    try {
      data = codec.write!(obj);
    } catch (cause) {
      throw new Unserializable(`a custom type "${codec.id}" value`, ` (its write() threw: ${errorText(cause)})`, { cause });
    }
    this.#customDepth++;
    try {
      this.#value(data);
    } catch (error) {
      throw withSegment(error, "<data>");
    }
    this.#customDepth--;
    this.#objects.set(obj, index);
  }

  #customCycle(obj: object): Unserializable {
    const id = this.#options.classOf(obj)?.id ?? className(Object.getPrototypeOf(obj) as object | null);
    return new Unserializable(
      `a reference to custom type "${id}" value from inside its own data`,
      " (read() cannot recreate an object from data that contains it: break the cycle in write())",
    );
  }

  /**
   * Writes a container's tag and body, or, at {@link DEFER_DEPTH}, only its tag: the body then
   * follows the root value, so recursion depth stays bounded however deep the graph is.
   */
  #container(obj: object, tag: number, classId: string | undefined): void {
    if (this.#depth >= DEFER_DEPTH && this.#customDepth === 0) {
      this.u8u8(Tag.DEFERRED, tag);
      if (classId !== undefined) this.#strings.name(classId);
      this.#deferred.push(obj);
      this.#deferredTags.push(tag);
      return;
    }
    this.u8(tag);
    if (classId !== undefined) this.#strings.name(classId);
    this.#body(obj, tag);
  }

  #body(obj: object, tag: number): void {
    if (++this.#depth > MAX_DEPTH) {
      throw new Unserializable(
        `custom-type data nested more than ${MAX_DEPTH} levels deep`,
        " (return flatter data from write())",
      );
    }
    if (tag === Tag.ARRAY) this.#arrayBody(obj as unknown[]);
    else if (tag === Tag.MAP) this.#mapBody(obj as Map<unknown, unknown>);
    else if (tag === Tag.SET) this.#setBody(obj as Set<unknown>);
    else this.#propsBody(obj as Record<string, unknown>);
    this.#depth--;
  }

  #arrayBody(array: unknown[]): void {
    const length = array.length;
    this.varUint(length);
    let i = 0;
    try {
      for (; i < length; i++) {
        const item = array[i];
        if (item === undefined && !(i in array)) {
          let end = i + 1;
          while (end < length && array[end] === undefined && !(end in array)) end++;
          this.u8(Tag.HOLES);
          this.varUint(end - i);
          i = end - 1;
        } else {
          this.#value(item);
        }
      }
    } catch (error) {
      throw withSegment(error, `[${i}]`);
    }
  }

  #propsBody(obj: Record<string, unknown>): void {
    const keys = Object.keys(obj);
    const symbols = Object.getOwnPropertySymbols(obj);
    if (symbols.length !== 0) {
      throw new Unserializable(`a property keyed by ${String(symbols[0])}`, " (symbols are unique to each client: use a string key)");
    }
    const count = keys.length;
    this.varUint(count);
    let i = 0;
    try {
      for (; i < count; i++) {
        const key = keys[i]!;
        this.#strings.name(key);
        this.#value(obj[key]);
      }
    } catch (error) {
      throw withSegment(error, propSegment(keys[i]!));
    }
  }

  #mapBody(map: Map<unknown, unknown>): void {
    const size = map.size;
    this.varUint(size);
    let i = 0;
    let key: unknown;
    let inValue = false;
    try {
      for (const [k, v] of map) {
        key = k;
        inValue = false;
        this.#value(k);
        inValue = true;
        this.#value(v);
        i++;
      }
    } catch (error) {
      throw withSegment(error, inValue ? mapValueSegment(key, i) : `<key>[${i}]`);
    }
    if (i !== size) throw new Unserializable("a Map that changed while it was being serialized", "");
  }

  #setBody(set: Set<unknown>): void {
    const size = set.size;
    this.varUint(size);
    let i = 0;
    try {
      for (const v of set) {
        this.#value(v);
        i++;
      }
    } catch (error) {
      throw withSegment(error, `<set>[${i}]`);
    }
    if (i !== size) throw new Unserializable("a Set that changed while it was being serialized", "");
  }

  #arrayBuffer(buffer: ArrayBuffer): void {
    const bytes = new Uint8Array(buffer);
    this.u8(Tag.ARRAY_BUFFER);
    this.varUint(bytes.length);
    this.raw(bytes);
  }

  #view(view: ArrayBufferView, kind: number): void {
    this.u8u8(Tag.VIEW, kind);
    try {
      this.#object(view.buffer);
    } catch (error) {
      throw withSegment(error, ".buffer");
    }
    this.varUint(view.byteOffset);
    this.varUint(kind === DATA_VIEW_KIND ? view.byteLength : (view as unknown as { length: number }).length);
  }
}
