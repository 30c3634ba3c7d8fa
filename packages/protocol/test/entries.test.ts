/** encodeEntries / decodeEntries: a stream entry list on its own, as a reflector stores its message log. */
import { MessageType, decodeEntries, decodeServerMessage, encodeEntries, encodeServerMessage, type StreamEntry } from "../src/index";
import { hex, sameBytes, toHex } from "@lockstep/test-support";
import { expectProtocolError, patternBytes, sampleEntryLists } from "./helpers";

const lists = sampleEntryLists.map((entries, i) => [`${i}: ${entries.length} entries`, entries] as const);

/** Encodes, decodes, and checks that the result is equal and re-encodes to the same bytes. */
function roundTrip(entries: readonly StreamEntry[]): Uint8Array {
  const bytes = encodeEntries(entries);
  const decoded = decodeEntries(bytes);
  expect(decoded).toEqual(entries);
  expect(toHex(encodeEntries(decoded))).toBe(toHex(bytes));
  return bytes;
}

describe("round trips", () => {
  test.each(lists)("list %s", (_name, entries) => {
    roundTrip(entries);
  });

  test("an empty list is one zero byte", () => {
    expect(toHex(roundTrip([]))).toBe("00");
  });

  test("a long log with large payloads", () => {
    const log: StreamEntry[] = [];
    for (let i = 0; i < 3000; i++) {
      const seq = i + 1;
      const time = i * 17;
      log.push(
        i % 500 === 499
          ? { type: MessageType.SnapshotRequest, seq, time }
          : i % 10 === 0
            ? { type: MessageType.ViewJoin, seq, time, viewId: `v${i}`, viewData: patternBytes(i % 40, i) }
            : i % 10 === 5
              ? { type: MessageType.ViewExit, seq, time, viewId: `v${i - 5}` }
              : { type: MessageType.Relay, seq, time, payload: patternBytes(i === 7 ? 300_000 : i % 300, i) },
      );
    }
    const bytes = encodeEntries(log);
    const decoded = decodeEntries(bytes);
    expect(decoded.length).toBe(log.length);
    expect(decoded).toEqual(log);
  });

  test("is the same encoding as a Sync frame's entry list", () => {
    for (const entries of sampleEntryLists) {
      const frame = encodeServerMessage({
        type: MessageType.Sync,
        sessionId: "s",
        viewId: "v",
        time: 0,
        seq: 0,
        snapshot: new Uint8Array(0),
        persisted: new Uint8Array(0),
        auth: new Uint8Array(0),
        entries,
      });
      const list = encodeEntries(entries);
      // header 02 41 | "s" | "v" | time 0 | seq 0 | three empty byte fields | flags 0: 12 bytes, then the list.
      expect(toHex(frame.subarray(12))).toBe(toHex(list));
      const sync = decodeServerMessage(frame);
      if (sync.type !== MessageType.Sync) throw new Error("expected a Sync");
      expect(sync.entries).toEqual(decodeEntries(list));
    }
  });

  test("byte fields are views into the input (no copies)", () => {
    const bytes = encodeEntries([
      { type: MessageType.Relay, seq: 1, time: 0, payload: patternBytes(100) },
      { type: MessageType.ViewJoin, seq: 2, time: 0, viewId: "v", viewData: patternBytes(10) },
    ]);
    const [relay, viewJoin] = decodeEntries(bytes);
    if (relay?.type !== MessageType.Relay || viewJoin?.type !== MessageType.ViewJoin) throw new Error("expected a Relay and a ViewJoin");
    expect(relay.payload.buffer).toBe(bytes.buffer);
    expect(sameBytes(relay.payload, patternBytes(100))).toBe(true);
    expect(viewJoin.viewData.buffer).toBe(bytes.buffer);
  });

  test("decodes a view at an offset into a larger buffer", () => {
    for (const entries of sampleEntryLists) {
      const bytes = encodeEntries(entries);
      const backing = new Uint8Array(bytes.length + 9).fill(0xee);
      backing.set(bytes, 5);
      expect(decodeEntries(backing.subarray(5, 5 + bytes.length))).toEqual(entries);
    }
  });
});

describe("malformed input", () => {
  test.each(lists)("every strict prefix of list %s is a ProtocolError", (_name, entries) => {
    const bytes = encodeEntries(entries);
    for (let length = 0; length < bytes.length; length++) {
      expectProtocolError(() => decodeEntries(bytes.slice(0, length)));
    }
  });

  test.each(lists)("list %s with trailing bytes is a ProtocolError", (_name, entries) => {
    const bytes = encodeEntries(entries);
    for (const extra of [[0], [0xff], [MessageType.SnapshotRequest, 1, 0]]) {
      const error = expectProtocolError(() => decodeEntries(Uint8Array.from([...bytes, ...extra])));
      expect(error.message).toBe(`${extra.length} unexpected trailing bytes`);
    }
  });

  test("entry types that are not stream entries", () => {
    const entryTypes = new Set<number>([MessageType.Relay, MessageType.ViewJoin, MessageType.ViewExit, MessageType.SnapshotRequest, MessageType.Persisted, MessageType.PersistData]);
    for (let type = 0; type < 256; type++) {
      if (entryTypes.has(type)) continue;
      const error = expectProtocolError(() => decodeEntries(Uint8Array.of(1, type, 1, 0, 0)));
      expect(error.message).toBe(`unknown stream entry type 0x${type.toString(16).padStart(2, "0")}`);
    }
  });

  test.each([
    ["2^53 - 1", "ff ff ff ff ff ff ff 0f", 2 ** 53 - 1],
    ["2^32", "80 80 80 80 10", 2 ** 32],
    ["one million", "c0 84 3d", 1_000_000],
    ["4, with 9 bytes left", "04", 4],
  ])("an absurd count (%s) fails fast without allocating", (_name, count, n) => {
    const started = Date.now();
    const error = expectProtocolError(() => decodeEntries(hex(`${count}  48 01 00  48 02 00  48 03 00`)));
    expect(error.message).toBe(`entry list claims ${n} entries in 9 bytes`);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test("a count of 3 in 9 bytes is allowed, and each entry must then really be there", () => {
    expect(decodeEntries(hex("03  48 01 00  48 02 00  48 03 00"))).toHaveLength(3);
    // Three 3-byte slots, but a Relay needs at least 4 bytes: the last entry runs out.
    expectProtocolError(() => decodeEntries(hex("03  42 01 00  48 02 00  48 03")));
  });

  test("bad varints and UTF-8 inside entries", () => {
    expectProtocolError(() => decodeEntries(hex("01  48  80 80 80 80 80 80 80 80 01  00")));
    expectProtocolError(() => decodeEntries(hex("01  48  01  ff ff ff ff ff ff ff 1f")));
    expectProtocolError(() => decodeEntries(hex("01  44 01 00  02 c3 28")));
    expectProtocolError(() => decodeEntries(hex("01  43 01 00  01 ff  00")));
  });
});
