import { DEFAULT_LIMITS } from "@lockstep/protocol";

/** A byte count the way the session log prints it: `512B`, `1.2KB`, `3.4MB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}KB`;
  return `${(n / (1024 * 1024)).toFixed(1)}MB`;
}

/** One piece of an upload: `data` is bytes `offset … offset + data.length` of the whole envelope. */
export interface UploadChunk {
  readonly offset: number;
  readonly data: Uint8Array;
}

/**
 * Splits an upload envelope into the pieces its `SnapshotChunk` / `PersistChunk` frames carry, in
 * order. No client frame may exceed the reflector's frame limit, so a snapshot or persisted data
 * of any size travels as chunks of at most `maxChunkBytes` (views into `envelope`, not copies).
 */
export function uploadChunks(envelope: Uint8Array, maxChunkBytes: number = DEFAULT_LIMITS.maxChunkBytes): UploadChunk[] {
  if (!(maxChunkBytes >= 1)) throw new RangeError(`chunk size must be at least 1 byte, got ${maxChunkBytes}`);
  const chunks: UploadChunk[] = [];
  for (let offset = 0; offset < envelope.length; offset += maxChunkBytes) {
    chunks.push({ offset, data: envelope.subarray(offset, Math.min(envelope.length, offset + maxChunkBytes)) });
  }
  return chunks;
}
