import stringify from "fast-json-stable-stringify";
import { UsageError } from "../errors";

/**
 * Declarative persistence (inspired by Hypen's `.persist()`): a model class declares which of its
 * fields outlive code changes, their defaults, a format `version` with a `migrate` chain, and a
 * key strategy. Lockstep assigns the fields (stored values merged over the defaults, old formats
 * migrated step by step) before `init` runs, and saves them automatically, hash-deduplicated, after
 * events that change them.
 */

/** Where persisted fields are kept: see {@link session}, {@link global} and {@link withKey}. */
export type KeyStrategy =
  | { readonly kind: "session" }
  | { readonly kind: "global" }
  | { readonly kind: "key"; readonly key: (model: any) => unknown };

/** Per session name (appId + name: the persistentId). The default. Root model only. */
export function session(): KeyStrategy {
  return SESSION;
}

/** Shared by every session name of the appId (all need the same password). Root model only. */
export function global(): KeyStrategy {
  return GLOBAL;
}

/**
 * Per key computed from the model's state, e.g. a user id: `withKey((m) => m.user?.id)`. The key
 * is re-evaluated after every event; `null`/`undefined`/`""` turn persistence off (stored data is
 * kept), a new value loads that key's data through the ordered stream (so every replica gets it at
 * the same point) and saves go to it from then on. The loaded data (or the defaults, if the key has
 * none) replaces the declared fields when it arrives, one round trip after the key changed; the
 * model's `onPersistLoaded(key)` method, if it has one, runs right after. Keys are shared by every
 * session of the appId and never sent in the clear. Any model class may use it.
 */
export function withKey<M = any>(key: (model: M) => unknown): KeyStrategy {
  if (typeof key !== "function") throw new UsageError("withKey(fn): fn must be a function of the model returning its key");
  return Object.freeze({ kind: "key", key });
}

const SESSION: KeyStrategy = Object.freeze({ kind: "session" });
const GLOBAL: KeyStrategy = Object.freeze({ kind: "global" });

/** What {@link persist} takes. */
export interface PersistOptions<F extends Record<string, unknown>> {
  /** The persisted fields and their defaults (JSON values; each model gets its own copy). */
  readonly fields: F;
  /** Format version of the stored fields; raise it when their meaning changes, and add a `migrate` step. Default 1. */
  readonly version?: number;
  /**
   * `migrate[n]` turns stored fields of version n − 1 into version n. Stored data of version v runs
   * through steps v + 1 … `version` in order; then it is merged over `fields`.
   */
  readonly migrate?: Readonly<Record<number, (fields: any) => Record<string, unknown>>>;
  /** Where the fields are kept. Default {@link session}(). */
  readonly key?: KeyStrategy;
  /** Model time (ms) a change may wait before it is saved, so bursts coalesce. Default 1000. */
  readonly delayMs?: number;
}

/** A validated {@link persist} declaration. */
export interface PersistSpec {
  readonly fields: Readonly<Record<string, unknown>>;
  readonly version: number;
  readonly migrate: Readonly<Record<number, (fields: any) => Record<string, unknown>>>;
  readonly key: KeyStrategy;
  readonly delayMs: number;
  /** The defaults as JSON text (copied into each model). */
  readonly defaultsJson: string;
}

/** Default save delay of persisted data, in ms of model time. */
export const DEFAULT_PERSIST_DELAY_MS = 1000;

/**
 * Declares a model class's persisted fields. Assign the result to a static `persistent` property.
 *
 * @example
 * ```ts
 * class Notes extends Model {
 *   static persistent = persist({
 *     version: 2,
 *     fields: { docs: [] as Doc[], title: "Untitled" },
 *     migrate: { 2: (v1) => ({ docs: v1.docs.map((d: DocV1) => ({ ...d, tags: [] })) }) },
 *   });
 *   declare docs: Doc[];
 *   declare title: string;
 * }
 * ```
 */
export function persist<F extends Record<string, unknown>>(options: PersistOptions<F>): PersistSpec {
  const version = options.version ?? 1;
  if (!Number.isSafeInteger(version) || version < 1) throw new UsageError(`persist({ version }): version must be a positive integer, got ${String(version)}`);
  if (typeof options.fields !== "object" || options.fields === null || Array.isArray(options.fields)) {
    throw new UsageError("persist({ fields }): fields must be an object of field names and their default values");
  }
  const migrate = options.migrate ?? {};
  for (let v = 2; v <= version; v++) {
    if (typeof migrate[v] !== "function") throw new UsageError(`persist({ version: ${version} }): migrate[${v}] (from version ${v - 1} to ${v}) is missing`);
  }
  const delayMs = options.delayMs ?? DEFAULT_PERSIST_DELAY_MS;
  if (!(delayMs >= 0) || !Number.isFinite(delayMs)) throw new UsageError(`persist({ delayMs }): must be a finite number of ms ≥ 0, got ${String(delayMs)}`);
  let defaultsJson: string;
  try {
    defaultsJson = stringify(options.fields);
  } catch (cause) {
    throw new UsageError(`persist({ fields }): the defaults must be JSON values: ${(cause as Error).message}`, { cause });
  }
  return Object.freeze({ fields: options.fields, version, migrate, key: options.key ?? SESSION, delayMs, defaultsJson });
}

/** The declaration of a model's class, if it has one. */
export function specOf(model: object): PersistSpec | undefined {
  const spec = (model.constructor as { persistent?: unknown }).persistent;
  if (spec === undefined) return undefined;
  if (!isSpec(spec)) throw new UsageError(`${model.constructor.name}.persistent must be made with persist({ fields, … })`);
  return spec;
}

function isSpec(value: unknown): value is PersistSpec {
  const s = value as Partial<PersistSpec> | null;
  return typeof s === "object" && s !== null && typeof s.defaultsJson === "string" && typeof s.version === "number" && typeof s.key === "object";
}

/** Assigns the declared defaults (fresh copies) to the model's fields. */
export function assignDefaults(model: object, spec: PersistSpec): void {
  Object.assign(model, JSON.parse(spec.defaultsJson) as Record<string, unknown>);
}

/** What is stored for declared fields: the format version and the fields. */
export function persistedFields(model: object, spec: PersistSpec): { version: number; fields: Record<string, unknown> } {
  const record = model as unknown as Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  for (const name of Object.keys(spec.fields)) fields[name] = record[name];
  return { version: spec.version, fields };
}

/**
 * Merges stored data over the defaults, migrating it from its version first, and assigns the
 * result to the model. Returns the merged fields.
 * @throws {Error} if the data is not a `{ version, fields }` record, is of a newer version than the
 * code, or a migration step throws; the model then keeps its defaults.
 */
export function restoreFields(model: object, spec: PersistSpec, stored: unknown): Record<string, unknown> {
  const s = stored as { version?: unknown; fields?: unknown } | null;
  if (typeof s !== "object" || s === null || typeof s.version !== "number" || typeof s.fields !== "object" || s.fields === null) {
    throw new Error("the stored data is not a { version, fields } record of persisted fields");
  }
  if (s.version > spec.version) {
    throw new Error(`the stored data has format version ${s.version}, newer than this code's version ${spec.version}`);
  }
  let fields = JSON.parse(JSON.stringify(s.fields)) as Record<string, unknown>;
  for (let v = s.version + 1; v <= spec.version; v++) {
    try {
      fields = spec.migrate[v]!(fields);
    } catch (cause) {
      throw new Error(`migrate[${v}] (version ${v - 1} → ${v}) threw: ${(cause as Error).message}`, { cause });
    }
    if (typeof fields !== "object" || fields === null) throw new Error(`migrate[${v}] must return an object of fields`);
  }
  const merged = JSON.parse(spec.defaultsJson) as Record<string, unknown>;
  for (const name of Object.keys(merged)) if (name in fields && fields[name] !== undefined) merged[name] = fields[name];
  Object.assign(model, merged);
  return merged;
}
