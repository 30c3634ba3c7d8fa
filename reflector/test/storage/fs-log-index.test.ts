import { checkPrefix } from "../../src/storage";
import { KeyIndex } from "../../src/storage/fs-log-index";
import { seedHint, testRng } from "@lockstep/test-support";

// The filesystem store's index against a Map: random sets and deletes of keys that nest, share
// prefixes and fill directories past the size where they switch from an array to a Map and back.

const at = (n: number) => ({ seg: 1 + (n % 7), offset: n * 3, length: 16 + n });

function list(index: KeyIndex, prefix: string): string[] {
  const { dirs, partial } = checkPrefix(prefix);
  return index.list(dirs, partial);
}

test("random sets and deletes give what a Map gives, for get, list and size", () => {
  const rng = testRng("fs log index");
  const index = new KeyIndex();
  const model = new Map<string, number>();
  const segment = (): string => rng.pick(["a", "b", "B", "a-x", "a.b", "a_", "a0", "meta", "log", `s${rng.int(300)}`]);
  const key = (): string => Array.from({ length: 1 + rng.int(3) }, segment).join("/");
  try {
    for (let i = 0; i < 6000; i++) {
      const k = key();
      if (rng.bool(0.35)) {
        expect(index.delete(k)).toEqual(model.has(k) ? at(model.get(k)!) : undefined);
        model.delete(k);
      } else {
        expect(index.set(k, at(i))).toEqual(model.has(k) ? at(model.get(k)!) : undefined);
        model.set(k, i);
      }
      if (i % 50 === 0) {
        expect(index.size).toBe(model.size);
        for (const prefix of ["", "a", "a/", "a/b", "s1", "s1/", `s${rng.int(300)}/`, "meta/log", key(), key() + "/"]) {
          expect({ prefix, keys: list(index, prefix) }).toEqual({ prefix, keys: [...model.keys()].filter((m) => m.startsWith(prefix)).sort() });
        }
      }
    }
    for (const [k, n] of model) expect(index.get(k)).toEqual({ damaged: false, at: at(n) });
    // Emptied, the tree is empty again (deleted directories do not linger).
    for (const k of [...model.keys()]) index.delete(k);
    expect(index.size).toBe(0);
    expect(list(index, "")).toEqual([]);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n(${seedHint()})`, { cause: error });
  }
});

test("a damaged entry says why until it is set again", () => {
  const index = new KeyIndex();
  index.set("x/y", at(1), "its value's checksum does not match");
  expect(index.get("x/y")).toEqual({ damaged: true, reason: "its value's checksum does not match", at: at(1) });
  expect(list(index, "x/")).toEqual(["x/y"]);
  index.set("x/y", at(2));
  expect(index.get("x/y")).toEqual({ damaged: false, at: at(2) });
});
