import stringify from "fast-json-stable-stringify";
import nacl from "tweetnacl";
import { equalBytes, type PersistDataEntry, type PersistedEntry } from "@lockstep/protocol";
import { UsageError } from "../errors";
import { DEFAULT_PERSIST_DELAY_MS, assignDefaults, persistedFields, restoreFields, specOf, type PersistSpec } from "./persist-spec";


/** A model as persistence sees it (`Model` sits above this file). */
export interface PersistentModel {
  readonly id: string;
}

/** The writer id of the session-wide slot (persistSession, or the root's declared session()/global() fields). */
export const BASE_WRITER = "base";

/** What a session's persistence needs from the client running it (all synchronous). */
export interface PersistenceHost {
  /** The slot of the base writer: the persistentId, or the app's global slot. */
  baseSlot(): string;
  /** The (app-wide) slot of a key value. */
  keyedSlot(key: string): string;
  /** The keyed hash of data for a slot, as uploads and Persisted entries carry it. */
  hashOf(slot: string, json: string): Uint8Array;
  /** Decrypts and parses a slot's data (throws if it does not open or parse). */
  openSlotData(slot: string, blob: Uint8Array): unknown;
  /** Data of `slot` is durable (a Persisted entry was processed). */
  saved(slot: string, size: number): void;
  reportError(context: string, error: unknown): void;
}

/** Data taken for saving, not yet acknowledged as durable by the reflector. */
export interface Unacked {
  readonly slot: string;
  /** Seq of the entry right after which it was taken. */
  readonly seq: number;
  readonly json: string;
}

/** One source of persisted data and its slot. Part of the replicated state (in snapshots). */
interface Writer {
  readonly id: string;
  /** The declaring model, or null for persistSession (and for a destroyed model whose last save is not acknowledged). */
  model: PersistentModel | null;
  /** Keyed writers: the current key, or null while persistence is off. */
  key: string | null;
  /** Hash of the last data taken, so unchanged data is not saved again. */
  lastHash: string | null;
  unacked: Unacked | null;
  /** Keyed writers: seq of the entry at which the key changed, while waiting for its data; else 0. */
  loading: number;
  /** Restoring failed: never save over the stored data (until the key changes). */
  blocked: boolean;
}

/** A save requested and not yet taken: the function is called when it is due. Never in a snapshot. */
interface Pending {
  readonly fn: () => unknown;
  readonly due: number;
}

/** The shape in {@link VMPersistence.state}. */
export type PersistenceState = Array<{ id: string; model: PersistentModel | null; key: string | null; lastHash: string | null; unacked: Unacked | null; loading: number; blocked: boolean }>;

const utf8 = new TextEncoder();

/** Hash of persisted JSON text (hex SHA-512/256 prefix); synchronous, the same on every replica. */
export function jsonHash(json: string): string {
  const digest = nacl.hash(utf8.encode(json));
  let hex = "";
  for (let i = 0; i < 32; i++) hex += digest[i]!.toString(16).padStart(2, "0");
  return hex;
}

/**
 * The deterministic half of persistence, inside the VM: which data is due to be saved, which was
 * saved already (hash-deduplicated), what is waiting for an acknowledgement, which keyed slots are
 * loading. Every replica makes the same decisions at the same point of the stream; the client
 * (see `session/persist-uploads.ts`) only moves bytes.
 */
export class VMPersistence {
  readonly #host: PersistenceHost;
  readonly #writers: Writer[] = [];
  readonly #pending = new Map<string, Pending>();
  #nextDue = Infinity;
  readonly #vm: { readonly time: number; readonly seq: number };

  constructor(vm: { readonly time: number; readonly seq: number }, host: PersistenceHost, state?: PersistenceState) {
    this.#vm = vm;
    this.#host = host;
    if (state) for (const w of state) this.#writers.push({ ...w });
  }

  /** The replicated part, for snapshots (pending saves are always taken before a snapshot). */
  state(): PersistenceState {
    return this.#writers.map((w) => ({ ...w }));
  }

  /** Data waiting for an acknowledgement, oldest writer first. */
  unacked(): Unacked[] {
    const out: Unacked[] = [];
    for (const w of this.#writers) if (w.unacked) out.push(w.unacked);
    return out;
  }

  /** Keyed slots the session waits for: [slot, requestSeq]. */
  loading(): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    for (const w of this.#writers) if (w.loading > 0 && w.key !== null) out.push([this.#host.keyedSlot(w.key), w.loading]);
    return out;
  }

  #writer(id: string): Writer | undefined {
    return this.#writers.find((w) => w.id === id);
  }

  #slotOf(w: Writer): string | null {
    if (w.id === BASE_WRITER) return this.#host.baseSlot();
    return w.key === null ? null : this.#host.keyedSlot(w.key);
  }

  // ---- model side ----

  /** `persistSession(fn)` and automatic saves: `fn` is called when the save is due (latest wins). */
  request(id: string, fn: () => unknown, delayMs: number): void {
    let w = this.#writer(id);
    if (w === undefined && id === BASE_WRITER) {
      w = { id, model: null, key: null, lastHash: null, unacked: null, loading: 0, blocked: false };
      this.#writers.push(w);
    }
    if (w === undefined || w.blocked || w.loading > 0 || (w.id !== BASE_WRITER && w.key === null)) return;
    const due = this.#pending.get(id)?.due ?? this.#vm.time + delayMs;
    this.#pending.set(id, { fn, due });
    if (due < this.#nextDue) this.#nextDue = due;
  }

  /**
   * A model with a declaration was created: assign its defaults, restore `persisted` over them
   * (root only) and start saving it. Returns what `init` receives as `persisted`.
   */
  modelCreated(model: PersistentModel, isRoot: boolean, persisted: unknown): unknown {
    const spec = specOf(model);
    if (spec === undefined) return persisted;
    assignDefaults(model, spec);
    if (spec.key.kind !== "key") {
      if (!isRoot) {
        throw new UsageError(`${model.constructor.name}: persist({ key: ${spec.key.kind}() }) belongs on the root model; other models use withKey(…)`);
      }
      const w: Writer = { id: BASE_WRITER, model, key: null, lastHash: null, unacked: null, loading: 0, blocked: false };
      this.#writers.push(w);
      if (persisted === undefined) return undefined;
      try {
        const fields = restoreFields(model, spec, persisted);
        w.lastHash = jsonHash(stringify(persistedFields(model, spec)));
        return fields;
      } catch (error) {
        // As the seeds' SafeModel: keep the defaults, and never save over data we could not read.
        w.blocked = true;
        this.#host.reportError(`restoring ${model.constructor.name}'s persisted fields (nothing will be saved over them)`, error);
        return undefined;
      }
    }
    this.#writers.push({ id: model.id, model, key: null, lastHash: null, unacked: null, loading: 0, blocked: false });
    return persisted;
  }

  /** A model was destroyed: save what it has pending, then forget it once acknowledged. */
  modelDestroyed(model: PersistentModel): void {
    const w = this.#writer(model.id);
    if (w === undefined) return;
    if (this.#pending.has(w.id)) this.#take(w);
    w.model = null;
    this.#prune();
  }

  /** Model code ran (an event or a future): declared fields may have changed, save them when due. */
  changed(): void {
    for (const w of this.#writers) {
      if (w.model === null || this.#pending.has(w.id)) continue;
      const model = w.model;
      const spec = specOf(model) as PersistSpec;
      this.request(w.id, () => persistedFields(model, spec), spec.delayMs);
    }
  }

  /**
   * Runs after each stream entry (inside model code): re-evaluates keys, and takes the saves that
   * are due. Never on ticks: ticks are not part of the stream a late joiner replays, so nothing
   * replicated may depend on when they arrive.
   */
  afterStep(): void {
    this.#checkKeys();
    this.takeDue();
  }

  /** Runs after each future message (inside model code): declared fields may have changed, keys too. */
  afterFuture(): void {
    this.changed();
    this.#checkKeys();
  }

  /**
   * Model time at which the next save falls due (Infinity if none). The VM takes saves exactly at
   * that time, between the futures before and after it, so every replica takes them at the same
   * point whatever ticks it saw.
   */
  get nextDue(): number {
    return this.#nextDue;
  }

  /** Takes every save due at or before the current model time. */
  takeDue(): void {
    if (this.#vm.time < this.#nextDue) return;
    this.#nextDue = Infinity;
    for (const w of this.#writers) {
      const p = this.#pending.get(w.id);
      if (p === undefined) continue;
      if (p.due <= this.#vm.time) this.#take(w);
      else if (p.due < this.#nextDue) this.#nextDue = p.due;
    }
  }

  #checkKeys(): void {
    for (const w of this.#writers) if (w.model !== null && w.id !== BASE_WRITER) this.#checkKey(w);
  }

  /** A snapshot is taken right after this entry: take every pending save first (snapshots hold no functions). */
  takeAll(): void {
    for (const w of this.#writers) if (this.#pending.has(w.id)) this.#take(w);
    this.#nextDue = Infinity;
  }

  #checkKey(w: Writer): void {
    const spec = specOf(w.model!) as PersistSpec;
    if (spec.key.kind !== "key") return;
    let raw: unknown;
    try {
      raw = spec.key.key(w.model);
    } catch (error) {
      this.#host.reportError(`${w.model!.constructor.name}'s withKey function`, error);
      return;
    }
    const key = raw === null || raw === undefined || raw === "" ? null : String(raw);
    if (key === w.key) return;
    // Switching accounts: what the old key had pending goes to the old key's slot first.
    if (w.key !== null && this.#pending.has(w.id)) this.#take(w);
    this.#pending.delete(w.id);
    w.key = key;
    w.lastHash = null;
    w.blocked = false;
    w.loading = key === null ? 0 : this.#vm.seq;
  }

  /** Takes a writer's pending data: JSON, hash, and (unless unchanged) keeps it for upload. */
  #take(w: Writer): void {
    const p = this.#pending.get(w.id);
    this.#pending.delete(w.id);
    const slot = this.#slotOf(w);
    if (p === undefined || slot === null) return;
    let json: string;
    try {
      const value = p.fn();
      if (value === undefined) throw new UsageError("the persistSession function returned undefined; return the data to keep (JSON values)");
      json = stringify(value);
    } catch (error) {
      this.#host.reportError("persistSession", error);
      return;
    }
    const hash = jsonHash(json);
    if (hash === w.lastHash) return;
    w.lastHash = hash;
    w.unacked = { slot, seq: this.#vm.seq, json };
  }

  /** The JSON a writer would save now (for a leaving client's flush); does not change any state. */
  peek(): Unacked[] {
    const out: Unacked[] = [];
    for (const w of this.#writers) {
      const p = this.#pending.get(w.id);
      const slot = this.#slotOf(w);
      if (p !== undefined && slot !== null) {
        try {
          const json = stringify(p.fn());
          if (jsonHash(json) !== w.lastHash || w.unacked) out.push({ slot, seq: this.#vm.seq, json });
          continue;
        } catch {
          // fall back to what was taken
        }
      }
      if (w.unacked) out.push(w.unacked);
    }
    return out;
  }

  // ---- stream side ----

  /** A Persisted entry: data of its slot up to `upTo` is durable. */
  persisted(entry: PersistedEntry): void {
    for (const w of this.#writers) {
      const u = w.unacked;
      if (u === null || u.slot !== entry.slot || u.seq > entry.upTo) continue;
      if (u.seq < entry.upTo || equalBytes(this.#host.hashOf(u.slot, u.json), entry.hash)) w.unacked = null;
    }
    this.#prune();
    this.#host.saved(entry.slot, entry.size);
  }

  /** A PersistData entry: the data a keyed writer waits for (ignored unless one waits for exactly this). */
  data(entry: PersistDataEntry): void {
    const w = this.#writers.find((x) => x.loading === entry.requestSeq && x.key !== null && x.model !== null && this.#host.keyedSlot(x.key) === entry.slot);
    if (w === undefined) return;
    w.loading = 0;
    const model = w.model!;
    const spec = specOf(model) as PersistSpec;
    assignDefaults(model, spec);
    if (entry.blob.length > 0) {
      try {
        restoreFields(model, spec, this.#host.openSlotData(entry.slot, entry.blob));
      } catch (error) {
        assignDefaults(model, spec);
        w.blocked = true;
        this.#host.reportError(`loading ${model.constructor.name}'s persisted fields for its key (nothing will be saved over them)`, error);
      }
    }
    w.lastHash = jsonHash(stringify(persistedFields(model, spec)));
    // Changes made while the data was on its way were replaced; the model may want to know it arrived.
    const hook = (model as unknown as { onPersistLoaded?: unknown }).onPersistLoaded;
    if (typeof hook === "function") {
      try {
        hook.call(model, w.key);
      } catch (error) {
        this.#host.reportError(`${model.constructor.name}.onPersistLoaded`, error);
      }
    }
  }

  #prune(): void {
    for (let i = this.#writers.length - 1; i >= 0; i--) {
      const w = this.#writers[i]!;
      if (w.model === null && w.id !== BASE_WRITER && w.unacked === null) this.#writers.splice(i, 1);
    }
  }
}

/** The default save delay for `persistSession`: the root class's static `persistDelay` (ms), else 1000. */
export function persistDelayOf(root: PersistentModel | undefined): number {
  const delay = (root?.constructor as { persistDelay?: unknown } | undefined)?.persistDelay;
  return typeof delay === "number" && delay >= 0 && Number.isFinite(delay) ? delay : DEFAULT_PERSIST_DELAY_MS;
}

