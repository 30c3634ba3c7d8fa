import { UsageError } from "../errors";
import { registry } from "../kernel/registry";

/**
 * The string form of a handle (`Data.toId`), one of:
 *
 *   d1.<space>.<blob>          encrypted with the session's data key (password + persistentId)
 *   s1.<space>.<blob>.<key>    "shareable": encrypted with its own random key, carried here
 *
 * `<space>` is the wire id of the session that stored the blob (where the reflector keeps it),
 * `<blob>` the random blob id, `<key>` 32 bytes; all base64url. No field contains a ".".
 */
const ID = /^(d1|s1)\.([A-Za-z0-9_-]{16,120})\.([A-Za-z0-9_-]{16,64})(?:\.([A-Za-z0-9_-]{43}))?$/;

/** Handles by id: equal ids give the same (immutable) handle object, as Croquet's handle cache does. */
const interned = new Map<string, DataHandle>();
const MAX_INTERNED = 10_000;

/**
 * A reference to a blob stored with `session.data.store()`: small, immutable, and an ordinary
 * model value — keep it in model state (it is saved in snapshots) and send it in events; fetch
 * the bytes with `session.data.fetch(handle)`. Handles with the same id are the same object.
 * Its string form ({@link Data.toId}) is for persisted data and URLs.
 */
export class DataHandle {
  /** The handle's string form (see {@link Data.toId}). */
  readonly id: string;
  /** Whether it carries its own key (`store(data, { shareable: true })`): then anyone holding the id can decrypt the blob. */
  readonly shareable: boolean;
  /** @internal the wire id of the session the blob is stored under. */
  readonly space: string;
  /** @internal the blob's id in its space. */
  readonly blob: string;
  /** @internal base64url of the blob's own key (shareable handles only). */
  readonly key: string | undefined;

  private constructor(id: string, space: string, blob: string, key: string | undefined) {
    this.id = id;
    this.space = space;
    this.blob = blob;
    this.key = key;
    this.shareable = key !== undefined;
    Object.freeze(this);
  }

  /** The handle of `id` (the same object for the same id). @throws {UsageError} unless `id` is a handle id. */
  static of(id: string): DataHandle {
    const known = interned.get(id);
    if (known !== undefined) return known;
    const match = typeof id === "string" ? ID.exec(id) : null;
    if (!match || (match[1] === "s1") !== (match[4] !== undefined)) {
      throw new UsageError(`Data.fromId: ${JSON.stringify(typeof id === "string" ? id.slice(0, 80) : id)} is not a data handle id (make one with Data.toId(handle))`);
    }
    const handle = new DataHandle(id, match[2]!, match[3]!, match[4]);
    if (interned.size >= MAX_INTERNED) interned.delete(interned.keys().next().value as string);
    interned.set(id, handle);
    return handle;
  }

  /** The handle of a newly stored blob. */
  static create(space: string, blob: string, key: string | undefined): DataHandle {
    return DataHandle.of(key === undefined ? `d1.${space}.${blob}` : `s1.${space}.${blob}.${key}`);
  }

  /** Croquet compatibility: a handle prints as its kind, not its key. */
  toString(): string {
    return `DataHandle(${this.shareable ? "shareable" : "session"} ${this.blob})`;
  }
}

// Handles live in snapshots and events as their id; restoring one gives the interned handle.
registry.registerBuiltin({
  id: "Lockstep.DataHandle",
  prototype: DataHandle.prototype,
  write: (handle: object) => (handle as DataHandle).id,
  read: (id: unknown) => DataHandle.of(id as string),
});
