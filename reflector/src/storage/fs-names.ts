/**
 * How key segments became file names in the filesystem adapter's former layout (a file per key),
 * which it still reads to migrate such a directory into its log (fs-legacy.ts); the tests and the
 * storage benchmark write that layout with the former code (test/storage/legacy-fs-store.ts).
 *
 * - Upper-case letters are escaped as `^` + lower case (`Ab` → `^ab`), so keys that differ only in
 *   case stay distinct on case-insensitive filesystems (macOS, Windows).
 * - A non-final segment is a directory named by its escaped form; the final segment is a file
 *   named by its escaped form plus {@link VALUE_SUFFIX}. `@` is outside the key alphabet, so the
 *   key `a/b` (file `a/b@`) and the key `a/b/c` (directory `a/b`) never collide.
 * - A put first writes `<file>tmp-<16 hex>` beside the target; such names never decode to a key.
 */

/** Appended to the final segment's file name. */
export const VALUE_SUFFIX = "@";
const TEMP_MARK = "tmp-";

const ESCAPED = /^(?:[a-z0-9._-]|\^[a-z])+$/;
const TEMP = /^(?:[a-z0-9._-]|\^[a-z])+@tmp-[0-9a-f]{16}$/;

/** The directory name of a (valid) key segment. */
export function encodeSegment(segment: string): string {
  return segment.replace(/[A-Z]/g, (c) => "^" + c.toLowerCase());
}

/** The file name of a key's final segment. */
export function valueFileName(segment: string): string {
  return encodeSegment(segment) + VALUE_SUFFIX;
}

/** A fresh temp file name for a put of `fileName` (`random16hex` is 16 lower-case hex digits). */
export function tempFileName(fileName: string, random16hex: string): string {
  return fileName + TEMP_MARK + random16hex;
}

/** The key segment a directory name stands for, or `undefined` if it is not one of ours. */
export function decodeDirName(name: string): string | undefined {
  if (!ESCAPED.test(name) || name === "." || name === "..") return undefined;
  return name.replace(/\^([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The key segment a value file name stands for, or `undefined` (temp files, foreign files). */
export function decodeFileName(name: string): string | undefined {
  if (!name.endsWith(VALUE_SUFFIX)) return undefined;
  return decodeDirName(name.slice(0, -VALUE_SUFFIX.length));
}

/** Whether `name` is a temp file left by an interrupted put. */
export function isTempFileName(name: string): boolean {
  return TEMP.test(name);
}
