/** Writer / Reader primitives: varuints, length-prefixed strings and bytes, buffer growth, bounds. */
import { ProtocolError, Reader, Writer, varUintSize } from "../src/index";
import { hex, normHex, sameBytes, testRng, toHex } from "@lockstep/test-support";
import { expectProtocolError } from "./helpers";

/** Independent LEB128 encoder (BigInt, no shared code with the Writer). */
function refVarUint(n: number): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

function refString(s: string): number[] {
  const utf8 = new TextEncoder().encode(s);
  return [...refVarUint(utf8.length), ...utf8];
}

const varUintTable: ReadonlyArray<readonly [number, string]> = [
  [0, "00"],
  [1, "01"],
  [127, "7f"],
  [128, "80 01"],
  [255, "ff 01"],
  [300, "ac 02"],
  [16383, "ff 7f"],
  [16384, "80 80 01"],
  [2 ** 21 - 1, "ff ff 7f"],
  [2 ** 21, "80 80 80 01"],
  [2 ** 28, "80 80 80 80 01"],
  [2 ** 31 - 1, "ff ff ff ff 07"],
  [2 ** 31, "80 80 80 80 08"],
  [2 ** 32 - 1, "ff ff ff ff 0f"],
  [2 ** 32, "80 80 80 80 10"],
  [2 ** 49, "80 80 80 80 80 80 80 01"],
  [2 ** 53 - 1, "ff ff ff ff ff ff ff 0f"],
];

describe("varUint", () => {
  test.each(varUintTable)("%d encodes as %s and back", (value, bytes) => {
    const w = new Writer(1);
    w.varUint(value);
    const out = w.finish();
    expect(toHex(out)).toBe(normHex(bytes));
    expect(refVarUint(value)).toEqual(Array.from(out));
    expect(varUintSize(value)).toBe(out.length);
    const r = new Reader(out);
    expect(r.varUint()).toBe(value);
    r.end();
  });

  test("agrees with an independent encoder on random values of every size", () => {
    const rng = testRng("encoding varUint");
    const w = new Writer(1);
    const values: number[] = [];
    const expected: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const bits = rng.int(54);
      const value = Math.min(Math.floor(rng.next() * 2 ** bits), Number.MAX_SAFE_INTEGER);
      values.push(value);
      expected.push(...refVarUint(value));
      w.varUint(value);
    }
    expect(Array.from(w.finish())).toEqual(expected);
    const r = new Reader(w.finish());
    for (const value of values) expect(r.varUint()).toBe(value);
    r.end();
  });

  test.each([-1, -0.5, 1.5, 2 ** 53, 2 ** 64, NaN, Infinity, -Infinity])("Writer.varUint rejects %p", (value) => {
    const w = new Writer();
    expect(() => w.varUint(value)).toThrow(RangeError);
    expect(w.length).toBe(0);
  });

  test.each([-1, 0.5, 2 ** 53, NaN, Infinity])("varUintSize rejects %p instead of looping or guessing", (value) => {
    expect(() => varUintSize(value)).toThrow(RangeError);
  });

  test("Reader rejects a varint longer than 8 bytes", () => {
    const error = expectProtocolError(() => new Reader(hex("80 80 80 80 80 80 80 80 01")).varUint());
    expect(error.message).toMatch(/longer than 8 bytes/);
  });

  test("Reader rejects an 8-byte varint above 2^53 - 1", () => {
    expectProtocolError(() => new Reader(hex("80 80 80 80 80 80 80 10")).varUint());
    expectProtocolError(() => new Reader(hex("ff ff ff ff ff ff ff 7f")).varUint());
  });

  test("Reader rejects a varint cut off by the end of the buffer", () => {
    expectProtocolError(() => new Reader(hex("")).varUint());
    expectProtocolError(() => new Reader(hex("80")).varUint());
    expectProtocolError(() => new Reader(hex("ff ff ff")).varUint());
  });

  test("Reader accepts a non-minimal varint (senders must not produce one)", () => {
    expect(new Reader(hex("80 00")).varUint()).toBe(0);
    expect(new Reader(hex("ff 80 80 00")).varUint()).toBe(127);
  });
});

describe("Writer", () => {
  test("grows from a 0-byte buffer", () => {
    const w = new Writer(0);
    w.u8(1);
    w.varUint(2 ** 53 - 1);
    w.string("grow");
    expect(toHex(w.finish())).toBe(normHex("01 ff ff ff ff ff ff ff 0f 04 67 72 6f 77"));
  });

  test("finish() returns a trimmed copy that later writes do not change", () => {
    const w = new Writer(64);
    w.u8(7);
    const first = w.finish();
    w.u8(8);
    expect(toHex(first)).toBe("07");
    expect(first.buffer.byteLength).toBe(1);
    expect(toHex(w.finish())).toBe("07 08");
  });

  test("bytes() and raw() copy their input", () => {
    const input = Uint8Array.of(1, 2, 3);
    const w = new Writer(1);
    w.bytes(input);
    w.raw(input);
    w.bytes(new Uint8Array(0));
    input[0] = 99;
    expect(toHex(w.finish())).toBe(normHex("03 01 02 03 01 02 03 00"));
    expect(w.length).toBe(8);
  });

  test("f64 round-trips special values little-endian", () => {
    const values = [0, -0, 1.5, -1e300, Number.MIN_VALUE, NaN, Infinity, -Infinity];
    const w = new Writer(1);
    w.u8(0xaa); // misalign, so DataView offsets are exercised
    for (const v of values) w.f64(v);
    const out = w.finish();
    expect(toHex(out.subarray(1, 9))).toBe("00 00 00 00 00 00 00 00");
    expect(toHex(out.subarray(17, 25))).toBe(normHex("00 00 00 00 00 00 f8 3f"));
    const r = new Reader(out, 1);
    for (const v of values) expect(Object.is(r.f64(), v)).toBe(true);
    r.end();
  });

  // Writer.string reserves a length prefix for the worst case (3 bytes per UTF-16 unit) and shifts
  // the text when the real length needs fewer prefix bytes. These cases sit on both sides of that.
  const stringCases: ReadonlyArray<readonly [string, string]> = [
    ["empty", ""],
    ["1 ascii", "a"],
    ["42 ascii (prefix reserve 1 byte)", "a".repeat(42)],
    ["43 ascii (reserve 2, need 1)", "a".repeat(43)],
    ["127 ascii", "b".repeat(127)],
    ["128 ascii (need 2)", "c".repeat(128)],
    ["5461 ascii (reserve 2)", "d".repeat(5461)],
    ["5462 ascii (reserve 3, need 2)", "e".repeat(5462)],
    ["16383 ascii", "f".repeat(16383)],
    ["16384 ascii (need 3)", "g".repeat(16384)],
    ["43 x 3-byte (reserve = need = 2)", "€".repeat(43)],
    ["31 astral (124 bytes, reserve 2, need 1)", "😀".repeat(31)],
    ["32 astral (128 bytes)", "😀".repeat(32)],
    ["mixed", "aé€😀\u0000\uFEFF👩‍👩‍👧‍👦𝕃𝕠𝕔𝕜"],
  ];

  test.each(stringCases)("string: %s", (_name, value) => {
    const w = new Writer(1);
    w.u8(0x55);
    w.string(value);
    w.u8(0x66);
    const out = w.finish();
    expect(Array.from(out)).toEqual([0x55, ...refString(value), 0x66]);
    const r = new Reader(out, 1);
    expect(r.string()).toBe(value);
    expect(r.u8()).toBe(0x66);
    r.end();
  });

  test("many strings of varied length into Writer(1) survive every reallocation", () => {
    const rng = testRng("encoding strings");
    const alphabet = ["a", "Z", "é", "ß", "€", "中", "😀", "𝕃", "\u0000"];
    const strings: string[] = [];
    const expected: number[] = [];
    const w = new Writer(1);
    for (let i = 0; i < 600; i++) {
      const length = rng.int(4) === 0 ? rng.int(3000) : rng.int(60);
      let s = "";
      for (let j = 0; j < length; j++) s += rng.pick(alphabet);
      strings.push(s);
      expected.push(...refString(s), i & 0x7f);
      w.string(s);
      w.u8(i & 0x7f);
    }
    const out = w.finish();
    expect(out.length).toBe(expected.length);
    expect(sameBytes(out, Uint8Array.from(expected))).toBe(true);
    const r = new Reader(out);
    strings.forEach((s, i) => {
      expect(r.string()).toBe(s);
      expect(r.u8()).toBe(i & 0x7f);
    });
    r.end();
  });

  test("a lone surrogate is written as U+FFFD (strings must be well-formed Unicode)", () => {
    const w = new Writer(1);
    w.string("a\uD800b");
    expect(toHex(w.finish())).toBe(normHex("05 61 ef bf bd 62"));
  });
});

describe("Reader", () => {
  test("tracks offset and remaining, and starts at the given offset", () => {
    const r = new Reader(hex("09 01 02 03"), 1);
    expect(r.offset).toBe(1);
    expect(r.remaining).toBe(3);
    expect(r.u8()).toBe(1);
    expect(r.offset).toBe(2);
    expect(r.remaining).toBe(2);
  });

  test("u8 past the end throws a ProtocolError", () => {
    const r = new Reader(hex("01"));
    r.u8();
    expectProtocolError(() => r.u8());
  });

  test("f64 with fewer than 8 bytes left throws a ProtocolError", () => {
    expectProtocolError(() => new Reader(hex("00 00 00 00 00 00 00")).f64());
  });

  test("bytes() returns a view into the buffer, not a copy", () => {
    const buf = hex("03 0a 0b 0c");
    const field = new Reader(buf).bytes();
    expect(toHex(field)).toBe("0a 0b 0c");
    expect(field.buffer).toBe(buf.buffer);
    expect(field.byteOffset).toBe(1);
  });

  test("bytes() works on a view with a non-zero byteOffset", () => {
    const backing = hex("ff ff 02 61 62 ff");
    const r = new Reader(backing.subarray(2, 5));
    expect(toHex(r.bytes())).toBe("61 62");
    r.end();
  });

  test("bytes() rejects a length beyond what is left", () => {
    const error = expectProtocolError(() => new Reader(hex("05 61 62")).bytes());
    expect(error.message).toMatch(/needs 5 bytes, 2 left/);
    expectProtocolError(() => new Reader(hex("ff ff ff ff ff ff ff 0f")).bytes());
  });

  test("bytes(maxLength) rejects a longer field before looking at the data", () => {
    expect(toHex(new Reader(hex("02 61 62")).bytes(2))).toBe("61 62");
    expectProtocolError(() => new Reader(hex("03 61 62 63")).bytes(2));
    expectProtocolError(() => new Reader(hex("03")).string(2));
  });

  test.each([
    ["a lone continuation byte", "01 80"],
    ["0xff", "01 ff"],
    ["an overlong NUL", "02 c0 80"],
    ["an overlong slash", "03 e0 80 af"],
    ["a UTF-16 surrogate", "03 ed a0 80"],
    ["a code point above U+10FFFF", "04 f4 90 80 80"],
    ["a truncated 3-byte sequence", "02 e2 82"],
    ["a truncated 4-byte sequence", "03 f0 9f 98"],
  ])("string() rejects %s as invalid UTF-8", (_name, bytes) => {
    const error = expectProtocolError(() => new Reader(hex(bytes)).string());
    expect(error.message).toMatch(/UTF-8/);
    expect(error.cause).toBeDefined();
  });

  test("string() keeps a leading U+FEFF (a BOM is text, not a marker, inside a field)", () => {
    expect(new Reader(hex("04 ef bb bf 61")).string()).toBe("\uFEFFa");
  });

  test("end() rejects trailing bytes", () => {
    const r = new Reader(hex("01 02"));
    r.u8();
    const error = expectProtocolError(() => r.end());
    expect(error.message).toMatch(/1 unexpected trailing/);
    r.u8();
    r.end();
  });

  test("errors are ProtocolErrors, which are Errors", () => {
    const error = expectProtocolError(() => new Reader(new Uint8Array(0)).u8());
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.name).toBe("ProtocolError");
  });
});
