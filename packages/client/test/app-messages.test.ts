import { MessageFilter, isMessageLevel, messageDuration } from "../src/app/messages";
import { syncText } from "../src/app/sync-overlay";

describe("MessageFilter", () => {
  test("shows everything by default, repeats included", () => {
    const f = new MessageFilter();
    expect(f.admit("hi", "status", false, true)).toBe(true);
    expect(f.admit("hi", "status", false, true)).toBe(true);
  });

  test('only: "once" suppresses identical repeats, per level', () => {
    const f = new MessageFilter();
    expect(f.admit("Reconnected", "status", true, true)).toBe(true);
    expect(f.admit("Reconnected", "status", true, true)).toBe(false);
    expect(f.admit("Reconnected", "warning", true, true)).toBe(true);
    expect(f.admit("Reconnected!", "status", true, true)).toBe(true);
    // A repeat without `once` still shows.
    expect(f.admit("Reconnected", "status", false, true)).toBe(true);
  });

  test("with App.messages off, statuses and warnings are hidden but errors still show", () => {
    const f = new MessageFilter();
    expect(f.admit("s", "status", false, false)).toBe(false);
    expect(f.admit("w", "warning", false, false)).toBe(false);
    expect(f.admit("e", "error", false, false)).toBe(true);
    // A hidden once-message is not used up: it shows when messages are turned back on.
    expect(f.admit("w", "warning", true, false)).toBe(false);
    expect(f.admit("w", "warning", true, true)).toBe(true);
  });

  test("forgets the oldest once-messages past its memory limit instead of growing forever", () => {
    const f = new MessageFilter();
    for (let i = 0; i < 600; i++) expect(f.admit(`m${i}`, "status", true, true)).toBe(true);
    expect(f.admit("m599", "status", true, true)).toBe(false);
    expect(f.admit("m0", "status", true, true)).toBe(true);
  });
});

describe("messageDuration", () => {
  test("defaults: status 3 s, warning 6 s, errors stay until clicked", () => {
    expect(messageDuration("status", undefined)).toBe(3000);
    expect(messageDuration("warning", undefined)).toBe(6000);
    expect(messageDuration("error", undefined)).toBeUndefined();
  });

  test("an explicit duration applies to statuses and warnings, never to errors", () => {
    expect(messageDuration("status", 500)).toBe(500);
    expect(messageDuration("warning", 10_000)).toBe(10_000);
    expect(messageDuration("error", 500)).toBeUndefined();
  });

  test("zero, negative, NaN or Infinity keep the toast until clicked", () => {
    for (const d of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(messageDuration("status", d)).toBeUndefined();
  });
});

describe("isMessageLevel", () => {
  test("accepts the three levels only", () => {
    expect(["status", "warning", "error"].every(isMessageLevel)).toBe(true);
    expect(isMessageLevel("info")).toBe(false);
    expect(isMessageLevel(undefined)).toBe(false);
  });
});

describe("syncText", () => {
  test('"Joining…" until progress is known, then "Catching up… NN%" (clamped, rounded)', () => {
    expect(syncText(undefined)).toBe("Joining…");
    expect(syncText(Number.NaN)).toBe("Joining…");
    expect(syncText(0)).toBe("Catching up… 0%");
    expect(syncText(0.426)).toBe("Catching up… 43%");
    expect(syncText(1)).toBe("Catching up… 100%");
    expect(syncText(1.7)).toBe("Catching up… 100%");
    expect(syncText(-0.2)).toBe("Catching up… 0%");
  });
});
