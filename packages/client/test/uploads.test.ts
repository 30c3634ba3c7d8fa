import { DEFAULT_LIMITS } from "@lockstep/protocol";
import { formatBytes, uploadChunks } from "../src/session/chunks";

test("an upload splits into in-order chunks of at most maxChunkBytes that cover it exactly", () => {
  const bytes = new Uint8Array(10_000).map((_, i) => i % 251);
  for (const max of [1, 7, 4096, 9_999, 10_000, 20_000]) {
    const chunks = uploadChunks(bytes, max);
    expect(chunks.length).toBe(Math.ceil(bytes.length / max));
    let offset = 0;
    for (const chunk of chunks) {
      expect(chunk.offset).toBe(offset);
      expect(chunk.data.length).toBeGreaterThan(0);
      expect(chunk.data.length).toBeLessThanOrEqual(max);
      offset += chunk.data.length;
    }
    expect(offset).toBe(bytes.length);
    expect(Buffer.concat(chunks.map((c) => c.data))).toEqual(Buffer.from(bytes));
  }
});

test("the default chunk size is the protocol's maxChunkBytes", () => {
  const bytes = new Uint8Array(DEFAULT_LIMITS.maxChunkBytes * 2 + 1);
  expect(uploadChunks(bytes).map((c) => c.data.length)).toEqual([DEFAULT_LIMITS.maxChunkBytes, DEFAULT_LIMITS.maxChunkBytes, 1]);
});

test("a chunk size below one byte is a clear error", () => {
  expect(() => uploadChunks(new Uint8Array(3), 0)).toThrow(/at least 1 byte/);
});

test("formatBytes", () => {
  expect(formatBytes(512)).toBe("512B");
  expect(formatBytes(1536)).toBe("1.5KB");
  expect(formatBytes(3 * 1024 * 1024)).toBe("3.0MB");
});
