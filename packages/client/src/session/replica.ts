import type { StreamEntry, SyncMessage, Timers } from "@lockstep/protocol";
import { MessageType } from "@lockstep/protocol";
import type { Model } from "../kernel/model";
import { registry } from "../kernel/registry";
import type { VMHost, VirtualMachine } from "../kernel/vm";
import { bootVM, openSnapshot, serializeVM } from "./boot";
import { open, type SessionKeys } from "./crypto";
import type { JoinParameters } from "./join";
import { PayloadCodec, openPayload } from "./payload";
import type { Persister } from "./persist-uploads";
import { Snapshotter } from "./snapshots";
import { writeGuardFor } from "../view/write-guard";
import { debugLogOf, type DebugLog } from "../kernel/debug-log";
import { formatBytes } from "./chunks";
import { tracedVM } from "./traced-vm";

/** What every replica of one session shares: made once per `Session.join`. */
export interface ReplicaContext {
  readonly params: JoinParameters;
  readonly keys: SessionKeys;
  readonly sessionId: string;
  readonly viewId: string;
  readonly persister: Persister;
  readonly timers: Timers;
  /** A model published an event: views may want it. */
  modelEvent(topic: string, data: unknown): void;
  reportError(context: string, error: unknown): void;
}

/** What a Sync brought, decrypted: the snapshot's state, or (a fresh session) the persisted data `init` receives. */
export interface OpenedSync {
  /** The snapshot's serialized state; undefined if the session has none. */
  readonly state: Uint8Array | undefined;
  /** The persisted data a fresh session starts from (undefined with a snapshot, or none). */
  readonly persisted: unknown;
}

/**
 * What one Sync boots, for as long as that connection lasts: the VM and its root model, the
 * payload codec that decodes what the VM receives and encodes what this client's views publish
 * (model references resolve against this VM) and the snapshot votes.
 * A rejoin boots a new replica from what the reflector has; nothing here outlives its connection.
 */
export class Replica {
  readonly vm: VirtualMachine;
  readonly root: Model;
  readonly snapshotter: Snapshotter;
  /** The Sync's seq: this client's own view-join on this connection comes after it. */
  readonly syncSeq: number;
  readonly #viewId: string;
  readonly #debug: DebugLog;
  readonly #timers: Timers;
  /** Seq of this client's own view-join on this connection, once processed (0 before). */
  #joinSeq = 0;

  /**
   * What a Sync with nothing encrypted in it opens to (no snapshot, no persisted data: a fresh
   * session), so its replica can boot at once; undefined if it brings bulk data for {@link open}.
   */
  static plain(sync: SyncMessage): OpenedSync | undefined {
    return sync.snapshot.length === 0 && sync.persisted.length === 0 ? { state: undefined, persisted: undefined } : undefined;
  }

  /**
   * Decrypts what a Sync (checked to answer this client's Join) brought, for the constructor: its
   * snapshot, or (without one) the persisted data the session starts from. Bulk data opens
   * asynchronously (version-2 envelopes, WebCrypto), before the VM exists, so what the connection
   * delivers meanwhile must wait, in order.
   * @throws {JoinError} if the snapshot does not open, or the persisted data does not open or parse.
   */
  static async open(sync: SyncMessage, ctx: ReplicaContext): Promise<OpenedSync> {
    // A snapshot already holds what init made of the persisted data; only a fresh start reads it.
    if (sync.snapshot.length > 0) {
      const debug = debugLogOf(ctx.params.debug);
      const started = debug.snapshot ? ctx.timers.now() : 0;
      const state = await openSnapshot(ctx.keys, ctx.sessionId, sync.snapshot);
      if (debug.snapshot) debug.log(`snapshot: decrypted ${formatBytes(sync.snapshot.length)} → ${formatBytes(state.length)} in ${Math.round(ctx.timers.now() - started)} ms (${sync.entries.length} entries after it, up to #${sync.seq})`);
      return { state, persisted: undefined };
    }
    return { state: undefined, persisted: await ctx.persister.startingPoint(sync.persisted) };
  }

  /**
   * Boots the VM of a Sync already checked to answer this client's Join: from its snapshot, or
   * (a fresh session) by running the root model's `init` with the persisted data it brought.
   * @param opened what {@link Replica.open} (or {@link Replica.plain}) gave. The replica seals
   *   bulk data as version 2: its snapshots, and (once the slot's bulk key is derived, which starts
   *   here) the base slot's persisted data.
   * @throws {JoinError} if the snapshot does not restore, or the fresh state cannot be snapshotted.
   */
  constructor(sync: SyncMessage, ctx: ReplicaContext, send: (frame: Uint8Array) => void, opened: OpenedSync) {
    const { params, keys } = ctx;
    const debug = debugLogOf(params.debug);
    let vm: VirtualMachine | undefined;
    const codec = new PayloadCodec(registry, (id) => vm?.getModel(id));
    const host: VMHost = {
      persistence: ctx.persister,
      sessionId: ctx.sessionId,
      registry,
      openPayload: (payload) => {
        const opened = openPayload(open(keys.message, payload));
        // debug=messages: what the stream brought, decrypted (the VM set its seq and time already).
        if (debug.messages) debug.log(`received #${vm?.seq} (t=${vm?.time}) from view ${opened.sender.viewId} (#${opened.sender.counter}): ${opened.events.length} event(s)`);
        return opened;
      },
      decodeEvent: (bytes) => {
        const event = codec.decodeEvent(bytes);
        if (debug.messages) debug.log(`  "${event.scope}:${event.event}"`, event.data);
        if (debug.events) debug.log(`event "${event.scope}:${event.event}" from a view → model handlers`, event.data);
        return event;
      },
      // Empty view data was never encrypted: the client joined without any.
      decodeViewData: (bytes) => (bytes.length === 0 ? undefined : codec.decodeViewData(open(keys.viewData, bytes))),
      modelEvent: (topic, data) => ctx.modelEvent(topic, data),
      reportError: (context, error) => ctx.reportError(context, error),
      // debug=write: every model a proxy that throws at a write from view code.
      modelGuard: writeGuardFor(params.debug),
    };
    const { state, persisted } = opened;
    const restoring = debug.snapshot && state !== undefined;
    const started = restoring ? ctx.timers.now() : 0;
    const booted = bootVM({ host, state, model: params.model, options: params.options, persisted, VM: tracedVM(debug) });
    if (restoring) debug.log(`snapshot: restored the state of #${booted.vm.seq} (${formatBytes(state?.length ?? 0)}) in ${Math.round(ctx.timers.now() - started)} ms`);
    vm = booted.vm;
    this.vm = booted.vm;
    this.root = booted.root;
    this.syncSeq = sync.seq;
    this.#viewId = ctx.viewId;
    this.#debug = debug;
    this.#timers = ctx.timers;
    this.snapshotter = new Snapshotter(keys, ctx.timers, send, (error) => ctx.reportError("snapshot", error), debug);
    ctx.persister.bulkKey().catch((error: unknown) => ctx.reportError("deriving the persisted data's key", error));
  }

  /** Whether `entry` is this client's own view-join on this replica's connection. */
  isOwnJoin(entry: StreamEntry): boolean {
    return this.#joinSeq === 0 && entry.type === MessageType.ViewJoin && entry.viewId === this.#viewId && entry.seq > this.syncSeq;
  }

  /** Whether this client's own view-join on this connection was processed (it may publish). */
  get hasJoined(): boolean {
    return this.#joinSeq !== 0;
  }

  /** This client's own view-join was processed as entry `joinSeq`: its events are counted from it. */
  joined(joinSeq: number): void {
    this.#joinSeq = joinSeq;
  }

  /** Seq of this client's own view-join on this connection (0 before it was processed). */
  get joinSeq(): number {
    return this.#joinSeq;
  }

  /** The whole replicated state, serialized (identical bytes on every replica at the same point). */
  stateBytes(): Uint8Array {
    if (!this.#debug.snapshot) return serializeVM(this.vm, registry);
    const started = this.#timers.now();
    const bytes = serializeVM(this.vm, registry);
    this.snapshotter.serializeMs = this.#timers.now() - started;
    return bytes;
  }
}

