/**
 * Property test: random object graphs (seeded; the seed is printed) with every supported kind of
 * value, shared references, cycles and occasional very deep chains round-trip to a structurally
 * identical graph, and serializing twice, or serializing the restored copy, gives identical bytes.
 */
import { deserialize, serialize } from "../src/serializer/index";
import { sameBytes, seedHint, testRng, toHex } from "@lockstep/test-support";
import { graphDifference, Point, registry, Tagged, Vec3 } from "./serializer.helpers";

const options = registry();

const EDGE_NUMBERS = [0, -0, 1, -1, 63, 64, -65, 127, 128, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 52 - 1, -(2 ** 52), 2 ** 52,
  Number.MAX_SAFE_INTEGER, NaN, Infinity, -Infinity, 0.1, -1e-300, Number.MAX_VALUE, Number.MIN_VALUE];
const CHARS = ["a", "b", "Z", "0", " ", "é", "ß", "✓", "日", "🎉", "\u0000", "\ud800", "\udfff", '"', "\\"];
const KEYS = ["a", "b", "id", "name", "x", "y", "0", "10", "odd key", "", "__proto__", "constructor", "ünï"];
const VIEWS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array,
  Float64Array, BigInt64Array, BigUint64Array] as const;

class GraphBuilder {
  readonly #random: () => number;
  /** Every container made so far, including unfinished ones: picking them makes cycles. */
  readonly #pool: object[] = [];
  readonly #buffers: ArrayBuffer[] = [];
  #budget: number;

  constructor(random: () => number) {
    this.#random = random;
    this.#budget = 1 + this.#int(250);
  }

  #int(n: number): number {
    return Math.floor(this.#random() * n);
  }

  #pick<T>(items: readonly T[]): T {
    return items[this.#int(items.length)]!;
  }

  primitive(): unknown {
    switch (this.#int(9)) {
      case 0:
        return this.#pick(EDGE_NUMBERS);
      case 1:
        return this.#int(2000) - 1000;
      case 2:
        return (this.#random() - 0.5) * 10 ** this.#int(20);
      case 3:
      case 4: {
        let s = "";
        const length = this.#random() < 0.9 ? this.#int(8) : 60 + this.#int(30);
        for (let i = 0; i < length; i++) s += this.#pick(CHARS);
        return s;
      }
      case 5:
        return this.#pick([undefined, null, true, false]);
      case 6:
        return BigInt(this.#int(1000) - 500) * 10n ** BigInt(this.#int(40));
      case 7:
        return this.#pick(KEYS); // repeated strings exercise the string table
      default:
        return this.#int(64);
    }
  }

  value(depth: number): unknown {
    const r = this.#random();
    if (r < 0.45 || this.#budget <= 0 || depth > 12) return this.primitive();
    if (r < 0.55 && this.#pool.length > 0) return this.#pick(this.#pool);
    this.#budget--;
    return this.container(depth, this.#int(10));
  }

  container(depth: number, kind: number): object {
    const size = this.#int(6);
    switch (kind) {
      case 0:
      case 1: {
        const obj = kind === 0 ? {} : (Object.create(null) as object);
        this.#pool.push(obj);
        for (let i = 0; i < size; i++) {
          // defineProperty, so "__proto__" becomes an own property like JSON.parse makes it
          Object.defineProperty(obj, this.#pick(KEYS), { value: this.value(depth + 1), enumerable: true, writable: true, configurable: true });
        }
        return obj;
      }
      case 2: {
        const array: unknown[] = [];
        this.#pool.push(array);
        for (let i = 0; i < size; i++) {
          if (this.#random() < 0.15) array.length += 1 + this.#int(3); // holes
          else array.push(this.value(depth + 1));
        }
        return array;
      }
      case 3: {
        const map = new Map<unknown, unknown>();
        this.#pool.push(map);
        for (let i = 0; i < size; i++) map.set(this.#random() < 0.6 ? this.primitive() : this.value(depth + 1), this.value(depth + 1));
        return map;
      }
      case 4: {
        const set = new Set<unknown>();
        this.#pool.push(set);
        for (let i = 0; i < size; i++) set.add(this.value(depth + 1));
        return set;
      }
      case 5:
        return this.#view();
      case 6: {
        const point = new Point(null, null);
        this.#pool.push(point);
        point.x = this.value(depth + 1);
        point.y = this.value(depth + 1);
        return point;
      }
      case 7: {
        const vec = new Vec3(this.#random(), -0, this.#int(10));
        this.#pool.push(vec);
        return vec;
      }
      case 8:
        // Payloads never reach back to the Tagged itself: cycles through custom types are rejected.
        return this.#pooled(new Tagged(String(this.primitive()), this.#random() < 0.5 ? new Vec3(1, 2, 3) : [this.primitive(), this.primitive()]));
      default: {
        const buffer = new ArrayBuffer(8 * this.#int(5));
        new Uint8Array(buffer).forEach((_, i, a) => (a[i] = this.#int(256)));
        this.#pool.push(buffer);
        this.#buffers.push(buffer);
        return buffer;
      }
    }
  }

  #pooled<T extends object>(obj: T): T {
    this.#pool.push(obj);
    return obj;
  }

  #view(): object {
    const ctor = this.#pick(VIEWS);
    const reuse = this.#buffers.length > 0 && this.#random() < 0.6;
    const buffer = reuse ? this.#pick(this.#buffers) : new ArrayBuffer(8 * (1 + this.#int(4)));
    if (!reuse) {
      new Uint8Array(buffer).forEach((_, i, a) => (a[i] = this.#int(256)));
      this.#buffers.push(buffer);
    }
    const elements = buffer.byteLength / ctor.BYTES_PER_ELEMENT;
    const start = this.#int(elements + 1);
    const view = this.#random() < 0.2
      ? new DataView(buffer, start * ctor.BYTES_PER_ELEMENT, this.#int((elements - start) * ctor.BYTES_PER_ELEMENT + 1))
      : new ctor(buffer, start * ctor.BYTES_PER_ELEMENT, this.#int(elements - start + 1));
    this.#pool.push(view);
    return view;
  }

  /** Wraps `inner` in `levels` containers, some pointing back at random earlier ones. */
  chain(inner: unknown, levels: number): unknown {
    let value = inner;
    for (let i = 0; i < levels; i++) {
      const back = this.#pool.length > 0 && this.#random() < 0.1 ? this.#pick(this.#pool) : undefined;
      switch (this.#int(5)) {
        case 0:
          value = { next: value, back };
          break;
        case 1:
          value = [back, value];
          break;
        case 2:
          value = new Map<unknown, unknown>([[i, value], ["back", back]]);
          break;
        case 3:
          value = new Set([back, value]);
          break;
        default:
          value = new Point(value, back);
      }
      this.#pool.push(value as object);
    }
    return value;
  }
}

describe("serializer: random graphs", () => {
  it("round-trip structurally, with byte-identical re-serialization", () => {
    const random = testRng("serializer random graphs").next;
    let totalBytes = 0;
    for (let round = 0; round < 400; round++) {
      const builder = new GraphBuilder(random);
      let graph = builder.value(0);
      if (round % 10 === 9) graph = builder.chain(graph, 150 + Math.floor(random() * 600)); // beyond DEFER_DEPTH
      const bytes = serialize(graph, options);
      totalBytes += bytes.length;
      const again = serialize(graph, options);
      if (!sameBytes(bytes, again)) throw new Error(`round ${round} (${seedHint()}): serializing twice differs`);
      const copy = deserialize(bytes, options);
      const difference = graphDifference(graph, copy);
      if (difference !== undefined) throw new Error(`round ${round} (${seedHint()}): ${difference}`);
      const reserialized = serialize(copy, options);
      if (!sameBytes(bytes, reserialized)) {
        expect(toHex(reserialized)).toBe(toHex(bytes)); // shows the diff
      }
    }
    expect(totalBytes).toBeGreaterThan(0);
  });
});
