/** Malformed and hostile input: always a DeserializationError, never another error, a hang or a huge allocation. */
import { DeserializationError, deserialize, serialize } from "../src/serializer/index";
import { hex, testRng } from "@lockstep/test-support";
import { Point, registry, Tagged, Vec3 } from "./serializer.helpers";

const options = {
  ...registry(),
  refOf: (obj: object) => (obj === MODEL ? "model-1" : undefined),
  resolveRef: (id: string) => {
    if (id !== "model-1") throw new Error(`no model ${id}`);
    return MODEL;
  },
};
const MODEL = { isModel: true };

/** The DeserializationError `bytes` cause (fails on success or on any other error). */
function rejection(bytes: Uint8Array, opts: Parameters<typeof deserialize>[1] = options): DeserializationError {
  try {
    deserialize(bytes, opts);
  } catch (error) {
    if (!(error instanceof DeserializationError)) throw error;
    return error;
  }
  throw new Error("expected a DeserializationError");
}

/** Decodes or throws a DeserializationError; anything else is rethrown to fail the test. */
function decodeOrReject(bytes: Uint8Array): void {
  try {
    deserialize(bytes, options);
  } catch (error) {
    if (!(error instanceof DeserializationError)) throw error;
  }
}

/** A graph using every tag: the corpus for truncation and corruption. */
function richGraph(): unknown {
  const buf = new ArrayBuffer(24);
  const shared = { s: "shared" };
  const self: Record<string, unknown> = { name: "selfish" };
  self.self = self;
  const map = new Map<unknown, unknown>([["k", 1], [shared, shared]]);
  map.set(map, "me");
  let deep: unknown = "bottom";
  for (let i = 0; i < 230; i++) deep = { d: deep }; // deep enough to use DEFERRED bodies
  return {
    nums: [0, -1, 300, 2 ** 40, -0, NaN, Infinity, 1.5],
    strs: ["", "ascii", "ünï", "a\ud800", "x".repeat(80), "ascii"],
    big: [0n, -5n, 2n ** 70n],
    // eslint-disable-next-line no-sparse-arrays
    holes: [1, , , 2],
    obj: Object.assign(Object.create(null) as object, { n: null, u: undefined, t: true, f: false }),
    map,
    set: new Set([shared, 2]),
    views: [new Uint16Array(buf, 2, 3), new DataView(buf, 0, 8), buf, new BigInt64Array([-1n])],
    point: new Point(1, self),
    vec: new Vec3(1, 2, 3),
    tagged: new Tagged("t", shared),
    model: MODEL,
    deep,
  };
}

describe("serializer: adversarial input", () => {
  const valid = serialize(richGraph(), options);

  it("the corpus itself decodes", () => {
    expect(() => deserialize(valid, options)).not.toThrow();
  });

  it("every strict prefix of a valid serialization is rejected", () => {
    for (let length = 0; length < valid.length; length++) {
      const error = rejection(valid.subarray(0, length));
      expect(error.message.length).toBeGreaterThan(0);
    }
  });

  it("random byte corruption either decodes or throws DeserializationError", () => {
    const random = testRng("serializer byte flips").next;
    for (let round = 0; round < 3000; round++) {
      const bytes = valid.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(random() * bytes.length);
        bytes[at] = random() < 0.3 ? bytes[at]! ^ (1 << Math.floor(random() * 8)) : Math.floor(random() * 256);
      }
      decodeOrReject(bytes);
    }
  });

  it("random insertions, deletions and pure noise either decode or throw DeserializationError", () => {
    const random = testRng("serializer splices").next;
    for (let round = 0; round < 1000; round++) {
      const at = Math.floor(random() * valid.length);
      const cut = Math.floor(random() * 5);
      const noise = Uint8Array.from({ length: Math.floor(random() * 5) }, () => Math.floor(random() * 256));
      decodeOrReject(new Uint8Array([...valid.subarray(0, at), ...noise, ...valid.subarray(at + cut)]));
      decodeOrReject(Uint8Array.from({ length: 1 + Math.floor(random() * 64) }, (_, i) => (i === 0 ? 1 : Math.floor(random() * 256))));
    }
  });

  it.each([
    ["empty input", ""],
    ["wrong version", "02 00"],
    ["version 0", "00 00"],
    ["trailing bytes", "01 00 00"],
    ["unknown tag", "01 7f"],
    ["HOLES outside an array", "01 41 01"],
    ["back-reference to an object not read yet", "01 20 01 10 01"],
    ["back-reference with nothing read", "01 10 00"],
    ["varint longer than 8 bytes", "01 04 ff ff ff ff ff ff ff ff 01"],
    ["varint above 2^53", "01 04 ff ff ff ff ff ff ff 7f"],
    ["string longer than the input", "01 06 01 ff ff 03 61"],
    ["string table reference out of range", "01 06 05"],
    ["invalid UTF-8", "01 06 01 02 c3 28"],
    ["UTF-16 string longer than the input", "01 06 02 ff ff ff 0f 00"],
    ["ArrayBuffer longer than the input", "01 30 ff ff ff ff 0f 00"],
    ["bigint longer than the input", "01 07 ff ff ff 7f 01"],
    ["object count larger than the input", "01 21 ff ff ff ff 0f"],
    ["Map size larger than the input", "01 23 ff ff ff ff 0f 00 00"],
    ["Set size larger than the input", "01 24 ff ff ff ff 0f"],
    ["array length above 2^32 - 1", "01 20 80 80 80 80 10"],
    ["array length larger than its items", "01 20 ff ff ff ff 0f 00"],
    ["run of holes longer than the array", "01 20 02 41 03"],
    ["empty run of holes", "01 20 01 41 00 00"],
    ["unknown view kind", "01 31 63 30 00 00 00"],
    ["view past the end of its buffer", "01 31 01 30 02 00 00 01 02"],
    ["misaligned view", "01 31 03 30 04 00 00 00 00 01 01"],
    ["view whose buffer is not an ArrayBuffer", "01 31 01 21 00 00 00"],
    ["view whose buffer is the view itself", "01 31 01 10 00 00 00"],
    ["DEFERRED with a non-container kind", "01 40 06"],
    ["DEFERRED whose body never comes", "01 40 21"],
    ["unknown class id", "01 25 00 03 46 6f 6f 00"],
    ["class id that is a custom type", "01 25 00 04 56 65 63 33 00"],
    ["custom-type data for a plain registered class", "01 26 00 05 50 6f 69 6e 74 00"],
    ["custom type whose data refers to itself", "01 26 00 06 54 61 67 67 65 64 10 00"],
    ["unresolvable reference", "01 11 00 01 78"],
  ])("%s", (_name, text) => {
    rejection(hex(text));
  });

  it("a custom type whose read() throws is rejected with the cause", () => {
    const boom = new Error("bad data");
    const opts = registry([{ id: "Vec3", prototype: Vec3.prototype, write: (v: Vec3) => v.x, read: () => { throw boom; } }]);
    const error = rejection(serialize(new Vec3(1, 2, 3), opts), opts);
    expect(error.message).toContain('custom type "Vec3" could not read its data: bad data');
    expect(error.cause).toBe(boom);
  });

  it("a reference without resolveRef, and a resolveRef that fails, are rejected", () => {
    const bytes = serialize([MODEL], options);
    expect(rejection(bytes, registry()).message).toContain('reference to "model-1"');
    const error = rejection(bytes, { ...registry(), resolveRef: () => { throw new Error("gone"); } });
    expect(error.message).toContain("gone");
  });

  it("unknown class ids name the id and what to do", () => {
    const bytes = serialize(new Point(1, 2), options);
    expect(rejection(bytes, registry([])).message).toContain('unknown class id "Point"');
  });

  it("nesting far beyond the limit is rejected, not a stack overflow", () => {
    const depth = 200_000;
    const bytes = new Uint8Array(1 + depth * 2 + 1);
    bytes[0] = 1;
    for (let i = 0; i < depth; i++) {
      bytes[1 + i * 2] = 0x20; // ARRAY of length 1
      bytes[2 + i * 2] = 0x01;
    }
    bytes[bytes.length - 1] = 0x00;
    expect(rejection(bytes).message).toMatch(/nested more than 1000 levels deep/);
  });

  it("a huge declared array length does not allocate or hang", () => {
    // length 2^32 - 1 made of a single run of holes: a sparse array, no allocation per element
    const array = deserialize(hex("01 20 ff ff ff ff 0f 41 ff ff ff ff 0f"), options) as unknown[];
    expect(array.length).toBe(2 ** 32 - 1);
    expect(0 in array).toBe(false);
  });

  it("errors carry the byte offset", () => {
    const error = rejection(hex("01 20 01 10 05"));
    expect(error.offset).toBe(5);
    expect(error.message).toMatch(/at byte 5/);
  });

  it("rejects input that is not a Uint8Array", () => {
    expect(() => deserialize("01 00" as unknown as Uint8Array, options)).toThrow(DeserializationError);
  });
});
