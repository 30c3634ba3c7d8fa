/** FrameSlab: Relay frames carved from shared buffers must be the same bytes as frames of their own, and never overlap. */
import { FrameSlab, MessageType, decodeServerMessage, encodeRelay, encodeServerMessage } from "../src";
import { testRng } from "@lockstep/test-support";

describe("FrameSlab", () => {
  test("encodeRelay from a slab gives the bytes encodeServerMessage gives, and no frame changes when later ones are written", () => {
    const rng = testRng("frame slab relay");
    const slab = new FrameSlab(256, 4096);
    const frames: { frame: Uint8Array; expected: Uint8Array }[] = [];
    for (let seq = 1; seq <= 500; seq++) {
      // Sizes across the slab edges, and past a quarter of the largest slab (a buffer of its own).
      const payload = rng.bytes(rng.int(seq % 50 === 0 ? 3000 : 300));
      const time = rng.int(1e9);
      const frame = encodeRelay(seq, time, payload, slab);
      const expected = encodeServerMessage({ type: MessageType.Relay, seq, time, payload });
      expect(frame).toEqual(expected);
      frames.push({ frame, expected: expected.slice() });
    }
    for (const { frame, expected } of frames) expect(frame).toEqual(expected);
    const decoded = decodeServerMessage(frames[7]!.frame);
    expect(decoded).toMatchObject({ type: MessageType.Relay, seq: 8 });
  });

  test("views do not overlap; slabs grow to the largest size; big frames get their own buffer", () => {
    const slab = new FrameSlab(100, 800);
    const views = Array.from({ length: 200 }, (_, i) => slab.take(1 + (i % 150)));
    const byBuffer = new Map<ArrayBufferLike, [number, number][]>();
    for (const v of views) {
      const spans = byBuffer.get(v.buffer) ?? [];
      spans.push([v.byteOffset, v.byteOffset + v.byteLength]);
      byBuffer.set(v.buffer, spans);
    }
    for (const spans of byBuffer.values()) {
      spans.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    }
    const sizes = [...byBuffer.keys()].map((b) => b.byteLength);
    expect(Math.max(...sizes)).toBe(800);
    expect(sizes[0]).toBe(100);
    const big = slab.take(201);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(201);
    expect(() => new FrameSlab(0)).toThrow(RangeError);
    expect(() => new FrameSlab(4096, 1024)).toThrow(RangeError);
  });
});
