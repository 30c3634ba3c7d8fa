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
        index.check();
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

test("10,000 sessions' keys: the index grows, compacts its names after deletes, and still gives what a Map gives", () => {
  const rng = testRng("fs log index, sessions");
  const index = new KeyIndex();
  const model = new Map<string, number>();
  const id = (n: number): string => `S${String(n).padStart(21, "0")}`;
  const keysOf = (n: number): string[] => [`activity/${id(n)}`, `sessions/${id(n)}/meta`, `sessions/${id(n)}/log/${String(n * 7).padStart(16, "0")}`, `sessions/${id(n)}/snapshot`];
  // Compared by hand, mismatches collected: 200,000 expect() calls would take most of a minute.
  const wrong: string[] = [];
  const same = (what: string, got: unknown, want: unknown): void => {
    if (JSON.stringify(got) !== JSON.stringify(want) && wrong.length < 5) wrong.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  let i = 0;
  const set = (k: string): void => {
    same(`set ${k}`, index.set(k, at(++i)), model.has(k) ? at(model.get(k)!) : undefined);
    model.set(k, i);
  };
  const del = (k: string): void => {
    same(`delete ${k}`, index.delete(k), model.has(k) ? at(model.get(k)!) : undefined);
    model.delete(k);
  };
  const check = (round: number): void => {
    index.check();
    same(`size after round ${round}`, index.size, model.size);
    for (const prefix of ["activity/", "sessions/", `sessions/${id(rng.int(30_000))}/`, `sessions/${id(rng.int(30_000))}/log/`, "sessions/S00000000000000000001"]) {
      same(`list ${prefix}`, list(index, prefix), [...model.keys()].filter((m) => m.startsWith(prefix)).sort());
    }
    for (let n = 0; n < 500; n++) {
      const k = rng.pick(keysOf(rng.int(30_000)));
      same(`get ${k}`, index.get(k), model.has(k) ? { damaged: false, at: at(model.get(k)!) } : undefined);
    }
  };
  try {
    for (let n = 0; n < 10_000; n++) for (const k of keysOf(n)) set(k);
    check(0);
    // Rounds of half the sessions deleted and as many new ones made: names go dead, nodes are
    // reused, directories of deleted sessions go, and the name arena must compact to stay bounded.
    for (let round = 1; round <= 4; round++) {
      const live = [...new Set([...model.keys()].filter((k) => k.startsWith("activity/")).map((k) => Number(k.slice(10))))];
      for (const n of live) if (rng.bool(0.5)) for (const k of keysOf(n)) del(k);
      for (let n = 0; n < 5_000; n++) for (const k of keysOf(round * 100_000 + n)) set(k);
      check(round);
    }
    same("a deleted session's directory", list(index, `sessions/${id(0)}/`).length <= 4, true);
    for (const k of [...model.keys()]) del(k);
    same("size when emptied", index.size, 0);
    same("list when emptied", list(index, ""), []);
    expect(wrong).toEqual([]);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n(${seedHint()})`, { cause: error });
  }
});
