/**
 * The filesystem store's in-memory index: key → where its current record lives in the log.
 *
 * Keys are kept as a tree by path segment, so a lookup is a binary search (or a hash lookup) per
 * segment and `list(prefix)` visits only the subtree under the prefix. Built to stay small with
 * many idle sessions (10,000 sessions of 6 keys take about 5 MB, 80 bytes a key):
 * - a small directory is one array, `[self, name0, entry0, name1, entry1, …]` with names sorted
 *   and the array exactly as long as needed; past {@link LARGE} names (the directories of all
 *   sessions, of all activity records) a Map, so inserting a random session id shifts nothing,
 *   with its sorted names computed only when a list() needs them after names changed;
 * - an entry is a leaf's slot number, or a directory; `self` is the slot of the key that is the
 *   directory's own path (`a/b` beside `a/b/c`), or -1 (in a Map, under the name "", which no
 *   key segment can be);
 * - locations live in typed arrays indexed by slot (12 bytes per key);
 * - short names (`meta`, `log`, `snapshot`, …) are shared between directories, and long ones
 *   (session ids) copied out of the key they were split from, so they do not keep it alive.
 */

/** Where a key's current record is: segment number, offset of the record, its whole length. */
export interface Location {
  readonly seg: number;
  readonly offset: number;
  readonly length: number;
}

/** What the index holds for a key: a location, or a record found damaged (with why). */
export type Entry = { readonly damaged: false; readonly at: Location } | { readonly damaged: true; readonly reason: string; readonly at: Location };

type Small = (number | string | Dir)[];
type Large = Map<string, number | Dir>;
type Dir = Small | Large;
type Item = number | Dir;
/** A directory on the way to a key, and the name of the next one in it. */
type Step = readonly [Dir, string];

const LARGE = 128;
/** Names this short are shared (interned), up to this many distinct ones. */
const SHORT_NAME = 12;
const MAX_INTERNED = 4096;
/** Sorted names of large directories, cached until their names change. */
const sortedNames = new WeakMap<Large, string[]>();

function lowerBound(dir: Small, name: string): number {
  let lo = 0;
  let hi = (dir.length - 1) >> 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((dir[1 + 2 * mid] as string) < name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lookup(dir: Dir, name: string): Item | undefined {
  if (dir instanceof Map) return dir.get(name);
  const k = lowerBound(dir, name);
  return dir[1 + 2 * k] === name ? (dir[2 + 2 * k] as Item) : undefined;
}

const selfOf = (dir: Dir): number => (dir instanceof Map ? ((dir.get("") as number | undefined) ?? -1) : (dir[0] as number));

const sizeOf = (dir: Dir): number => (dir instanceof Map ? dir.size - (dir.has("") ? 1 : 0) : (dir.length - 1) >> 1);

/** The index (see the top of this file). Keys are valid storage keys; the caller checks them. */
export class KeyIndex {
  #root: Dir = [-1];
  #seg = new Uint32Array(1024);
  #offset = new Uint32Array(1024);
  #length = new Uint32Array(1024);
  readonly #free: number[] = [];
  #used = 0;
  #size = 0;
  /** Why a damaged key's record is damaged (only damaged keys are here). */
  readonly #damage = new Map<string, string>();
  readonly #interned = new Map<string, string>();

  /** How many keys the index holds (damaged ones included). */
  get size(): number {
    return this.#size;
  }

  get(key: string): Entry | undefined {
    const slot = this.#find(key);
    if (slot < 0) return undefined;
    const at = this.#location(slot);
    const reason = this.#damage.get(key);
    return reason === undefined ? { damaged: false, at } : { damaged: true, reason, at };
  }

  /** Points `key` at `at` (a good record, or a damaged one with `damage`); returns where it pointed before. */
  set(key: string, at: Location, damage?: string): Location | undefined {
    if (!(at.offset < 2 ** 32 && at.length < 2 ** 32)) throw new RangeError(`a record at ${at.offset} of ${at.length} bytes does not fit the index`);
    // Walked segment by segment (no split, no path kept: the log's open calls this for every record).
    let dir = this.#root;
    let parent: Dir | undefined;
    let parentName = "";
    let start = 0;
    for (let slash = key.indexOf("/"); slash >= 0; slash = key.indexOf("/", start)) {
      const name = key.slice(start, slash);
      let next = lookup(dir, name);
      if (typeof next === "number" || next === undefined) {
        // Missing, or a leaf that becomes a directory keeping its own value.
        const sub: Dir = [next ?? -1];
        dir = this.#put(dir, name, sub, parent, parentName);
        next = sub;
      }
      parent = dir;
      parentName = name;
      dir = next;
      start = slash + 1;
    }
    const last = key.slice(start);
    const existing = lookup(dir, last);
    let slot: number;
    if (existing === undefined) {
      slot = this.#allocate();
      this.#put(dir, last, slot, parent, parentName);
    } else if (typeof existing === "number") {
      slot = existing;
    } else if (selfOf(existing) >= 0) {
      slot = selfOf(existing);
    } else {
      slot = this.#allocate();
      if (existing instanceof Map) existing.set("", slot);
      else existing[0] = slot;
    }
    const before = this.#length[slot] === 0 ? undefined : this.#location(slot);
    this.#seg[slot] = at.seg;
    this.#offset[slot] = at.offset;
    this.#length[slot] = at.length;
    if (damage === undefined) this.#damage.delete(key);
    else this.#damage.set(key, damage);
    return before;
  }

  /** Removes `key`; returns where it pointed, or `undefined` if it was not there. */
  delete(key: string): Location | undefined {
    const parts = key.split("/");
    const path: Step[] = [];
    let dir = this.#root;
    for (let i = 0; i < parts.length - 1; i++) {
      const next = lookup(dir, parts[i] as string);
      if (typeof next !== "object") return undefined;
      path.push([dir, parts[i] as string]);
      dir = next;
    }
    const last = parts[parts.length - 1] as string;
    const existing = lookup(dir, last);
    if (existing === undefined) return undefined;
    let slot: number;
    if (typeof existing === "number") {
      slot = existing;
      this.#remove(dir, last, path);
    } else {
      slot = selfOf(existing);
      if (slot < 0) return undefined;
      if (existing instanceof Map) existing.delete("");
      else existing[0] = -1;
      if (sizeOf(existing) === 0) this.#remove(dir, last, path);
    }
    const before = this.#location(slot);
    this.#damage.delete(key);
    this.#size--;
    this.#length[slot] = 0;
    this.#free.push(slot);
    return before;
  }

  /** Every key under `dirs` (complete segments) whose next segment starts with `partial`, sorted. */
  list(dirs: readonly string[], partial: string): string[] {
    let dir = this.#root;
    for (const name of dirs) {
      const next = lookup(dir, name);
      if (typeof next !== "object") return [];
      dir = next;
    }
    const out: string[] = [];
    const base = dirs.length === 0 ? "" : dirs.join("/") + "/";
    each(dir, partial, (name, item) => {
      if (!name.startsWith(partial)) return false;
      collect(item, base + name, out);
      return true;
    });
    // Names are visited in order, but "a/b/c" sorts after "a/b-x" ('/' > '-'): sort what was found
    // (nearly sorted already, which the engine's merge sort takes in about one pass).
    return out.sort();
  }

  #find(key: string): number {
    let dir = this.#root;
    let start = 0;
    for (;;) {
      const slash = key.indexOf("/", start);
      const entry = lookup(dir, slash < 0 ? key.slice(start) : key.slice(start, slash));
      if (entry === undefined) return -1;
      if (slash < 0) return typeof entry === "number" ? entry : selfOf(entry);
      if (typeof entry === "number") return -1;
      dir = entry;
      start = slash + 1;
    }
  }

  /**
   * Sets `name` in `dir` (found under `parentName` in `parent`, or the root) to `item`; returns the
   * directory now holding it (a small directory is replaced by a longer copy, or by a Map once large).
   */
  #put(dir: Dir, name: string, item: Item, parent: Dir | undefined, parentName: string): Dir {
    if (dir instanceof Map) {
      if (!dir.has(name)) sortedNames.delete(dir);
      dir.set(this.#name(name), item);
      return dir;
    }
    const k = lowerBound(dir, name);
    const at = 1 + 2 * k;
    if (dir[at] === name) {
      dir[at + 1] = item;
      return dir;
    }
    let next: Dir;
    if ((dir.length - 1) >> 1 >= LARGE) {
      next = new Map<string, Item>([["", dir[0] as number]]);
      for (let i = 1; i < dir.length; i += 2) next.set(dir[i] as string, dir[i + 1] as Item);
      next.set(this.#name(name), item);
    } else {
      // Exactly as long as needed: an idle session's directories cost no spare capacity.
      next = new Array<number | string | Dir>(dir.length + 2);
      for (let i = 0; i < at; i++) next[i] = dir[i] as number | string | Dir;
      next[at] = this.#name(name);
      next[at + 1] = item;
      for (let i = at; i < dir.length; i++) next[i + 2] = dir[i] as number | string | Dir;
    }
    this.#replace(next, parent, parentName);
    return next;
  }

  #remove(dir: Dir, name: string, path: readonly Step[]): void {
    const step = path[path.length - 1];
    if (dir instanceof Map) {
      if (dir.delete(name)) sortedNames.delete(dir);
    } else {
      const at = 1 + 2 * lowerBound(dir, name);
      if (dir[at] !== name) return;
      const next = new Array<number | string | Dir>(dir.length - 2);
      for (let i = 0; i < at; i++) next[i] = dir[i] as number | string | Dir;
      for (let i = at + 2; i < dir.length; i++) next[i - 2] = dir[i] as number | string | Dir;
      this.#replace(next, step?.[0], step?.[1] ?? "");
      dir = next;
    }
    // A directory the delete left empty goes too, so deleted sessions leave nothing behind.
    if (step !== undefined && sizeOf(dir) === 0 && selfOf(dir) < 0) this.#remove(step[0], step[1], path.slice(0, -1));
  }

  /** Puts `next` where the directory named `name` in `parent` was (the root if `parent` is undefined). */
  #replace(next: Dir, parent: Dir | undefined, name: string): void {
    if (parent === undefined) {
      this.#root = next;
      return;
    }
    if (parent instanceof Map) parent.set(name, next);
    else parent[1 + 2 * lowerBound(parent, name) + 1] = next;
  }

  /** `name` to keep: short ones shared with earlier equal names (they repeat in every session's directory), long ones copied. */
  #name(name: string): string {
    // A long name split from a key is a slice that keeps the whole key string alive: keep a copy of its own.
    if (name.length > SHORT_NAME) return Buffer.from(name, "latin1").toString("latin1");
    const known = this.#interned.get(name);
    if (known !== undefined) return known;
    if (this.#interned.size < MAX_INTERNED) this.#interned.set(name, name);
    return name;
  }

  #location(slot: number): Location {
    return { seg: this.#seg[slot] as number, offset: this.#offset[slot] as number, length: this.#length[slot] as number };
  }

  #allocate(): number {
    this.#size++;
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (this.#used === this.#seg.length) {
      const grow = (a: Uint32Array): Uint32Array<ArrayBuffer> => {
        const b = new Uint32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.#seg = grow(this.#seg);
      this.#offset = grow(this.#offset);
      this.#length = grow(this.#length);
    }
    return this.#used++;
  }
}

/** Calls `visit` with the names of `dir` from the first ≥ `start`, in order, until it returns false. */
function each(dir: Dir, start: string, visit: (name: string, item: Item) => boolean): void {
  if (dir instanceof Map) {
    let names = sortedNames.get(dir);
    if (names === undefined) {
      names = [...dir.keys()].filter((n) => n !== "").sort();
      sortedNames.set(dir, names);
    }
    let lo = 0;
    let hi = names.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((names[mid] as string) < start) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < names.length; k++) if (!visit(names[k] as string, dir.get(names[k] as string) as Item)) return;
    return;
  }
  for (let i = 1 + 2 * lowerBound(dir, start); i < dir.length; i += 2) if (!visit(dir[i] as string, dir[i + 1] as Item)) return;
}

function collect(item: Item, path: string, out: string[]): void {
  if (typeof item === "number") {
    out.push(path);
    return;
  }
  if (selfOf(item) >= 0) out.push(path);
  each(item, "", (name, sub) => {
    collect(sub, `${path}/${name}`, out);
    return true;
  });
}
