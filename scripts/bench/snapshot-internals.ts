/**
 * The client internals the snapshot benchmark times, outside any session: a VM with its own host,
 * fed stream entries directly, and the exact snapshot path of `boot.ts` (serialize the VM state;
 * restore = deserialize + `new VirtualMachine(host, state)`). `scripts/bench/snapshot.mjs` bundles
 * this file with esbuild at run time, so these modules need not be exported by the package.
 */
import { MessageType, Writer } from "@lockstep/protocol";
import { serializeVM } from "../../packages/client/src/session/boot";
import { Model, type ModelClass } from "../../packages/client/src/kernel/model";
import { registry } from "../../packages/client/src/kernel/registry";
import { deserialize } from "../../packages/client/src/serializer/index";
import { openPayload, writeSenderStamp } from "../../packages/client/src/session/payload";
import { VirtualMachine, type ViewEvent, type VMHost } from "../../packages/client/src/kernel/vm";

/** The bundled copy's Model: classes the benchmark registers on it live in this bundle's registry. */
export { Model };

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * One VM driven by hand. Relayed payloads are JSON here (the session encrypts and serializes them):
 * only the snapshot path is measured, not event decoding.
 */
export class BenchVM {
  readonly host: VMHost;
  vm: VirtualMachine;
  readonly errors: Array<{ context: string; error: unknown }> = [];
  #time = 0;
  /** The view relays come from (the last one joined): payloads carry its sender stamp. */
  #sender = { viewId: "", joinSeq: 0, counter: 0 };

  constructor(sessionId: string) {
    this.host = {
      sessionId,
      registry,
      openPayload: (payload) => openPayload(payload),
      decodeEvent: (event) => JSON.parse(utf8Decoder.decode(event)) as ViewEvent,
      decodeViewData: () => undefined,
      modelEvent: () => {},
      reportError: (context, error) => this.errors.push({ context, error }),
    };
    this.vm = new VirtualMachine(this.host);
  }

  /** Creates the root model, as a session does for its first client. */
  createRoot(cls: ModelClass, options: unknown = {}): Model {
    return this.vm.createRoot(cls, options, undefined);
  }

  /** A view joins (as the first entry of every session). */
  viewJoin(viewId: string): void {
    this.#sender = { viewId, joinSeq: this.vm.seq + 1, counter: 0 };
    this.vm.processEntry({ type: MessageType.ViewJoin, seq: this.vm.seq + 1, time: (this.#time += 50), viewId, viewData: new Uint8Array(0) });
  }

  /** Processes one relayed event, 50 ms of model time after the previous entry. */
  relay(scope: string, event: string, data?: unknown): void {
    const w = new Writer();
    writeSenderStamp(w, { ...this.#sender, counter: ++this.#sender.counter });
    w.raw(utf8.encode(JSON.stringify({ scope, event, data })));
    const payload = w.finish();
    this.vm.processEntry({ type: MessageType.Relay, seq: this.vm.seq + 1, time: (this.#time += 50), payload });
  }

  /** The session's snapshot bytes: `serializeVM` of boot.ts. */
  serialize(): Uint8Array {
    return serializeVM(this.vm, registry);
  }

  /** What boot.ts `restoreVM` does with snapshot bytes (after decryption). */
  restore(bytes: Uint8Array): VirtualMachine {
    const state = deserialize(bytes, { classById: (id) => registry.codecById(id) });
    return new VirtualMachine(this.host, state);
  }
}
