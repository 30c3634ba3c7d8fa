/**
 * The filesystem store's in-memory index: key → where its current record lives in the log.
 *
 * Kept off the JavaScript heap, in typed arrays, so that 10,000 idle sessions cost a few MB the
 * garbage collector never walks, and opening the log (a `set` per record) allocates nothing that
 * survives: before, its tree of small arrays and strings was what made V8 grow its young
 * generation to the maximum at start. Keys are a tree by path segment:
 * - a node per segment in use: a key (it has a location), a directory (it has children), or both
 *   (`a/b` beside `a/b/c`); node 0 is the root;
 * - a node's name is latin1 bytes in one arena, its parent a node number, its children a doubly
 *   linked list (so deleting one is O(1) however large the directory);
 * - one open-addressing hash table maps (parent, name) to the node, so a lookup hashes each
 *   segment of the key where it is, with no split and no substring;
 * - locations live in typed arrays by node (a length of 0 means no value: a record is never empty).
 * A node whose key is deleted and that has no children goes, and so does a directory left empty.
 * `list` builds the strings it returns and sorts them; nothing else allocates but what it returns.
 */

/** Where a key's current record is: segment number, offset of the record, its whole length. */
export interface Location {
  readonly seg: number;
  readonly offset: number;
  readonly length: number;
}

/** What the index holds for a key: a location, or a record found damaged (with why). */
export type Entry = { readonly damaged: false; readonly at: Location } | { readonly damaged: true; readonly reason: string; readonly at: Location };

const NONE = -1;
/** A hash table slot whose node was removed (probing goes on past it). */
const GONE = -2;
const ROOT = 0;

/**
 * The hash of a (parent, name) pair: FNV-1a of `key[start, end)`'s char codes seeded with the
 * parent node, then MurmurHash3's finalizer (FNV leaves the low bits, which pick the slot, poorly
 * mixed: without it, names that differ only near their end probe long runs).
 */
function hashOf(parent: number, key: string, start: number, end: number): number {
  let h = Math.imul(parent + 1, 0x9e3779b1) ^ 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function grown<T extends Uint32Array | Int32Array | Uint16Array>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  return b;
}

/** The index (see the top of this file). Keys are latin1: storage keys the caller checked, or keys as the log holds them. */
export class KeyIndex {
  // Per node.
  #parent = new Int32Array(1024);
  #hash = new Uint32Array(1024);
  #nameAt = new Uint32Array(1024);
  /** 16 bits: a key read back from the log is indexed as it is, whatever its segments' length. */
  #nameLength = new Uint16Array(1024);
  #first = new Int32Array(1024).fill(NONE);
  #next = new Int32Array(1024);
  #prev = new Int32Array(1024);
  #seg = new Uint32Array(1024);
  #offset = new Uint32Array(1024);
  #length = new Uint32Array(1024);
  /** Nodes ever allocated (node numbers below this are live or free). */
  #nodes = 1;
  readonly #free: number[] = [];
  // Names.
  #names = Buffer.alloc(16 * 1024);
  #namesEnd = 0;
  #deadNameBytes = 0;
  // (parent, name) → node.
  #table = new Int32Array(2048).fill(NONE);
  /** Table slots not NONE (live nodes and GONE marks). */
  #tableFilled = 0;
  #size = 0;
  /** Why a damaged key's record is damaged (only damaged keys are here). */
  readonly #damage = new Map<string, string>();

  constructor() {
    this.#parent[ROOT] = NONE;
  }

  /** How many keys the index holds (damaged ones included). */
  get size(): number {
    return this.#size;
  }

  get(key: string): Entry | undefined {
    const node = this.#find(key);
    if (node < 0 || this.#length[node] === 0) return undefined;
    const at = this.#location(node);
    const reason = this.#damage.get(key);
    return reason === undefined ? { damaged: false, at } : { damaged: true, reason, at };
  }

  /** Points `key` at `at` (a good record, or a damaged one with `damage`); returns where it pointed before. */
  set(key: string, at: Location, damage?: string): Location | undefined {
    if (!(at.offset < 2 ** 32 && at.length < 2 ** 32 && at.length > 0)) throw new RangeError(`a record at ${at.offset} of ${at.length} bytes does not fit the index`);
    let node = ROOT;
    let start = 0;
    for (;;) {
      const slash = key.indexOf("/", start);
      const end = slash < 0 ? key.length : slash;
      const hash = hashOf(node, key, start, end);
      const child = this.#child(node, key, start, end, hash);
      node = child >= 0 ? child : this.#add(node, key, start, end, hash);
      if (slash < 0) break;
      start = slash + 1;
    }
    let before: Location | undefined;
    if (this.#length[node] === 0) this.#size++;
    else before = this.#location(node);
    this.#seg[node] = at.seg;
    this.#offset[node] = at.offset;
    this.#length[node] = at.length;
    if (damage !== undefined) this.#damage.set(key, damage);
    else if (this.#damage.size > 0) this.#damage.delete(key);
    return before;
  }

  /** Removes `key`; returns where it pointed, or `undefined` if it was not there. */
  delete(key: string): Location | undefined {
    const node = this.#find(key);
    if (node < 0 || this.#length[node] === 0) return undefined;
    const before = this.#location(node);
    this.#length[node] = 0;
    this.#size--;
    if (this.#damage.size > 0) this.#damage.delete(key);
    this.#prune(node);
    return before;
  }

  /** Every key under `dirs` (complete segments) whose next segment starts with `partial`, sorted. */
  list(dirs: readonly string[], partial: string): string[] {
    let node = ROOT;
    for (const name of dirs) {
      node = this.#child(node, name, 0, name.length, hashOf(node, name, 0, name.length));
      if (node < 0) return [];
    }
    const out: string[] = [];
    const base = dirs.length === 0 ? "" : dirs.join("/") + "/";
    for (let c = this.#first[node] as number; c !== NONE; c = this.#next[c] as number) {
      const name = this.#nameOf(c);
      if (name.startsWith(partial)) this.#collect(c, base + name, out);
    }
    // Children are in no order, and "a/b/c" sorts after "a/b-x" ('/' > '-') anyway.
    return out.sort();
  }

  /**
   * For tests: throws unless every live node is in the hash table exactly once, the table's fill
   * count is right, and each node is on its parent's child list.
   */
  check(): void {
    const seen = new Map<number, number>();
    let filled = 0;
    for (const node of this.#table) {
      if (node === NONE) continue;
      filled++;
      if (node >= 0) seen.set(node, (seen.get(node) ?? 0) + 1);
    }
    if (filled !== this.#tableFilled) throw new Error(`table fill ${this.#tableFilled}, counted ${filled}`);
    for (let node = 1; node < this.#nodes; node++) {
      const live = this.#parent[node] !== NONE;
      if ((seen.get(node) ?? 0) !== (live ? 1 : 0)) throw new Error(`node ${node} (${live ? "live" : "free"}) is in the table ${seen.get(node) ?? 0} times`);
      if (!live) continue;
      let c = this.#first[this.#parent[node] as number] as number;
      while (c !== NONE && c !== node) c = this.#next[c] as number;
      if (c !== node) throw new Error(`node ${node} is not on its parent's child list`);
    }
  }

  #collect(node: number, path: string, out: string[]): void {
    if (this.#length[node] !== 0) out.push(path);
    for (let c = this.#first[node] as number; c !== NONE; c = this.#next[c] as number) this.#collect(c, `${path}/${this.#nameOf(c)}`, out);
  }

  /** The node of `key`, or -1. */
  #find(key: string): number {
    let node = ROOT;
    let start = 0;
    for (;;) {
      const slash = key.indexOf("/", start);
      const end = slash < 0 ? key.length : slash;
      node = this.#child(node, key, start, end, hashOf(node, key, start, end));
      if (node < 0 || slash < 0) return node;
      start = slash + 1;
    }
  }

  /** The child of `parent` named `key[start, end)` (whose hash is `hash`), or -1. */
  #child(parent: number, key: string, start: number, end: number, hash: number): number {
    const table = this.#table;
    const mask = table.length - 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const node = table[i] as number;
      if (node === NONE) return NONE;
      if (node >= 0 && this.#hash[node] === hash && this.#parent[node] === parent && this.#named(node, key, start, end)) return node;
    }
  }

  #named(node: number, key: string, start: number, end: number): boolean {
    if (this.#nameLength[node] !== end - start) return false;
    const names = this.#names;
    for (let i = start, p = this.#nameAt[node] as number; i < end; i++, p++) if (names[p] !== key.charCodeAt(i)) return false;
    return true;
  }

  #nameOf(node: number): string {
    const at = this.#nameAt[node] as number;
    return this.#names.toString("latin1", at, at + (this.#nameLength[node] as number));
  }

  /** A new child of `parent` named `key[start, end)`, with no value and no children. */
  #add(parent: number, key: string, start: number, end: number, hash: number): number {
    // Before the node exists: a rebuilt table holds the live nodes, and this one goes in once, below.
    if ((this.#tableFilled + 1) * 10 > this.#table.length * 7) this.#rehash(this.#nodes - this.#free.length);
    const node = this.#allocate();
    const length = end - start;
    if (this.#namesEnd + length > this.#names.length) this.#makeRoom(length);
    const names = this.#names;
    const at = this.#namesEnd;
    for (let i = 0; i < length; i++) names[at + i] = key.charCodeAt(start + i);
    this.#namesEnd += length;
    this.#nameAt[node] = at;
    this.#nameLength[node] = length;
    this.#parent[node] = parent;
    this.#hash[node] = hash;
    this.#first[node] = NONE;
    this.#length[node] = 0;
    // First among its siblings.
    const first = this.#first[parent] as number;
    this.#next[node] = first;
    this.#prev[node] = NONE;
    if (first !== NONE) this.#prev[first] = node;
    this.#first[parent] = node;
    this.#insert(node);
    return node;
  }

  /** Removes `node` if it has neither a value nor children, then its parent likewise. */
  #prune(node: number): void {
    while (node !== ROOT && this.#length[node] === 0 && this.#first[node] === NONE) {
      const parent = this.#parent[node] as number;
      const next = this.#next[node] as number;
      const prev = this.#prev[node] as number;
      if (prev === NONE) this.#first[parent] = next;
      else this.#next[prev] = next;
      if (next !== NONE) this.#prev[next] = prev;
      const table = this.#table;
      const mask = table.length - 1;
      let i = (this.#hash[node] as number) & mask;
      while (table[i] !== node) i = (i + 1) & mask;
      table[i] = GONE;
      this.#deadNameBytes += this.#nameLength[node] as number;
      this.#parent[node] = NONE;
      this.#free.push(node);
      node = parent;
    }
  }

  #insert(node: number): void {
    const table = this.#table;
    const mask = table.length - 1;
    let i = (this.#hash[node] as number) & mask;
    while ((table[i] as number) >= 0) i = (i + 1) & mask;
    if (table[i] === NONE) this.#tableFilled++;
    table[i] = node;
  }

  /** The table rebuilt at most half full with `live` nodes (and no GONE marks): larger when it must grow, the same size when marks filled it. */
  #rehash(live: number): void {
    let size = this.#table.length;
    while ((live + 1) * 2 > size) size *= 2;
    this.#table = new Int32Array(size).fill(NONE);
    this.#tableFilled = 0;
    for (let node = 1; node < this.#nodes; node++) if (this.#parent[node] !== NONE) this.#insert(node);
  }

  /**
   * Room for `length` more name bytes: the live names compacted into a buffer they fill at most
   * half of (the same size when at least half of it was dead, else twice as large), so that
   * compacting costs O(1) a name over time.
   */
  #makeRoom(length: number): void {
    const live = this.#namesEnd - this.#deadNameBytes;
    let size = this.#names.length;
    while (live * 2 > size || live + length > size) size *= 2;
    const names = Buffer.alloc(size);
    let end = 0;
    for (let node = 1; node < this.#nodes; node++) {
      if (this.#parent[node] === NONE) continue;
      const at = this.#nameAt[node] as number;
      const n = this.#nameLength[node] as number;
      this.#names.copy(names, end, at, at + n);
      this.#nameAt[node] = end;
      end += n;
    }
    this.#names = names;
    this.#namesEnd = end;
    this.#deadNameBytes = 0;
  }

  #location(node: number): Location {
    return { seg: this.#seg[node] as number, offset: this.#offset[node] as number, length: this.#length[node] as number };
  }

  #allocate(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (this.#nodes === this.#parent.length) {
      const n = this.#parent.length * 2;
      this.#parent = grown(this.#parent, n);
      this.#hash = grown(this.#hash, n);
      this.#nameAt = grown(this.#nameAt, n);
      this.#nameLength = grown(this.#nameLength, n);
      this.#first = grown(this.#first, n);
      this.#next = grown(this.#next, n);
      this.#prev = grown(this.#prev, n);
      this.#seg = grown(this.#seg, n);
      this.#offset = grown(this.#offset, n);
      this.#length = grown(this.#length, n);
    }
    return this.#nodes++;
  }
}
