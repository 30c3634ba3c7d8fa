import {
  DEFAULT_LIMITS,
  MessageType,
  type TimerHandle,
  type Timers,
  PersistOutcome,
  encodeClientMessage,
  toBase64Url,
  type PersistAckMessage,
} from "@lockstep/protocol";
import {
  BULK_ENVELOPE_OVERHEAD,
  DecryptionError,
  ENVELOPE_OVERHEAD,
  deriveAppPersistMaster,
  derive32,
  hmacSha512,
  open,
  openBulk,
  seal,
  sealBulk,
  slotBulkKey,
  slotKeys,
  type BulkKey,
  type SlotKeys,
} from "./crypto";
import { JoinError, UsageError } from "../errors";
import { runAsModel } from "../kernel/execution";
import type { ModelClass } from "../kernel/model";
import type { PersistSpec } from "../kernel/persist-spec";
import type { ClassRegistry } from "../kernel/registry";
import type { VirtualMachine } from "../kernel/vm";
import type { PersistenceHost, Unacked } from "../kernel/persistence";
import { formatBytes, uploadChunks } from "./chunks";

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** How long a leaving client waits for its last save to be acknowledged, in ms. */
export const FLUSH_TIMEOUT_MS = 5000;
/** How long after a failed upload the client tries again, in ms. */
const RETRY_MS = 2000;

/** The session's way to the reflector, as persistence needs it (the session controller implements it). */
export interface Uplink {
  send(frame: Uint8Array): void;
  /** The VM while this client is joined and caught up (it may upload and ask for loads then), else undefined. */
  liveVM(): VirtualMachine | undefined;
}

/** What a {@link Persister} is made with. */
export interface PersisterContext {
  readonly appId: string;
  readonly password: string;
  readonly persistentId: string;
  readonly viewId: string;
  readonly debug: boolean;
  readonly model: ModelClass;
  readonly registry: ClassRegistry;
  /** Master of the session name's slot keys (and of its slot name), derived with the session keys. */
  readonly persistMaster: Uint8Array;
  readonly timers: Timers;
  readonly uplink: Uplink;
  reportError(context: string, error: unknown): void;
}

/**
 * The persistence slot of a session name's data (the `session()` strategy): derived from the
 * password's persistence master rather than the public persistentId, so nobody without the
 * password can name the slot, let alone claim or lock it first.
 */
export function sessionSlotOf(persistMaster: Uint8Array): string {
  return toBase64Url(derive32(persistMaster, "lockstep/v2/persist/session"));
}

function specOfClass(cls: Function): PersistSpec | undefined {
  const spec = (cls as { persistent?: PersistSpec }).persistent;
  return typeof spec === "object" && spec !== null && typeof spec.defaultsJson === "string" ? spec : undefined;
}

/**
 * One client's side of persistence (PROTOCOL.md §13): slot names and keys, the join's starting
 * data, uploads when this client is the elected uploader, loads of keyed slots, acknowledgements,
 * and the flush of a leaving client. The decisions themselves live in the VM (`kernel/persistence.ts`).
 *
 * Envelopes: the base slot (the data a session starts from: `persistSession`, the root's
 * session()/global() fields) is bulk data, opened once per join outside the VM, so it is sealed as
 * a version-2 envelope (AES-256-GCM, asynchronous) once its bulk key is derived. Keyed slots stay
 * version 1: their data reaches the VM as a PersistData entry and is opened by
 * {@link Persister.openSlotData} inside model execution, which must stay synchronous and
 * deterministic (WebCrypto is asynchronous only); opening them beforehand would stall the ordered
 * stream at each such entry. Either version opens at join, so data stored earlier keeps loading.
 */
export class Persister implements PersistenceHost {
  readonly #ctx: PersisterContext;
  #appMaster: Uint8Array | undefined;
  /** The slot of this session name's own data, keyed by `persistMaster`. */
  readonly #sessionSlot: string;
  #baseSlot = "";
  readonly #keys = new Map<string, SlotKeys>();
  readonly #keyedSlots = new Map<string, string>();
  /** Uploads sent and not answered, by `slot@seq`. */
  readonly #inFlight = new Map<string, Promise<PersistAckMessage>>();
  readonly #waiters = new Map<string, (ack: PersistAckMessage) => void>();
  /** Uploads answered for good (stored, unchanged, superseded or denied): never sent again. */
  readonly #done = new Set<string>();
  /** Loads asked for, by `slot@requestSeq`. */
  readonly #loadsSent = new Set<string>();
  #retryTimer: TimerHandle | undefined;
  readonly #named = new WeakMap<Unacked, { key: string; plain: Uint8Array; hash: Uint8Array }>();
  /** The last upload sent for each `slot@seq` (acks name only slot and seq). */
  readonly #sentKeys = new Map<string, string>();
  /** The base slot's bulk key, once {@link bulkKey} was called: from then on its uploads are version-2 envelopes. */
  #baseBulk: Promise<BulkKey> | undefined;
  /** Version-2 uploads go out in the order they were started, each once sealed. */
  #sealedInOrder: Promise<void> = Promise.resolve();
  /** Counts connections lost (and disposal): an upload sealed for an earlier one is not sent. */
  #epoch = 0;

  constructor(ctx: PersisterContext) {
    this.#ctx = ctx;
    this.#sessionSlot = sessionSlotOf(ctx.persistMaster);
  }

  /**
   * Derives what the declared key strategies need before joining: app-wide slots (global, withKey)
   * need a second key, derived from the password and appId.
   */
  async prepare(): Promise<void> {
    const root = specOfClass(this.#ctx.model);
    const needsApp = root?.key.kind === "global" || this.#ctx.registry.classes().some(({ cls }) => specOfClass(cls)?.key.kind === "key");
    if (needsApp) this.#appMaster = await deriveAppPersistMaster(this.#ctx.password, this.#ctx.appId);
    this.#baseSlot = root?.key.kind === "global" ? toBase64Url(derive32(this.#app(), "lockstep/v1/persist/global")) : this.#sessionSlot;
  }

  #app(): Uint8Array {
    if (this.#appMaster === undefined) throw new UsageError("withKey()/global() persistence needs its class registered before Session.join");
    return this.#appMaster;
  }

  /** The slot and token a Join names (the slot a new session starts from). */
  joinSlot(): { slot: string; token: Uint8Array } {
    return { slot: this.#baseSlot, token: this.keysOf(this.#baseSlot).token };
  }

  keysOf(slot: string): SlotKeys {
    let keys = this.#keys.get(slot);
    if (keys === undefined) {
      keys = slotKeys(this.#masterOf(slot), slot);
      this.#keys.set(slot, keys);
    }
    return keys;
  }

  #masterOf(slot: string): Uint8Array {
    return slot === this.#sessionSlot ? this.#ctx.persistMaster : this.#app();
  }

  /**
   * Derives (once) the bulk key of the base slot, which opens the data a session starts from; from
   * the call on, the base slot's uploads are sealed as version-2 envelopes (a replica booted from
   * decrypted data calls it). Call after {@link prepare}.
   */
  bulkKey(): Promise<BulkKey> {
    const slot = this.#baseSlot;
    this.#baseBulk ??= slotBulkKey(this.#masterOf(slot), slot, this.keysOf(slot).enc);
    return this.#baseBulk;
  }

  // ---- PersistenceHost (called from the VM, synchronously) ----

  baseSlot(): string {
    return this.#baseSlot;
  }

  keyedSlot(key: string): string {
    let slot = this.#keyedSlots.get(key);
    if (slot === undefined) {
      slot = toBase64Url(derive32(this.#app(), `lockstep/v1/persist/key/${key}`));
      this.#keyedSlots.set(key, slot);
    }
    return slot;
  }

  hashOf(slot: string, json: string): Uint8Array {
    return hmacSha512(this.keysOf(slot).hashKey, utf8.encode(json)).subarray(0, 32);
  }

  /** Keyed slots' data, opened inside model execution: version-1 envelopes only (synchronous, see the class comment). */
  openSlotData(slot: string, blob: Uint8Array): unknown {
    return JSON.parse(utf8Decoder.decode(open(this.keysOf(slot).enc, blob)));
  }

  saved(_slot: string, size: number): void {
    if (this.#ctx.debug && this.#ctx.uplink.liveVM() !== undefined) console.log(`[Lockstep] Persistent data saved (${formatBytes(size)})`);
  }

  reportError(context: string, error: unknown): void {
    this.#ctx.reportError(context, error);
  }

  // ---- joining ----

  /**
   * Opens the persisted data a new session starts from (Sync `persisted`, a version-2 or version-1
   * envelope): the value root `init` receives, or undefined if there is none. Derives the base
   * slot's bulk key (see {@link bulkKey}).
   * @throws {JoinError} naming the persistentId and the slot if it does not decrypt or parse; nothing is overwritten.
   */
  async startingPoint(persisted: Uint8Array): Promise<unknown> {
    const key = await this.bulkKey();
    if (persisted.length === 0) return undefined;
    let plain: Uint8Array;
    try {
      plain = await openBulk(key, persisted);
    } catch (cause) {
      throw this.#unreadable(cause);
    }
    return this.#restored(plain);
  }

  /** The JoinError of starting data that does not open (anything but a DecryptionError is thrown as it is). */
  #unreadable(cause: unknown): unknown {
    if (!(cause instanceof DecryptionError)) return cause;
    const slot = this.#baseSlot;
    return new JoinError(
      `the persisted data of persistentId ${this.#ctx.persistentId} could not be decrypted (corrupt, or saved under another password). Nothing was overwritten; ` +
        `the reflector keeps earlier versions (\`lockstep-reflector persist list ${slot}\`, then \`persist rollback\`).`,
      { cause },
    );
  }

  /** The decrypted starting data, parsed. */
  #restored(plain: Uint8Array): unknown {
    const slot = this.#baseSlot;
    if (this.#ctx.debug) {
      console.log(`[Lockstep] Session loaded from persistent data (persistentId: ${this.#ctx.persistentId})`);
    }
    let text: string;
    try {
      text = utf8Decoder.decode(plain);
    } catch (cause) {
      throw new JoinError(
        `the persisted data of persistentId ${this.#ctx.persistentId} is not UTF-8 text. Nothing was overwritten; the reflector keeps earlier versions ` +
          `(\`lockstep-reflector persist list ${slot}\`, then \`persist rollback\`).`,
        { cause },
      );
    }
    if (this.#ctx.debug) console.log(`[Lockstep] Restoring ${formatBytes(plain.length)} of persistent data`);
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw new JoinError(
        `the persisted data of persistentId ${this.#ctx.persistentId} (slot ${slot}) is corrupt (not JSON). Nothing was overwritten; the reflector keeps earlier versions ` +
          `(\`lockstep-reflector persist list ${slot}\`, then \`persist rollback\`).`,
        { cause },
      );
    }
  }

  // ---- uploads and loads ----

  /** Uploads what waits for acknowledgement (if this client is elected) and asks for awaited keyed slots. */
  poll(): void {
    const vm = this.#ctx.uplink.liveVM();
    if (vm === undefined) return;
    if (vm.firstView === this.#ctx.viewId) {
      for (const u of vm.persistence.unacked()) this.#upload(u);
    }
    for (const [slot, requestSeq] of vm.persistence.loading()) {
      const key = `${slot}@${requestSeq}`;
      if (this.#loadsSent.has(key)) continue;
      this.#loadsSent.add(key);
      this.#ctx.uplink.send(encodeClientMessage({ type: MessageType.PersistLoad, slot, token: this.keysOf(slot).token, requestSeq }));
    }
  }

  /** `slot@seq#hash`: names one piece of data (futures may change data without a new seq). */
  #keyOf(u: Unacked): { key: string; plain: Uint8Array; hash: Uint8Array } {
    let known = this.#named.get(u);
    if (known === undefined) {
      const plain = utf8.encode(u.json);
      const hash = hmacSha512(this.keysOf(u.slot).hashKey, plain).subarray(0, 32);
      known = { key: `${u.slot}@${u.seq}#${toBase64Url(hash)}`, plain, hash };
      this.#named.set(u, known);
    }
    return known;
  }

  #upload(u: Unacked): Promise<PersistAckMessage> | undefined {
    const { key, plain, hash } = this.#keyOf(u);
    if (this.#done.has(key)) return undefined;
    const pending = this.#inFlight.get(key);
    if (pending !== undefined) return pending;
    const bulk = u.slot === this.#baseSlot ? this.#baseBulk : undefined;
    const size = plain.length + (bulk === undefined ? ENVELOPE_OVERHEAD : BULK_ENVELOPE_OVERHEAD);
    if (size > DEFAULT_LIMITS.maxPersistBytes) {
      this.#done.add(key);
      this.reportError("persistSession", new UsageError(`persisted data of ${formatBytes(plain.length)} exceeds the ${formatBytes(DEFAULT_LIMITS.maxPersistBytes)} limit; keep less`));
      return undefined;
    }
    this.#sentKeys.set(`${u.slot}@${u.seq}`, key);
    const answered = new Promise<PersistAckMessage>((resolve) => this.#waiters.set(key, resolve));
    this.#inFlight.set(key, answered);
    if (bulk === undefined) {
      this.#sendChunks(u, hash, plain.length, seal(this.keysOf(u.slot).enc, plain));
      return answered;
    }
    // Sealed off the event loop; sent in the order started (a later save of the slot never overtakes an earlier one).
    const epoch = this.#epoch;
    const sealed = bulk.then((k) => sealBulk(k, plain));
    this.#sealedInOrder = this.#sealedInOrder.then(
      () =>
        sealed.then(
          (blob) => {
            if (epoch === this.#epoch && this.#inFlight.get(key) === answered) this.#sendChunks(u, hash, plain.length, blob);
          },
          // Answered like a failed store: reported, and retried later.
          (error: unknown) => {
            if (epoch !== this.#epoch || this.#inFlight.get(key) !== answered) return;
            const message = `it could not be encrypted: ${(error as Error)?.message ?? String(error)}`;
            this.acknowledged({ type: MessageType.PersistAck, slot: u.slot, seq: u.seq, outcome: PersistOutcome.Failed, version: 0, message });
          },
        ),
    );
    return answered;
  }

  /** Resolves once every upload started so far is on the wire, or was dropped (version-2 envelopes are sealed asynchronously). */
  sending(): Promise<void> {
    return this.#sealedInOrder;
  }

  /** Sends an upload's envelope back to back and in order: the reflector reassembles one upload per session at a time. */
  #sendChunks(u: Unacked, hash: Uint8Array, size: number, blob: Uint8Array): void {
    const { slot, seq } = u;
    const token = this.keysOf(slot).token;
    for (const { offset, data } of uploadChunks(blob)) {
      this.#ctx.uplink.send(encodeClientMessage({ type: MessageType.PersistChunk, slot, token, seq, hash, size, total: blob.length, offset, data }));
    }
  }

  /** The reflector answered an upload. */
  acknowledged(ack: PersistAckMessage): void {
    const key = this.#sentKeys.get(`${ack.slot}@${ack.seq}`) ?? `${ack.slot}@${ack.seq}`;
    this.#sentKeys.delete(`${ack.slot}@${ack.seq}`);
    this.#inFlight.delete(key);
    const resolve = this.#waiters.get(key);
    this.#waiters.delete(key);
    if (ack.outcome === PersistOutcome.Failed) {
      this.reportError("saving persisted data", new Error(ack.message || "the reflector could not store it"));
      if (this.#retryTimer === undefined) {
        this.#retryTimer = this.#ctx.timers.setTimeout(() => {
          this.#retryTimer = undefined;
          this.poll();
        }, RETRY_MS);
      }
    } else {
      this.#done.add(key);
      if (ack.outcome === PersistOutcome.Denied) this.reportError("saving persisted data", new Error(ack.message || "the reflector refused it"));
    }
    resolve?.(ack);
  }

  /**
   * Uploads everything not yet acknowledged, including saves still waiting for their delay, and
   * resolves once the reflector answered (or after `timeoutMs`). For a leaving first view: nothing
   * it saw saved is lost with it. Any other view resolves at once: the reflector takes persisted
   * data only from the first view, which uploads the same (deterministic) saves when they are due.
   * @returns the answers received.
   */
  async flush(timeoutMs = FLUSH_TIMEOUT_MS): Promise<PersistAckMessage[]> {
    const vm = this.#ctx.uplink.liveVM();
    if (vm === undefined || vm.firstView !== this.#ctx.viewId) return [];
    let items: Unacked[];
    try {
      items = runAsModel(vm, () => vm.persistence.peek());
    } catch (error) {
      this.reportError("persistSession", error);
      return [];
    }
    const answers = items.map((u) => this.#upload(u)).filter((p): p is Promise<PersistAckMessage> => p !== undefined);
    if (answers.length === 0) return [];
    const timers = this.#ctx.timers;
    let timer: TimerHandle | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = timers.setTimeout(() => resolve("timeout"), timeoutMs)));
    const result = await Promise.race([Promise.all(answers), timeout]);
    timers.clearTimeout(timer);
    if (result === "timeout") {
      this.reportError("saving persisted data", new Error(`no acknowledgement from the reflector within ${timeoutMs} ms; the last changes may not be durable`));
      return [];
    }
    return result;
  }

  /**
   * The connection dropped: uploads and loads in flight will never be answered. Their waiters get
   * `Failed`, and everything not acknowledged is sent again once the session rejoins.
   */
  connectionLost(): void {
    this.#epoch++;
    for (const resolve of this.#waiters.values()) resolve({ type: MessageType.PersistAck, slot: "", seq: 0, outcome: PersistOutcome.Failed, version: 0, message: "connection lost" });
    this.#waiters.clear();
    this.#inFlight.clear();
    this.#sentKeys.clear();
    this.#loadsSent.clear();
  }

  /** Stops retrying (the session ended). */
  dispose(): void {
    this.#epoch++;
    if (this.#retryTimer !== undefined) this.#ctx.timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    for (const resolve of this.#waiters.values()) resolve({ type: MessageType.PersistAck, slot: "", seq: 0, outcome: PersistOutcome.Failed, version: 0, message: "session ended" });
    this.#waiters.clear();
  }
}
