import { Writer } from "@lockstep/protocol";
import { Model } from "../src/kernel/model";
import { PAYLOAD_HEADER_VERSION, PayloadCodec, openPayload, writeSenderStamp, type SenderStamp } from "../src/session/payload";
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
    expect(codec.decodeEvent(opened.event)).toEqual({ scope: "chat", event: "say", data: { text: "hi", n: [1, 2] } });
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
      expect(codec.decodeEvent(opened.event)).toEqual({ scope: "x", event: `e${i}`, data: i });
    }
  });

  test("a model in the data travels as a reference, after the header", () => {
    class Thing extends Model {}
    Thing.register("PayloadTest.Thing");
    const thing = { id: "M7" };
    Object.setPrototypeOf(thing, Thing.prototype);
    const withModels = new PayloadCodec(registry, (id) => (id === "M7" ? (thing as Model) : undefined));
    const opened = openPayload(withModels.encodeEvent({ viewId: "v", joinSeq: 1, counter: 1 }, "s", "e", { who: thing }));
    expect((withModels.decodeEvent(opened.event).data as { who: unknown }).who).toBe(thing);
  });

  test("a missing, truncated or other-version header fails with a clear error", () => {
    const full = codec.encodeEvent({ viewId: "view", joinSeq: 1000, counter: 2 }, "s", "e", undefined);
    expect(() => openPayload(new Uint8Array(0))).toThrow(/no valid sender header/);
    // Cut inside the header (version, viewId length, viewId, joinSeq): every prefix fails.
    for (let n = 1; n < 8; n++) expect(() => openPayload(full.subarray(0, n))).toThrow(/no valid sender header/);
    const other = full.slice();
    other[0] = 2;
    expect(() => openPayload(other)).toThrow(/unknown header version 2/);
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
    expect([...opened.event]).toEqual([42]);
  });
});
