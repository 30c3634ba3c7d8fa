import { MessageType, Writer, type StreamEntry } from "@lockstep/protocol";
import { registry } from "../src/kernel/registry";
import { VirtualMachine, type ViewEvent } from "../src/kernel/vm";
import { openPayload, writeSenderStamp, type SenderStamp } from "../src/session/payload";
import type { ModelClass } from "../src/kernel/model";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The view relays come from unless a test names another; joined by the helper before its first relay. */
export const DEFAULT_SENDER = "sender";

/** A payload's plaintext as the VM tests use it: a real sender stamp, then the event as JSON. */
export function testPayload(stamp: SenderStamp, scope: string, event: string, data?: unknown): Uint8Array {
  const w = new Writer();
  writeSenderStamp(w, stamp);
  w.raw(enc.encode(JSON.stringify({ scope, event, data })));
  return w.finish();
}

/**
 * A VM with a JSON payload codec (no encryption), recording what it reports. Relayed payloads
 * carry real sender stamps: the helper keeps, per view it joined, the seq of that view-join and
 * the next counter, the way a client does, so the VM's replay protection lets them through.
 */
export function makeVM(sessionId = "test-session", state?: unknown) {
  const errors: Array<{ context: string; error: unknown }> = [];
  const viewEvents: Array<[string, unknown]> = [];
  const vm = new VirtualMachine({
    sessionId,
    registry,
    openPayload: (payload) => openPayload(payload),
    decodeEvent: (event) => JSON.parse(dec.decode(event)) as ViewEvent,
    decodeViewData: (bytes) => (bytes.length === 0 ? undefined : JSON.parse(dec.decode(bytes))),
    modelEvent: (topic, data) => viewEvents.push([topic, data]),
    reportError: (context, error) => errors.push({ context, error }),
  }, state);
  let seq = vm.seq;
  /** The helper's side of each live view: what its next message is stamped with. */
  const senders = new Map<string, { joinSeq: number; counter: number }>();
  // A restored VM already knows its live views: keep counting where they left off.
  for (const [viewId, joinSeq, lastCounter, retired] of vm.state().senders) if (retired === undefined) senders.set(viewId, { joinSeq, counter: lastCounter });

  const helper = {
    vm,
    errors,
    viewEvents,
    root<T>(cls: ModelClass, options: unknown = {}): T {
      return vm.createRoot(cls, options, undefined) as unknown as T;
    },
    /** The next stamp of `viewId`'s current connection (it must have joined through the helper). */
    nextStamp(viewId: string): SenderStamp {
      const s = senders.get(viewId);
      if (!s) throw new Error(`test bug: view ${viewId} has not joined`);
      return { viewId, joinSeq: s.joinSeq, counter: ++s.counter };
    },
    /** Relays a payload as is (a replay test's captured or forged bytes). */
    relayPayload(time: number, payload: Uint8Array): void {
      const entry: StreamEntry = { type: MessageType.Relay, seq: ++seq, time, payload };
      vm.processEntry(entry);
    },
    /** Relays an event from `from` (default {@link DEFAULT_SENDER}, joined first if it is not live); returns its payload. */
    relay(time: number, scope: string, event: string, data?: unknown, from: string = DEFAULT_SENDER): Uint8Array {
      if (from === DEFAULT_SENDER && !senders.has(from)) helper.join(time, from);
      const payload = testPayload(helper.nextStamp(from), scope, event, data);
      helper.relayPayload(time, payload);
      return payload;
    },
    join(time: number, viewId: string): void {
      senders.set(viewId, { joinSeq: seq + 1, counter: 0 });
      vm.processEntry({ type: MessageType.ViewJoin, seq: ++seq, time, viewId, viewData: new Uint8Array(0) });
    },
    exit(time: number, viewId: string): void {
      senders.delete(viewId);
      vm.processEntry({ type: MessageType.ViewExit, seq: ++seq, time, viewId });
    },
    tick(time: number): void {
      vm.advanceTo(time);
    },
  };
  return helper;
}
