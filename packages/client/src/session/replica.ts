import type { StreamEntry, SyncMessage, Timers } from "@lockstep/protocol";
import { MessageType } from "@lockstep/protocol";
import type { Model } from "../kernel/model";
import { registry } from "../kernel/registry";
import type { VMHost, VirtualMachine } from "../kernel/vm";
import { bootVM, serializeVM } from "./boot";
import { open, type SessionKeys } from "./crypto";
import type { JoinParameters } from "./join";
import { PayloadCodec, openPayload } from "./payload";
import type { Persister } from "./persist-uploads";
import { Snapshotter } from "./snapshots";
import { writeGuardFor } from "../view/write-guard";

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
  /** Seq of this client's own view-join on this connection, once processed (0 before). */
  #joinSeq = 0;

  /**
   * Boots the VM of a Sync already checked to answer this client's Join: from its snapshot, or
   * (a fresh session) by running the root model's `init` with the persisted data it brought.
   * @throws {JoinError} if the snapshot does not open or restore, or the fresh state cannot be snapshotted.
   */
  constructor(sync: SyncMessage, ctx: ReplicaContext, send: (frame: Uint8Array) => void) {
    const { params, keys } = ctx;
    let vm: VirtualMachine | undefined;
    const codec = new PayloadCodec(registry, (id) => vm?.getModel(id));
    const host: VMHost = {
      persistence: ctx.persister,
      sessionId: ctx.sessionId,
      registry,
      openPayload: (payload) => openPayload(open(keys.message, payload)),
      decodeEvent: (event) => codec.decodeEvent(event),
      // Empty view data was never encrypted: the client joined without any.
      decodeViewData: (bytes) => (bytes.length === 0 ? undefined : codec.decodeViewData(open(keys.viewData, bytes))),
      modelEvent: (topic, data) => ctx.modelEvent(topic, data),
      reportError: (context, error) => ctx.reportError(context, error),
      // debug=write: every model a proxy that throws at a write from view code.
      modelGuard: writeGuardFor(params.debug),
    };
    const booted = bootVM({
      host,
      keys,
      snapshot: sync.snapshot,
      model: params.model,
      options: params.options,
      // A snapshot already holds what init made of the persisted data; only a fresh start reads it.
      persisted: sync.snapshot.length === 0 ? ctx.persister.startingPoint(sync.persisted) : undefined,
    });
    vm = booted.vm;
    this.vm = booted.vm;
    this.root = booted.root;
    this.syncSeq = sync.seq;
    this.#viewId = ctx.viewId;
    this.snapshotter = new Snapshotter(keys, ctx.timers, send, (error) => ctx.reportError("snapshot", error));
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
    return serializeVM(this.vm, registry);
  }
}
