import { ProtocolError } from "./errors";

const utf8Encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF as text; by default TextDecoder would silently drop it from a field.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Bytes a varuint needs for `n` (0 ≤ n ≤ 2^53 − 1).
 * @throws {RangeError} if `n` is negative, fractional or above 2^53 − 1.
 */
export function varUintSize(n: number): number {
  // The exact-size encoders trust this to reject what they cannot encode (Infinity would loop forever).
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varUint needs a non-negative safe integer, got ${n}`);
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

/** Writes varuint `value` into `out` at `pos` (which must have room); returns the position after it. */
export function writeVarUintAt(out: Uint8Array, pos: number, value: number): number {
  while (value >= 0x80) {
    out[pos++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  out[pos++] = value;
  return pos;
}

/**
 * Writes a frame into a growable buffer. Integers are unsigned LEB128 varints (up to 2^53 − 1),
 * strings and byte arrays are length-prefixed.
 */
export class Writer {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;

  constructor(initialSize = 64) {
    this.#buf = new Uint8Array(initialSize);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#pos;
  }

  #ensure(extra: number): void {
    const needed = this.#pos + extra;
    if (needed <= this.#buf.length) return;
    // max() so a Writer(0) grows instead of doubling zero forever.
    let size = Math.max(this.#buf.length * 2, 8);
    while (size < needed) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(value: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = value;
  }

  varUint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`varUint needs a non-negative safe integer, got ${value}`);
    }
    this.#ensure(8);
    while (value >= 0x80) {
      this.#buf[this.#pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.#buf[this.#pos++] = value;
  }

  f64(value: number): void {
    this.#ensure(8);
    this.#view.setFloat64(this.#pos, value, true);
    this.#pos += 8;
  }

  bytes(value: Uint8Array): void {
    this.varUint(value.length);
    this.raw(value);
  }

  raw(value: Uint8Array): void {
    this.#ensure(value.length);
    this.#buf.set(value, this.#pos);
    this.#pos += value.length;
  }

  string(value: string): void {
    // Worst case 3 bytes per UTF-16 unit; encode straight into the buffer.
    const max = value.length * 3;
    const lengthSize = varUintSize(max);
    // +8 so the varUint below never reallocates (a reallocation copies only up to #pos).
    this.#ensure(lengthSize + max + 8);
    const lengthPos = this.#pos;
    const { written } = utf8Encoder.encodeInto(value, this.#buf.subarray(lengthPos + lengthSize));
    const actualSize = varUintSize(written);
    if (actualSize !== lengthSize) {
      this.#buf.copyWithin(lengthPos + actualSize, lengthPos + lengthSize, lengthPos + lengthSize + written);
    }
    this.varUint(written);
    this.#pos = lengthPos + actualSize + written;
  }

  /**
   * The bytes written. The writer is done with its buffer: when the bytes fill most of it (a
   * well-sized writer, e.g. a Sync of a whole log) they are returned as a view of it rather than
   * copied, so a large frame is never held twice; otherwise as a copy trimmed to length.
   */
  finish(): Uint8Array {
    if (this.#pos * 8 >= this.#buf.length * 7) return this.#buf.subarray(0, this.#pos);
    return this.#buf.slice(0, this.#pos);
  }
}

/** Reads what {@link Writer} wrote. Every read past the end throws a {@link ProtocolError}. */
export class Reader {
  readonly #buf: Uint8Array;
  #pos: number;

  constructor(buf: Uint8Array, offset = 0) {
    this.#buf = buf;
    this.#pos = offset;
  }

  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#buf.length - this.#pos;
  }

  u8(): number {
    if (this.#pos >= this.#buf.length) throw new ProtocolError("frame truncated: expected a byte");
    return this.#buf[this.#pos++]!;
  }

  varUint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.#pos >= this.#buf.length) throw new ProtocolError("frame truncated inside a varint");
      const byte = this.#buf[this.#pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(result)) throw new ProtocolError("varint exceeds 2^53 - 1");
        return result;
      }
      scale *= 0x80;
    }
    throw new ProtocolError("varint longer than 8 bytes");
  }

  f64(): number {
    if (this.remaining < 8) throw new ProtocolError("frame truncated: expected a float64");
    const view = new DataView(this.#buf.buffer, this.#buf.byteOffset + this.#pos, 8);
    this.#pos += 8;
    return view.getFloat64(0, true);
  }

  /** A length-prefixed byte array, as a view into the frame (no copy). */
  bytes(maxLength = Infinity): Uint8Array {
    const length = this.varUint();
    if (length > maxLength) throw new ProtocolError(`byte field of ${length} bytes exceeds limit ${maxLength}`);
    if (length > this.remaining) throw new ProtocolError(`frame truncated: byte field needs ${length} bytes, ${this.remaining} left`);
    const out = this.#buf.subarray(this.#pos, this.#pos + length);
    this.#pos += length;
    return out;
  }

  string(maxBytes = Infinity): string {
    const raw = this.bytes(maxBytes);
    try {
      return utf8Decoder.decode(raw);
    } catch (cause) {
      throw new ProtocolError("string field is not valid UTF-8", undefined, { cause });
    }
  }

  /** Throws unless every byte was consumed: trailing garbage is a malformed frame. */
  end(): void {
    if (this.#pos !== this.#buf.length) {
      throw new ProtocolError(`${this.#buf.length - this.#pos} unexpected trailing bytes`);
    }
  }
}
