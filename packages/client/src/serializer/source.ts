/** Bounds-checked reading of the primitive encodings of the serialization format. */
import { DeserializationError } from "./errors";
import { LITTLE_ENDIAN } from "./sink";

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Two lowercase hex digits for each byte value. */
const HEX: readonly string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** Scratch cell for bytes → float64 (see sink.ts). */
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);

/** Units per String.fromCharCode call: stays far below engines' argument-count limits. */
const CHUNK = 4096;

/**
 * Reads from untrusted bytes. Every read checks the remaining length first, so malformed input
 * throws a {@link DeserializationError} and no length field is trusted before it is checked.
 */
export class ByteSource {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(bytes: Uint8Array) {
    this.#buf = bytes;
  }

  /** Current byte offset. */
  get offset(): number {
    return this.#pos;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#buf.length - this.#pos;
  }

  /** Throws for input that ended early. */
  truncated(what: string): DeserializationError {
    return new DeserializationError(`serialized data truncated: expected ${what}`, this.#pos);
  }

  /** Throws unless `count` items of at least `minBytes` each can still follow. */
  checkCount(count: number, minBytes: number, what: string): void {
    if (count * minBytes > this.remaining) {
      throw new DeserializationError(`${what} of ${count} entries is longer than the ${this.remaining} bytes left`, this.#pos);
    }
  }

  /** One byte. */
  u8(): number {
    if (this.#pos >= this.#buf.length) throw this.truncated("a byte");
    return this.#buf[this.#pos++]!;
  }

  /** Unsigned LEB128 of at most 8 bytes, value ≤ 2^53 − 1. */
  varUint(): number {
    const buf = this.#buf;
    const end = buf.length;
    let pos = this.#pos;
    if (pos >= end) throw this.truncated("a varint");
    let byte = buf[pos++]!;
    if (byte < 0x80) {
      this.#pos = pos;
      return byte;
    }
    let result = byte & 0x7f;
    let scale = 0x80;
    for (let i = 1; i < 8; i++) {
      if (pos >= end) throw this.truncated("the rest of a varint");
      byte = buf[pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) throw new DeserializationError("varint exceeds 2^53 - 1", this.#pos);
        this.#pos = pos;
        return result;
      }
      scale *= 0x80;
    }
    throw new DeserializationError("varint longer than 8 bytes", this.#pos);
  }

  /** Float64 little-endian. */
  f64(): number {
    const buf = this.#buf;
    const pos = this.#pos;
    if (pos + 8 > buf.length) throw this.truncated("a float64");
    if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) F64_BYTES[i] = buf[pos + i]!;
    else for (let i = 0; i < 8; i++) F64_BYTES[7 - i] = buf[pos + i]!;
    this.#pos = pos + 8;
    return F64[0]!;
  }

  /** `length` bytes as a view into the input (no copy). */
  bytes(length: number): Uint8Array {
    if (length > this.remaining) {
      throw new DeserializationError(`field of ${length} bytes is longer than the ${this.remaining} bytes left`, this.#pos);
    }
    const out = this.#buf.subarray(this.#pos, this.#pos + length);
    this.#pos += length;
    return out;
  }

  /** varuint byte length, then UTF-8 (validated). */
  utf8(): string {
    const length = this.varUint();
    const start = this.#pos;
    const bytes = this.bytes(length);
    if (length <= 16) {
      // Short ASCII (most keys): skip the decoder's call overhead.
      let text = "";
      let i = 0;
      for (; i < length; i++) {
        const c = bytes[i]!;
        if (c >= 0x80) break;
        text += String.fromCharCode(c);
      }
      if (i === length) return text;
    }
    try {
      return utf8Decoder.decode(bytes);
    } catch (cause) {
      throw new DeserializationError("string is not valid UTF-8", start, { cause });
    }
  }

  /** varuint count of UTF-16 code units, then the units little-endian. */
  utf16(): string {
    const count = this.varUint();
    const bytes = this.bytes(count * 2);
    const units = new Uint16Array(Math.min(count, CHUNK));
    let text = "";
    for (let done = 0; done < count; done += CHUNK) {
      const n = Math.min(CHUNK, count - done);
      for (let i = 0; i < n; i++) {
        const p = (done + i) * 2;
        units[i] = bytes[p]! | (bytes[p + 1]! << 8);
      }
      text += String.fromCharCode.apply(null, units.subarray(0, n) as unknown as number[]);
    }
    return text;
  }

  /** varuint byte count, then a magnitude little-endian. */
  bigMagnitude(): bigint {
    const length = this.varUint();
    const bytes = this.bytes(length);
    if (length === 0) return 0n;
    let hex = "0x";
    for (let i = length - 1; i >= 0; i--) hex += HEX[bytes[i]!]!;
    return BigInt(hex);
  }

  /** Throws unless every byte was read: trailing bytes mean the input is not what was written. */
  expectEnd(): void {
    if (this.#pos !== this.#buf.length) {
      throw new DeserializationError(`${this.#buf.length - this.#pos} unexpected trailing bytes`, this.#pos);
    }
  }
}
