import { createHash } from "node:crypto";
import { BADGE_SIZE, hslToHex, sessionBadge } from "../src/app/badge";

const id = (n: number): string => createHash("sha256").update(`session ${n}`).digest("hex");

describe("sessionBadge", () => {
  test("is a left–right symmetric 5×5 grid of cells 0–3 and three #rrggbb colours", () => {
    const { colors, cells } = sessionBadge(id(1));
    expect(colors).toHaveLength(3);
    for (const c of colors) expect(c).toMatch(/^#[0-9a-f]{6}$/);
    expect(new Set(colors).size).toBe(3);
    expect(cells).toHaveLength(BADGE_SIZE);
    for (const row of cells) {
      expect(row).toHaveLength(BADGE_SIZE);
      expect(row).toEqual([...row].reverse());
      for (const v of row) expect([0, 1, 2, 3]).toContain(v);
    }
  });

  test("the same id gives the same badge, on every run and platform (golden value)", () => {
    const sessionId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    expect(sessionBadge(sessionId)).toEqual(sessionBadge(sessionId));
    expect(sessionBadge(sessionId)).toEqual({
      colors: ["#1f40ad", "#d45d35", "#a9da6c"],
      cells: [
        [2, 1, 2, 1, 2],
        [2, 0, 0, 0, 2],
        [0, 2, 2, 2, 0],
        [1, 1, 0, 1, 1],
        [1, 2, 3, 2, 1],
      ],
    });
  });

  test("different ids give different badges", () => {
    const seen = new Set<string>();
    for (let n = 0; n < 5000; n++) seen.add(JSON.stringify(sessionBadge(id(n))));
    expect(seen.size).toBe(5000);
  });

  test("ids that differ in one character give different patterns and colours", () => {
    const a = id(7);
    const b = `${a.slice(0, -1)}${a.endsWith("0") ? "1" : "0"}`;
    const ba = sessionBadge(a);
    const bb = sessionBadge(b);
    expect(ba.cells).not.toEqual(bb.cells);
    expect(ba.colors).not.toEqual(bb.colors);
  });
});

describe("hslToHex", () => {
  test("converts primaries, grey and wraps hue", () => {
    expect(hslToHex(0, 1, 0.5)).toBe("#ff0000");
    expect(hslToHex(120, 1, 0.5)).toBe("#00ff00");
    expect(hslToHex(240, 1, 0.5)).toBe("#0000ff");
    expect(hslToHex(360 + 60, 1, 0.5)).toBe("#ffff00");
    expect(hslToHex(-60, 1, 0.5)).toBe("#ff00ff");
    expect(hslToHex(200, 0, 1)).toBe("#ffffff");
    expect(hslToHex(200, 0, 0)).toBe("#000000");
  });
});
