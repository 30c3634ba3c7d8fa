/** Wire ids: validation and base64url encoding. */
import { isValidId, toBase64Url } from "../src/index";
import { testRng } from "@lockstep/test-support";

describe("isValidId", () => {
  test.each(["a", "Z", "0", "-", "_", "AbC-_09", "x".repeat(64), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"])("accepts %p", (id) => {
    expect(isValidId(id)).toBe(true);
  });

  test.each([
    ["empty", ""],
    ["65 characters", "x".repeat(65)],
    ["padding", "abc="],
    ["standard base64 +", "a+b"],
    ["standard base64 /", "a/b"],
    ["a space", "a b"],
    ["a newline at the end", "abc\n"],
    ["a dot", "a.b"],
    ["non-ASCII letter", "é"],
    ["emoji", "😀"],
    ["NUL", "a\u0000"],
  ])("rejects %s", (_name, id) => {
    expect(isValidId(id)).toBe(false);
  });

  test("honours a custom maximum length", () => {
    expect(isValidId("abcd", 4)).toBe(true);
    expect(isValidId("abcde", 4)).toBe(false);
    expect(isValidId("a", 0)).toBe(false);
  });
});

describe("toBase64Url", () => {
  test("matches Node's base64url for random inputs of length 0..100", () => {
    const rng = testRng("toBase64Url random inputs");
    for (let length = 0; length <= 100; length++) {
      for (let round = 0; round < 5; round++) {
        const bytes = rng.bytes(length);
        expect(toBase64Url(bytes)).toBe(Buffer.from(bytes).toString("base64url"));
      }
    }
  });

  test("matches Node for every byte value in every position of a 3-byte group", () => {
    for (let b = 0; b < 256; b++) {
      for (const bytes of [Uint8Array.of(b), Uint8Array.of(0, b), Uint8Array.of(0, 0, b), Uint8Array.of(b, 0xff, b ^ 0x5a)]) {
        expect(toBase64Url(bytes)).toBe(Buffer.from(bytes).toString("base64url"));
      }
    }
  });

  test("works on a view at an offset", () => {
    const backing = Uint8Array.of(9, 9, 0xfb, 0xff, 0xbf, 9);
    expect(toBase64Url(backing.subarray(2, 5))).toBe("-_-_");
  });

  test("a 32-byte hash becomes a valid 43-character id", () => {
    const rng = testRng("toBase64Url ids");
    for (let i = 0; i < 50; i++) {
      const id = toBase64Url(rng.bytes(32));
      expect(id).toHaveLength(43);
      expect(isValidId(id)).toBe(true);
    }
    expect(isValidId(toBase64Url(rng.bytes(1 + rng.int(48))))).toBe(true);
  });
});
