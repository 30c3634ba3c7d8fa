import { UsageError } from "../errors";
import type { ClassCodec } from "../serializer/index";

/** A class a Model subclass declares in `static types()`: a bare class, or one with its own codec. */
export type TypeSpec = (abstract new (...args: never[]) => object) | {
  readonly cls: abstract new (...args: never[]) => object;
  readonly write: (value: never) => unknown;
  readonly read: (data: never) => object;
};

interface Registration {
  readonly id: string;
  readonly cls: Function;
}

/**
 * Every class the app registered with `Model.register(classId)`, in registration order, plus the
 * custom types they declare. Registration happens when app modules load, before any session exists,
 * so this one registry per loaded copy of the client is inherent to the Croquet-compatible API.
 * Sessions read it at join (to hash code versions) and when (de)serializing.
 */
export class ClassRegistry {
  readonly #byId = new Map<string, Registration>();
  readonly #byClass = new Map<Function, Registration>();
  /** Codecs of the library's own value classes (e.g. Data API handles): always known, never hashed into a versionId. */
  readonly #builtins = new Map<string, ClassCodec>();
  #codecs: Map<string, ClassCodec> | undefined;
  #codecByProto: Map<object, ClassCodec> | undefined;

  /** Registers `cls` under `id`. Registering the same class twice under one id is a no-op. */
  register(cls: Function, id: string): void {
    if (typeof id !== "string" || id.length === 0) {
      throw new UsageError(`${cls.name}.register(classId) needs a non-empty string id, e.g. ${cls.name}.register("${cls.name}")`);
    }
    const existing = this.#byId.get(id);
    if (existing) {
      if (existing.cls === cls) return;
      throw new UsageError(`class id "${id}" is already registered to another class (${existing.cls.name}); every registered class needs its own id`);
    }
    const other = this.#byClass.get(cls);
    if (other) throw new UsageError(`${cls.name} is already registered as "${other.id}"; register each class once`);
    const reg = { id, cls };
    this.#byId.set(id, reg);
    this.#byClass.set(cls, reg);
    this.#codecs = undefined;
    this.#codecByProto = undefined;
  }

  /**
   * Makes a class of the library itself serializable (in snapshots and event data) under `codec.id`.
   * Unlike {@link register} it is not one of the app's classes: {@link classes} leaves it out, so it
   * takes no part in code-version hashes (the library's version already does).
   */
  registerBuiltin(codec: ClassCodec): void {
    this.#builtins.set(codec.id, codec);
    this.#codecs = undefined;
    this.#codecByProto = undefined;
  }

  /** The id `cls` was registered under, or undefined. */
  idOf(cls: Function): string | undefined {
    return this.#byClass.get(cls)?.id;
  }

  /** Registered classes in registration order. */
  classes(): ReadonlyArray<{ readonly id: string; readonly cls: Function }> {
    return [...this.#byId.values()];
  }

  #buildCodecs(): void {
    const codecs = new Map<string, ClassCodec>(this.#builtins);
    const byProto = new Map<object, ClassCodec>([...this.#builtins.values()].map((codec) => [codec.prototype, codec]));
    for (const { id, cls } of this.#byId.values()) {
      const codec: ClassCodec = { id, prototype: cls.prototype as object };
      codecs.set(id, codec);
      byProto.set(codec.prototype, codec);
    }
    for (const { id: ownerId, cls } of this.#byId.values()) {
      const typesFn = (cls as { types?: () => Record<string, TypeSpec> }).types;
      if (typeof typesFn !== "function" || !Object.prototype.hasOwnProperty.call(cls, "types")) continue;
      const types = typesFn.call(cls);
      for (const [name, spec] of Object.entries(types ?? {})) {
        const typeCls = typeof spec === "function" ? spec : spec.cls;
        if (typeof typeCls !== "function") {
          throw new UsageError(`${(cls as Function).name}.types() entry "${name}" must be a class or {cls, write, read}`);
        }
        const id = `${ownerId}/${name}`;
        const codec: ClassCodec =
          typeof spec === "function"
            ? { id, prototype: typeCls.prototype as object }
            : { id, prototype: typeCls.prototype as object, write: spec.write, read: spec.read };
        codecs.set(id, codec);
        byProto.set(codec.prototype, codec);
      }
    }
    this.#codecs = codecs;
    this.#codecByProto = byProto;
  }

  /** Serializer codec for an object, found by its exact prototype. */
  codecOf(obj: object): ClassCodec | undefined {
    if (!this.#codecByProto) this.#buildCodecs();
    return this.#codecByProto!.get(Object.getPrototypeOf(obj) as object);
  }

  /** Serializer codec by class id. */
  codecById(id: string): ClassCodec | undefined {
    if (!this.#codecs) this.#buildCodecs();
    return this.#codecs!.get(id);
  }
}

/** The registry of this copy of the client library. */
export const registry = new ClassRegistry();
