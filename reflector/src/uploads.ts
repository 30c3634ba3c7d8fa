import { CloseCode, ProtocolError, equalBytes } from "@lockstep/protocol";

/**
 * A chunked upload being put together: the envelope of `total` bytes, filled in order. The buffer
 * is allocated once, at the first chunk, so an upload costs one copy of its bytes; `total` is
 * bounded by the upload's cap when the chunk is decoded, and only the elected uploader starts one.
 */
export class Assembly {
  readonly total: number;
  readonly #bytes: Uint8Array;
  #received = 0;

  constructor(total: number) {
    this.total = total;
    this.#bytes = new Uint8Array(total);
  }

  /** Bytes received so far. */
  get received(): number {
    return this.#received;
  }

  /**
   * Adds the chunk at `offset`. Returns the whole envelope once the last chunk arrived, else undefined.
   * @throws {ProtocolError} if the chunk does not continue the upload where it stands.
   */
  add(offset: number, data: Uint8Array): Uint8Array | undefined {
    if (offset !== this.#received || offset + data.length > this.total) {
      throw new ProtocolError(
        `upload chunk at offset ${offset} (${data.length} bytes) does not continue the upload (${this.#received} of ${this.total} bytes received); send chunks in order`,
      );
    }
    this.#bytes.set(data, offset);
    this.#received += data.length;
    return this.#received === this.total ? this.#bytes : undefined;
  }
}

/** What a persisted-data upload says in each of its chunks (they must all agree). */
export interface PersistUploadHeader {
  readonly slot: string;
  readonly token: Uint8Array;
  readonly seq: number;
  readonly hash: Uint8Array;
  readonly size: number;
}

/** A persisted-data upload in chunks, held by the connection sending it. */
export class PersistAssembly extends Assembly {
  readonly header: PersistUploadHeader;

  constructor(header: PersistUploadHeader, total: number) {
    super(total);
    // Copies: the chunk's fields view a receive buffer that is reused.
    this.header = { ...header, token: new Uint8Array(header.token), hash: new Uint8Array(header.hash) };
  }

  /** Whether a chunk's fields name this upload. */
  matches(header: PersistUploadHeader, total: number): boolean {
    const h = this.header;
    return total === this.total && header.slot === h.slot && header.seq === h.seq && header.size === h.size && equalBytes(header.token, h.token) && equalBytes(header.hash, h.hash);
  }
}

/** A chunk that names another upload than the one in progress. */
export function mismatchedChunk(what: string): ProtocolError {
  return new ProtocolError(`${what} chunk does not belong to the upload in progress; finish one upload before starting the next`, CloseCode.ProtocolError);
}
