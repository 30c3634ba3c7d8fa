/** One growable output buffer with the primitive encodings of the serialization format. */

const utf8Encoder = new TextEncoder();

/** Bytes a varuint needs for `n` (0 ≤ n ≤ 2^53 − 1). */
export function varUintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

/** NaN has many bit patterns, and which one a computation yields depends on the CPU: write one. */
const CANONICAL_NAN = [0, 0, 0, 0, 0, 0, 0xf8, 0x7f] as const;

/**
 * Float64 → bytes through one scratch cell: cheaper than a DataView per buffer (allocating typed
 * views dominates the cost of small messages). Used synchronously, so sharing it is safe.
 */
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
/** Typed arrays use platform byte order; the format is little-endian. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A growable byte buffer (doubling, so appends are amortised O(1)). Callers pass valid values:
 * the graph writer checks its input before it gets here.
 */
export class ByteSink {
  #buf: Uint8Array;
  #pos = 0;

  constructor(initialSize = 256) {
    this.#buf = new Uint8Array(initialSize);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#pos;
  }

  /** Makes room for `extra` more bytes. */
  reserve(extra: number): void {
    const needed = this.#pos + extra;
    if (needed > this.#buf.length) this.#grow(needed);
  }

  #grow(needed: number): void {
    let size = this.#buf.length * 2;
    while (size < needed) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
  }

  /** One byte. */
  u8(value: number): void {
    if (this.#pos >= this.#buf.length) this.#grow(this.#pos + 1);
    this.#buf[this.#pos++] = value;
  }

  /** Two bytes: a tag and a small varuint (< 128), the most common pair. */
  u8u8(a: number, b: number): void {
    if (this.#pos + 2 > this.#buf.length) this.#grow(this.#pos + 2);
    this.#buf[this.#pos++] = a;
    this.#buf[this.#pos++] = b;
  }

  /** Unsigned LEB128; `value` must be a safe non-negative integer. */
  varUint(value: number): void {
    if (this.#pos + 8 > this.#buf.length) this.#grow(this.#pos + 8);
    this.#pos = this.#varUintAt(this.#pos, value);
  }

  #varUintAt(pos: number, value: number): number {
    const buf = this.#buf;
    while (value > 0xffffffff) {
      buf[pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    while (value >= 0x80) {
      buf[pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[pos++] = value;
    return pos;
  }

  /** Float64 little-endian, NaN canonicalised. */
  f64(value: number): void {
    this.reserve(8);
    const buf = this.#buf;
    const pos = this.#pos;
    if (value !== value) {
      for (let i = 0; i < 8; i++) buf[pos + i] = CANONICAL_NAN[i]!;
    } else {
      F64[0] = value;
      if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) buf[pos + i] = F64_BYTES[i]!;
      else for (let i = 0; i < 8; i++) buf[pos + i] = F64_BYTES[7 - i]!;
    }
    this.#pos = pos + 8;
  }

  /** Raw bytes, no length. */
  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** varuint byte length, then UTF-8. `value` must be well-formed (no lone surrogates). */
  utf8(value: string): void {
    const n = value.length;
    const max = n * 3;
    const prefix = varUintSize(max);
    this.reserve(prefix + max);
    const buf = this.#buf;
    const start = this.#pos;
    if (n < 0x80) {
      // Short ASCII (most keys and ids): a plain loop beats encodeInto's call overhead.
      let p = start + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p++] = c;
      }
      if (i === n) {
        buf[start] = n;
        this.#pos = p;
        return;
      }
    }
    const { written } = utf8Encoder.encodeInto(value, buf.subarray(start + prefix, start + prefix + max));
    const size = varUintSize(written);
    if (size !== prefix) buf.copyWithin(start + size, start + prefix, start + prefix + written);
    this.#pos = this.#varUintAt(start, written) + written;
  }

  /** varuint count of UTF-16 code units, then each unit little-endian (any string, exactly). */
  utf16(value: string): void {
    const n = value.length;
    this.varUint(n);
    this.reserve(n * 2);
    const buf = this.#buf;
    let p = this.#pos;
    for (let i = 0; i < n; i++) {
      const c = value.charCodeAt(i);
      buf[p++] = c & 0xff;
      buf[p++] = c >>> 8;
    }
    this.#pos = p;
  }

  /** varuint byte count, then the magnitude of `value` (≥ 0n) little-endian, no leading zeros. */
  bigMagnitude(value: bigint): void {
    if (value === 0n) {
      this.u8(0);
      return;
    }
    const hex = value.toString(16);
    const n = (hex.length + 1) >> 1;
    this.varUint(n);
    this.reserve(n);
    const buf = this.#buf;
    const pos = this.#pos;
    // Byte i holds hex digits [end − 2i − 2, end − 2i); the first digit may stand alone.
    for (let i = 0, end = hex.length; i < n; i++, end -= 2) {
      const lo = hexDigit(hex.charCodeAt(end - 1));
      const hi = end >= 2 ? hexDigit(hex.charCodeAt(end - 2)) : 0;
      buf[pos + i] = (hi << 4) | lo;
    }
    this.#pos = pos + n;
  }

  /** The bytes written, as a fresh copy trimmed to length. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }
}

/** Value of a lowercase hex digit's char code. */
function hexDigit(code: number): number {
  return code <= 0x39 ? code - 0x30 : code - 0x57;
}

const nativeIsWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True unless `value` has a lone surrogate (which UTF-8 cannot carry). */
export function isWellFormed(value: string): boolean {
  return nativeIsWellFormed !== undefined ? nativeIsWellFormed.call(value) : !LONE_SURROGATE.test(value);
}
