/** Byte helpers for tests: readable hex fixtures, and fast byte equality. */

/** Parses `"01 02 ff"` (whitespace ignored, either case) into bytes; throws on anything that is not hex. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  if (clean.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(clean)) throw new Error(`bad hex fixture: ${text}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Formats bytes as `"01 02 ff"` (lower case, one space between bytes), so a failing golden test shows a readable diff. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** Normalises a hand-written fixture to the form {@link toHex} produces. */
export function normHex(text: string): string {
  return toHex(hex(text));
}

/** Byte equality without jest's element-by-element diffing (fast for megabyte fields). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  if (typeof Buffer !== "undefined") return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
