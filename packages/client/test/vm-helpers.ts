import { MessageType, type StreamEntry } from "@lockstep/protocol";
import { registry } from "../src/registry";
import { VirtualMachine, type ViewEvent } from "../src/vm";
import type { ModelClass } from "../src/model";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A VM with a JSON payload codec, recording what it reports. */
export function makeVM(sessionId = "test-session", state?: unknown) {
  const errors: Array<{ context: string; error: unknown }> = [];
  const viewEvents: Array<[string, unknown]> = [];
  const vm = new VirtualMachine({
    sessionId,
    registry,
    decodeEvent: (payload) => JSON.parse(dec.decode(payload)) as ViewEvent,
    decodeViewData: (bytes) => (bytes.length === 0 ? undefined : JSON.parse(dec.decode(bytes))),
    modelEvent: (topic, data) => viewEvents.push([topic, data]),
    reportError: (context, error) => errors.push({ context, error }),
  }, state);
  let seq = vm.seq;
  return {
    vm,
    errors,
    viewEvents,
    root<T>(cls: ModelClass, options: unknown = {}): T {
      return vm.createRoot(cls, options, undefined) as unknown as T;
    },
    relay(time: number, scope: string, event: string, data?: unknown): void {
      const entry: StreamEntry = { type: MessageType.Relay, seq: ++seq, time, payload: enc.encode(JSON.stringify({ scope, event, data })) };
      vm.processEntry(entry);
    },
    join(time: number, viewId: string): void {
      vm.processEntry({ type: MessageType.ViewJoin, seq: ++seq, time, viewId, viewData: new Uint8Array(0) });
    },
    exit(time: number, viewId: string): void {
      vm.processEntry({ type: MessageType.ViewExit, seq: ++seq, time, viewId });
    },
    tick(time: number): void {
      vm.advanceTo(time);
    },
  };
}
