import { checkKey } from "../../src/storage/blob-store";
import { StorageError } from "../../src/storage";
import { seedHint, testRng } from "@lockstep/test-support";

// checkKey walks the key once without splitting it; the rule it implements, written plainly.
const valid = (key: string): boolean =>
  key.length > 0 && key.length <= 1024 && key.split("/").every((s) => s.length > 0 && s.length <= 120 && s !== "." && s !== ".." && /^[A-Za-z0-9._-]+$/.test(s));

test("checkKey accepts exactly the keys the rule allows, and says why it refuses one", () => {
  const rng = testRng("storage keys");
  const pieces = ["a", "Z", "9", ".", "..", "/", "//", "-", "_", " ", "é", ":", "\\", "x".repeat(120), "y".repeat(121), "z".repeat(500)];
  for (let i = 0; i < 50_000; i++) {
    const key = Array.from({ length: rng.int(7) }, () => rng.pick(pieces)).join("");
    let accepted = true;
    try {
      checkKey(key);
    } catch (error) {
      accepted = false;
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toContain(JSON.stringify(key).slice(0, 40));
    }
    if (accepted !== valid(key)) throw new Error(`checkKey ${accepted ? "accepted" : "refused"} ${JSON.stringify(key)} (${seedHint()})`);
  }
});
