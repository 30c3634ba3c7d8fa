import { Model } from "../src/kernel/model";
import { ReplayError } from "../src/errors";
import { MAX_RETIRED_SENDERS } from "../src/kernel/senders";
import { serializeVM } from "../src/session/boot";
import { registry } from "../src/kernel/registry";
import { deserialize } from "../src/serializer/index";
import { SessionReporter } from "../src/session/reporter";
import type { ViewDomain } from "../src/view/domain";
import { makeVM, testPayload } from "./vm-helpers";

/** Keeps every note it is sent, in order: a replayed note that got through would show here. */
class Board extends Model {
  notes: string[] = [];
  override init(): void {
    this.subscribe("board", "note", this.note);
  }
  note(text: string): void {
    this.notes.push(`${text}:${Math.floor(this.random() * 1000)}`);
  }
}
Board.register("ReplayTest.Board");

/** Two replicas of one session that process exactly the same entries. */
function replicas() {
  const pair = [makeVM("replay"), makeVM("replay")] as const;
  const roots = pair.map((t) => t.root<Board>(Board));
  return {
    pair,
    roots,
    join: (time: number, viewId: string) => pair.forEach((t) => t.join(time, viewId)),
    exit: (time: number, viewId: string) => pair.forEach((t) => t.exit(time, viewId)),
    /** A view sends a note: one payload, relayed to both replicas. */
    send(time: number, viewId: string, text: string): Uint8Array {
      const payload = pair[0].relay(time, "board", "note", text, viewId);
      pair[1].nextStamp(viewId); // keep the second helper's counter in step
      pair[1].relayPayload(time, payload);
      return payload;
    },
    /** Someone re-sends captured bytes: both replicas get them as a new entry. */
    replay(time: number, payload: Uint8Array): void {
      for (const t of pair) t.relayPayload(time, payload);
    },
    bytes: () => pair.map((t) => serializeVM(t.vm, registry)),
  };
}

function replayReasons(t: ReturnType<typeof makeVM>): string[] {
  return t.errors.map((e) => (e.error instanceof ReplayError ? e.error.reason : `not a replay: ${String(e.error)}`));
}

test("a repeated payload is dropped by every replica alike, and the replicas stay identical", () => {
  const r = replicas();
  r.join(1, "ann");
  const first = r.send(2, "ann", "hello");
  r.replay(3, first);
  r.replay(4, first);
  r.send(5, "ann", "again");
  for (const [i, t] of r.pair.entries()) {
    expect(r.roots[i]!.notes.map((n) => n.split(":")[0])).toEqual(["hello", "again"]);
    expect(replayReasons(t)).toEqual(["repeated", "repeated"]);
    expect(t.errors[0]!.context).toBe("relayed message #3");
  }
  const [a, b] = r.bytes();
  expect(a).toEqual(b);
});

test("a payload from before its view rejoined (a stale joinSeq) is dropped; the new connection counts from 1", () => {
  const r = replicas();
  r.join(1, "ann");
  const old = r.send(2, "ann", "before");
  r.exit(3, "ann");
  r.join(4, "ann"); // the same client, a new connection: its counter starts over
  r.replay(5, old);
  r.send(6, "ann", "after");
  for (const [i, t] of r.pair.entries()) {
    expect(r.roots[i]!.notes.map((n) => n.split(":")[0])).toEqual(["before", "after"]);
    expect(replayReasons(t)).toEqual(["stale-join"]);
    expect((t.errors[0]!.error as ReplayError).viewId).toBe("ann");
  }
  // The counter of "after" is 1 again, as it was for "before", yet it is applied: only its joinSeq differs.
  // The connection that exited is remembered as retired: a client that rejoins asks what was applied of it.
  expect(r.pair[0].vm.state().senders).toEqual([["ann", 4, 1], ["ann", 1, 1, 1]]);
  expect(r.pair[0].vm.appliedCounter("ann", 1)).toBe(1);
  expect(r.pair[0].vm.appliedCounter("ann", 4)).toBe(1);
  expect(r.pair[0].vm.appliedCounter("ann", 2)).toBeUndefined();
  const [a, b] = r.bytes();
  expect(a).toEqual(b);
});

test("a counter going backwards is dropped, even in new bytes", () => {
  const r = replicas();
  r.join(1, "ann");
  r.send(2, "ann", "one");
  r.send(3, "ann", "two");
  r.send(4, "ann", "three");
  // A message the sender never sent in this order: counter 2 after 3 (e.g. held back and re-sent).
  const backwards = testPayload({ viewId: "ann", joinSeq: 1, counter: 2 }, "board", "note", "late two");
  r.replay(5, backwards);
  const zero = testPayload({ viewId: "ann", joinSeq: 1, counter: 0 }, "board", "note", "zero");
  r.replay(6, zero);
  for (const [i, t] of r.pair.entries()) {
    expect(r.roots[i]!.notes.map((n) => n.split(":")[0])).toEqual(["one", "two", "three"]);
    expect(replayReasons(t)).toEqual(["repeated", "repeated"]);
  }
  // A gap is fine (a message the reflector refused, or one lost with a connection): counters only need to rise.
  r.replay(7, testPayload({ viewId: "ann", joinSeq: 1, counter: 10 }, "board", "note", "ten"));
  expect(r.roots.map((m) => m.notes.length)).toEqual([4, 4]);
  const [a, b] = r.bytes();
  expect(a).toEqual(b);
});

test("a payload naming a view that exited, or one that never joined, is dropped", () => {
  const r = replicas();
  r.join(1, "ann");
  r.join(2, "bob");
  const fromAnn = r.send(3, "ann", "ann's");
  r.exit(4, "ann");
  r.replay(5, fromAnn);
  r.replay(6, testPayload({ viewId: "ghost", joinSeq: 2, counter: 1 }, "board", "note", "boo"));
  r.send(7, "bob", "bob's");
  for (const [i, t] of r.pair.entries()) {
    expect(r.roots[i]!.notes.map((n) => n.split(":")[0])).toEqual(["ann's", "bob's"]);
    expect(replayReasons(t)).toEqual(["unknown-view", "unknown-view"]);
    expect(t.vm.state().senders).toEqual([["bob", 2, 1], ["ann", 1, 1, 1]]);
  }
  const [a, b] = r.bytes();
  expect(a).toEqual(b);
});

test("a replayed message is dropped before its event is decoded", () => {
  const r = replicas();
  r.join(1, "ann");
  // Not JSON after the header: decoding it would fail, but a replay never gets that far.
  const broken = testPayload({ viewId: "ghost", joinSeq: 1, counter: 1 }, "x", "y").slice(0, 10);
  r.replay(2, broken);
  expect(replayReasons(r.pair[0])).toEqual(["unknown-view"]);
});

test("a snapshot carries the live senders: a restored replica drops the same replays and applies the same new messages", () => {
  const a = makeVM("replay-snap");
  const rootA = a.root<Board>(Board);
  a.join(1, "ann");
  a.join(2, "bob");
  const annFirst = a.relay(3, "board", "note", "a1", "ann");
  a.relay(4, "board", "note", "b1", "bob");
  a.relay(5, "board", "note", "a2", "ann");
  a.exit(6, "bob");
  expect(a.vm.state().senders).toEqual([["ann", 1, 2], ["bob", 2, 1, 1]]);

  const snapshot = serializeVM(a.vm, registry);
  const codecs = { classById: (id: string) => registry.codecById(id) };
  const b = makeVM("replay-snap", deserialize(snapshot, codecs));
  expect(serializeVM(b.vm, registry)).toEqual(snapshot);
  expect(b.vm.state().senders).toEqual([["ann", 1, 2], ["bob", 2, 1, 1]]);
  expect(b.vm.appliedCounter("bob", 2)).toBe(1);

  // The same entries from here on, on both: a replay of ann's first message, and her next one.
  const next = a.relay(7, "board", "note", "a3", "ann");
  b.nextStamp("ann");
  b.relayPayload(7, next);
  for (const t of [a, b]) t.relayPayload(8, annFirst);
  expect(replayReasons(a)).toEqual(["repeated"]);
  expect(replayReasons(b)).toEqual(["repeated"]);
  const rootB = b.vm.wellKnownModel("modelRoot") as Board;
  expect(rootB.notes).toEqual(rootA.notes);
  expect(rootA.notes.map((n) => n.split(":")[0])).toEqual(["a1", "b1", "a2", "a3"]);
  expect(serializeVM(b.vm, registry)).toEqual(serializeVM(a.vm, registry));
});

test("the table remembers at most MAX_RETIRED_SENDERS ended connections, the newest", () => {
  const a = makeVM("replay-retired");
  a.root(Board);
  for (let i = 0; i <= MAX_RETIRED_SENDERS; i++) {
    a.join(2 * i + 1, `v${i}`);
    a.exit(2 * i + 2, `v${i}`);
  }
  const retired = a.vm.state().senders;
  expect(retired).toHaveLength(MAX_RETIRED_SENDERS);
  expect(retired[0]).toEqual(["v1", 3, 0, 1]);
  expect(a.vm.appliedCounter("v0", 1)).toBeUndefined();
  expect(a.vm.appliedCounter(`v${MAX_RETIRED_SENDERS}`, 2 * MAX_RETIRED_SENDERS + 1)).toBe(0);
});

test("a snapshot of the previous state version, or with a malformed sender table, is refused", () => {
  const a = makeVM("replay-v");
  a.root(Board);
  const state = deserialize(serializeVM(a.vm, registry), { classById: (id: string) => registry.codecById(id) }) as Record<string, unknown>;
  expect(() => makeVM("replay-v", { ...state, v: 1 })).toThrow(/not a Lockstep VM state of version 2/);
  expect(() => makeVM("replay-v", { ...state, senders: undefined })).toThrow(/not a Lockstep VM state/);
  expect(() => makeVM("replay-v", { ...state, senders: [["ann", "one", 0]] })).toThrow(/table of live senders is malformed/);
  expect(() => makeVM("replay-v", { ...state, senders: [["ann", 1, 0, 2]] })).toThrow(/table of live senders is malformed/);
});

test("the session reports replays once: one console warning and one (sessionId, \"error\") event of kind replay", () => {
  const delivered: Array<[string, unknown]> = [];
  const domain = { deliver: (topic: string, data: unknown) => delivered.push([topic, data]) } as unknown as ViewDomain;
  const reporter = new SessionReporter(domain, "sid", new Set());
  const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
  const error = jest.spyOn(console, "error").mockImplementation(() => undefined);
  try {
    reporter.error("relayed message #3", new ReplayError("it is message 1 of view ann's connection, whose messages up to 1 were applied already: a repeat or a replay", "repeated", "ann"));
    reporter.error("relayed message #9", new ReplayError("it claims to come from view ghost, which is not in the session", "unknown-view", "ghost"));
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/^\[Lockstep\] dropped relayed message #3: it is message 1 .* a replay \(someone re-sent captured traffic\)\. Further replays are dropped silently\.$/);
    expect(error).not.toHaveBeenCalled();
    expect(delivered).toEqual([
      ["sid:error", { kind: "replay", context: "relayed message #3", message: expect.stringContaining("a repeat or a replay"), sessionId: "sid" }],
    ]);
  } finally {
    warn.mockRestore();
    error.mockRestore();
  }
});
