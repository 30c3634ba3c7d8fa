import { Writer } from "@lockstep/protocol";
import { Model } from "../src/kernel/model";
import { PAYLOAD_BUNDLE_VERSION, PAYLOAD_HEADER_VERSION, PayloadCodec, bundlePlaintext, openPayload, writeSenderStamp, type SenderStamp } from "../src/session/payload";
import { registry } from "../src/kernel/registry";
import { testRng } from "@lockstep/test-support";

const codec = new PayloadCodec(registry, () => undefined);

describe("message payload header", () => {
  test("round trip: the stamp comes back and the event bytes after it decode to the event", () => {
    const stamp: SenderStamp = { viewId: "AbC-_xyz0123456789012", joinSeq: 17, counter: 3 };
    const plain = codec.encodeEvent(stamp, "chat", "say", { text: "hi", n: [1, 2] });
    expect(plain[0]).toBe(PAYLOAD_HEADER_VERSION);
    const opened = openPayload(plain);
    expect(opened.sender).toEqual(stamp);
    expect(codec.decodeEvent(opened.events[0]!)).toEqual({ scope: "chat", event: "say", data: { text: "hi", n: [1, 2] } });
  });

  test("the documented layout: [u8 1][string viewId][varuint joinSeq][varuint counter], then the event", () => {
    const plain = codec.encodeEvent({ viewId: "v", joinSeq: 300, counter: 1 }, "s", "e", undefined);
    // 1 | len 1, "v" | 300 = 0xac 0x02 | 1 | len 1, "s" | len 1, "e"
    expect([...plain]).toEqual([1, 1, 0x76, 0xac, 0x02, 1, 1, 0x73, 1, 0x65]);
  });

  test("random stamps round trip (seeded)", () => {
    const random = testRng("payload stamps").next;
    for (let i = 0; i < 500; i++) {
      const stamp: SenderStamp = {
        viewId: Math.floor(random() * 2 ** 32).toString(36),
        joinSeq: Math.floor(random() * 2 ** 40),
        counter: 1 + Math.floor(random() * 2 ** 30),
      };
      const opened = openPayload(codec.encodeEvent(stamp, "x", `e${i}`, i));
      expect(opened.sender).toEqual(stamp);
      expect(codec.decodeEvent(opened.events[0]!)).toEqual({ scope: "x", event: `e${i}`, data: i });
    }
  });

  test("a model in the data travels as a reference, after the header", () => {
    class Thing extends Model {}
    Thing.register("PayloadTest.Thing");
    const thing = { id: "M7" };
    Object.setPrototypeOf(thing, Thing.prototype);
    const withModels = new PayloadCodec(registry, (id) => (id === "M7" ? (thing as Model) : undefined));
    const opened = openPayload(withModels.encodeEvent({ viewId: "v", joinSeq: 1, counter: 1 }, "s", "e", { who: thing }));
    expect((withModels.decodeEvent(opened.events[0]!).data as { who: unknown }).who).toBe(thing);
  });

  test("a missing, truncated or other-version header fails with a clear error", () => {
    const full = codec.encodeEvent({ viewId: "view", joinSeq: 1000, counter: 2 }, "s", "e", undefined);
    expect(() => openPayload(new Uint8Array(0))).toThrow(/no valid sender header/);
    // Cut inside the header (version, viewId length, viewId, joinSeq): every prefix fails.
    for (let n = 1; n < 8; n++) expect(() => openPayload(full.subarray(0, n))).toThrow(/no valid sender header/);
    const other = full.slice();
    other[0] = 3;
    expect(() => openPayload(other)).toThrow(/unknown header version 3/);
    // An event payload of the old format (no header) does not pass as one.
    const old = new Writer();
    old.string("scope");
    old.string("event");
    expect(() => openPayload(old.finish())).toThrow(/no valid sender header/);
  });

  test("writeSenderStamp writes exactly the header openPayload reads", () => {
    const w = new Writer();
    writeSenderStamp(w, { viewId: "abc", joinSeq: 5, counter: 9 });
    w.raw(new Uint8Array([42]));
    const opened = openPayload(w.finish());
    expect(opened.sender).toEqual({ viewId: "abc", joinSeq: 5, counter: 9 });
    expect(opened.events.map((e) => [...e])).toEqual([[42]]);
  });
});

describe("bundled payloads: the events one view published in one turn", () => {
  const stamp: SenderStamp = { viewId: "v", joinSeq: 4, counter: 2 };
  const bodies = [codec.encodeEventBody("s", "a", 1), codec.encodeEventBody("s", "b", { x: [2] }), codec.encodeEventBody("t", "c", undefined)];

  test("round trip: one stamp, the events in order", () => {
    const plain = bundlePlaintext(stamp, bodies);
    expect(plain[0]).toBe(PAYLOAD_BUNDLE_VERSION);
    const opened = openPayload(plain);
    expect(opened.sender).toEqual(stamp);
    expect(opened.events.map((e) => codec.decodeEvent(e))).toEqual([
      { scope: "s", event: "a", data: 1 },
      { scope: "s", event: "b", data: { x: [2] } },
      { scope: "t", event: "c", data: undefined },
    ]);
  });

  test("the documented layout: [u8 2][stamp][varuint count][count × (varuint length, body)]; one event stays version 1", () => {
    const two = [new Uint8Array([7]), new Uint8Array([8, 9])];
    expect([...bundlePlaintext({ viewId: "v", joinSeq: 1, counter: 1 }, two)]).toEqual([2, 1, 0x76, 1, 1, 2, 1, 7, 2, 8, 9]);
    expect([...bundlePlaintext({ viewId: "v", joinSeq: 1, counter: 1 }, [two[1]!])]).toEqual([1, 1, 0x76, 1, 1, 8, 9]);
  });

  test("a lying count, a truncated event or bytes after the last event fail with a clear error", () => {
    const good = bundlePlaintext(stamp, bodies);
    const countAt = 1 + 1 + 1 + 1 + 1; // version, viewId length + "v", joinSeq, counter
    for (const count of [0, 1, 4, 200]) {
      const bad = good.slice();
      bad[countAt] = count;
      expect(() => openPayload(bad)).toThrow(/no valid sender header/);
    }
    for (let n = countAt; n < good.length; n++) expect(() => openPayload(good.subarray(0, n))).toThrow(/no valid sender header/);
    const longer = new Uint8Array(good.length + 1);
    longer.set(good);
    expect(() => openPayload(longer)).toThrow(/after the bundle's last event/);
  });
});
