import qrcode from "qrcode-generator";
import { paintQR, qrMatrix } from "../src/app/qr";
import { UsageError } from "../src/errors";

/** The 7×7 finder pattern: dark ring, light ring, dark 3×3 centre. */
function isFinder(m: boolean[][], top: number, left: number): boolean {
  for (let r = 0; r < 7; r++) {
    for (let c = 0; c < 7; c++) {
      const ring = Math.max(Math.abs(r - 3), Math.abs(c - 3));
      if (m[top + r]?.[left + c] !== (ring !== 2)) return false;
    }
  }
  return true;
}

describe("qrMatrix", () => {
  test("picks the smallest version: 21 modules (version 1) for a short text", () => {
    const m = qrMatrix("hello");
    expect(m).toHaveLength(21);
    for (const row of m) expect(row).toHaveLength(21);
  });

  test("grows with the text: 100 bytes at level M need version 6 (41 modules), at level L version 5 (37)", () => {
    expect(qrMatrix("x".repeat(100))).toHaveLength(41);
    expect(qrMatrix("x".repeat(100), { errorCorrection: "L" })).toHaveLength(37);
  });

  test("a typical join link fits in a small code", () => {
    const url = "http://127.0.0.1:8080/hello/?q=abcdefghij#pw=AAAAAAAAAAAAAAAAAAAAAA";
    expect(qrMatrix(url).length).toBeLessThanOrEqual(37);
  });

  test("has finder patterns in the top-left, top-right and bottom-left corners only", () => {
    const m = qrMatrix("http://example.com/?q=room#pw=secret");
    const n = m.length;
    expect(isFinder(m, 0, 0)).toBe(true);
    expect(isFinder(m, 0, n - 7)).toBe(true);
    expect(isFinder(m, n - 7, 0)).toBe(true);
    expect(isFinder(m, n - 7, n - 7)).toBe(false);
    // Light separators around the finders, and the alternating timing pattern between them.
    for (let i = 0; i < 8; i++) {
      expect(m[7]?.[i]).toBe(false);
      expect(m[i]?.[7]).toBe(false);
      expect(m[7]?.[n - 1 - i]).toBe(false);
      expect(m[n - 8]?.[i]).toBe(false);
    }
    for (let i = 8; i < n - 8; i++) {
      expect(m[6]?.[i]).toBe(i % 2 === 0);
      expect(m[i]?.[6]).toBe(i % 2 === 0);
    }
  });

  test("is deterministic", () => {
    expect(qrMatrix("same text")).toEqual(qrMatrix("same text"));
    expect(qrMatrix("same text")).not.toEqual(qrMatrix("other text"));
  });

  test("encodes UTF-8 like the library's own UTF-8 mode", () => {
    const text = "Grüße ✓ 🎉";
    const lib = qrcode as unknown as { stringToBytes: (s: string) => number[]; stringToBytesFuncs: Record<string, (s: string) => number[]> };
    const original = lib.stringToBytes;
    const utf8 = lib.stringToBytesFuncs["UTF-8"];
    expect(utf8).toBeDefined();
    let expected: boolean[][];
    lib.stringToBytes = utf8 ?? original;
    try {
      const code = qrcode(0, "M");
      code.addData(text, "Byte");
      code.make();
      expected = Array.from({ length: code.getModuleCount() }, (_, r) =>
        Array.from({ length: code.getModuleCount() }, (_, c) => code.isDark(r, c)),
      );
    } finally {
      lib.stringToBytes = original;
    }
    expect(qrMatrix(text)).toEqual(expected);
  });

  test("text too long for any QR code fails with an actionable UsageError", () => {
    expect(() => qrMatrix("x".repeat(3000))).toThrow(UsageError);
    expect(() => qrMatrix("x".repeat(3000))).toThrow(/at most 2331 bytes at level M/);
    expect(qrMatrix("x".repeat(2900), { errorCorrection: "L" })).toHaveLength(177);
  });
});

describe("paintQR", () => {
  function recorder() {
    const rects: { fill: string; x: number; y: number; w: number; h: number }[] = [];
    const ctx = {
      fillStyle: "",
      fillRect(x: number, y: number, w: number, h: number) {
        rects.push({ fill: String(this.fillStyle), x, y, w, h });
      },
    };
    return { ctx: ctx as unknown as CanvasRenderingContext2D, rects };
  }

  test("fills the background, then one whole-pixel square per dark module, centred", () => {
    const m = qrMatrix("hello"); // 21 modules + 2×4 margin = 29 → 4 px cells on 128 px
    const { ctx, rects } = recorder();
    paintQR(ctx, m, 128, 128, { dark: "#000", light: "#fff", margin: 4 });
    expect(rects[0]).toEqual({ fill: "#fff", x: 0, y: 0, w: 128, h: 128 });
    const dark = rects.slice(1);
    expect(dark).toHaveLength(m.flat().filter(Boolean).length);
    for (const r of dark) {
      expect(r.fill).toBe("#000");
      expect(r.w).toBe(4);
    }
    expect(Math.min(...dark.map((r) => r.x))).toBe((128 - 21 * 4) / 2);
    expect(Math.max(...dark.map((r) => r.x + r.w))).toBe(128 - (128 - 21 * 4) / 2);
  });

  test("falls back to fractional modules when the canvas is smaller than the code", () => {
    const m = qrMatrix("hello");
    const { ctx, rects } = recorder();
    paintQR(ctx, m, 20, 20, { dark: "#000", light: "#fff", margin: 0 });
    expect(rects[1]?.w).toBeCloseTo(20 / 21);
  });
});
