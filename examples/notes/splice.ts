/**
 * Text splices: the one kind of text edit the notes example sends. A splice replaces
 * `deleteCount` UTF-16 code units at `from` with `insert`, the same units a textarea's
 * `selectionStart` counts in. Pure functions, shared by the models (which apply splices) and the
 * views (which compute them from a textarea and keep its caret in place).
 *
 * This is a simple splice model, not OT or a CRDT: concurrent edits are mapped through each other
 * by position only (see {@link mapPosition}), which keeps the common case (people typing in
 * different places) exact. Overlapping concurrent edits can interleave imperfectly, but every
 * replica applies the same splices in the reflector's order, so everyone still sees the same text.
 */

/** Replace `deleteCount` code units at `from` with `insert`. */
export interface Splice {
  readonly from: number;
  readonly deleteCount: number;
  readonly insert: string;
}

/** Which side of an edit a position at its boundary stays on. */
export type Bias = "before" | "after";

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Whether `pos` falls between the two halves of a surrogate pair of `text`. */
function splitsPair(text: string, pos: number): boolean {
  return pos > 0 && pos < text.length && isHighSurrogate(text.charCodeAt(pos - 1)) && isLowSurrogate(text.charCodeAt(pos));
}

/**
 * The splice that turns `before` into `after`: their common prefix and suffix are kept, the rest
 * replaced. `caret` (where the caret is in `after`, e.g. the textarea's `selectionEnd`) settles the
 * ambiguous cases (typing "a" into "aa" is an insert where the caret is, not at the end of the run).
 * Never splits a surrogate pair. Returns undefined when the strings are equal.
 *
 * @example
 * ```ts
 * diffSplice("hello world", "hello brave world"); // { from: 6, deleteCount: 0, insert: "brave " }
 * ```
 */
export function diffSplice(before: string, after: string, caret?: number): Splice | undefined {
  if (before === after) return undefined;
  const shorter = Math.min(before.length, after.length);
  let prefix = 0;
  while (prefix < shorter && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix++;
  if (caret !== undefined && Number.isInteger(caret)) {
    // An edit ends at the caret: the common prefix cannot reach past caret - (units inserted).
    prefix = Math.max(0, Math.min(prefix, caret - Math.max(0, after.length - before.length)));
  }
  if (prefix > 0 && isHighSurrogate(before.charCodeAt(prefix - 1))) prefix--;
  let suffix = 0;
  const maxSuffix = shorter - prefix;
  while (suffix < maxSuffix && before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)) suffix++;
  if (suffix > 0 && isLowSurrogate(before.charCodeAt(before.length - suffix))) suffix--;
  return { from: prefix, deleteCount: before.length - prefix - suffix, insert: after.slice(prefix, after.length - suffix) };
}

/**
 * Fits a splice to `text`: positions clamped into range, widened so that no surrogate pair is cut
 * in half, and the insert shortened so the result is at most `maxLength` code units.
 */
export function clampSplice(text: string, splice: Splice, maxLength = Infinity): Splice {
  let from = Math.min(Math.max(0, Math.trunc(splice.from) || 0), text.length);
  let end = Math.min(from + Math.max(0, Math.trunc(splice.deleteCount) || 0), text.length);
  const isInsert = end === from;
  if (splitsPair(text, from)) from--;
  if (isInsert) end = from; // an insert inside a pair moves before it, deleting nothing
  else if (splitsPair(text, end)) end++;
  let insert = splice.insert;
  const room = Math.max(0, maxLength - (text.length - (end - from)));
  if (insert.length > room) {
    insert = insert.slice(0, room);
    if (insert.length > 0 && isHighSurrogate(insert.charCodeAt(insert.length - 1))) insert = insert.slice(0, -1);
  }
  return { from, deleteCount: end - from, insert };
}

/** Applies a splice that fits `text` (see {@link clampSplice}). */
export function applySplice(text: string, splice: Splice): string {
  return text.slice(0, splice.from) + splice.insert + text.slice(splice.from + splice.deleteCount);
}

/**
 * Where position `pos` of a text is after `splice` was applied to that text. Positions before the
 * splice stay, positions after it shift by its length change, and positions inside the deleted
 * range (or exactly at an insert) go to the start of the replacement ("before") or its end ("after").
 */
export function mapPosition(pos: number, splice: { readonly from: number; readonly deleteCount: number; readonly insertLength: number }, bias: Bias): number {
  const end = splice.from + splice.deleteCount;
  if (pos < splice.from || (pos === splice.from && bias === "before")) return pos;
  if (pos >= end) return pos + splice.insertLength - splice.deleteCount;
  return bias === "before" ? splice.from : splice.from + splice.insertLength;
}

/** `mapPosition` for a {@link Splice}. */
export function mapThrough(pos: number, splice: Splice, bias: Bias): number {
  return mapPosition(pos, { from: splice.from, deleteCount: splice.deleteCount, insertLength: splice.insert.length }, bias);
}

/**
 * Splits a splice whose insert is longer than `chunk` code units into several (the first deletes,
 * the rest insert after one another), so that no single event grows past the reflector's payload
 * limit. Never splits a surrogate pair.
 */
export function chunkSplice(splice: Splice, chunk: number): Splice[] {
  if (splice.insert.length <= chunk) return [splice];
  const out: Splice[] = [];
  let offset = 0;
  while (offset < splice.insert.length || out.length === 0) {
    let end = Math.min(offset + chunk, splice.insert.length);
    if (end < splice.insert.length && isHighSurrogate(splice.insert.charCodeAt(end - 1)) && end - 1 > offset) end--;
    out.push({ from: splice.from + offset, deleteCount: out.length === 0 ? splice.deleteCount : 0, insert: splice.insert.slice(offset, end) });
    offset = end;
  }
  return out;
}

/** A splice as a model applied it: revision `rev` of a document, sent by view `viewId`. */
export interface AppliedSplice {
  readonly rev: number;
  readonly viewId: string;
  readonly from: number;
  readonly deleteCount: number;
  readonly insertLength: number;
}

/**
 * Maps a splice that view `viewId` computed against revision `base` of a document through the
 * splices other views made since (`history`, oldest first), so it lands where its author meant.
 * The author's own later splices are already part of what it saw, so they are skipped. An insert
 * at the same place as a concurrent one goes after it; a deletion never swallows text inserted
 * concurrently at its edges. History older than what is kept is not mapped (the splice is then
 * only clamped when applied).
 */
export function rebaseSplice(splice: Splice, history: readonly AppliedSplice[], base: number, viewId: string): Splice {
  let from = splice.from;
  let end = splice.from + splice.deleteCount;
  for (const applied of history) {
    if (applied.rev <= base || applied.viewId === viewId) continue;
    if (from === end) {
      from = end = mapPosition(from, applied, "after");
    } else {
      from = mapPosition(from, applied, "after");
      end = Math.max(from, mapPosition(end, applied, "before"));
    }
  }
  return { from, deleteCount: end - from, insert: splice.insert };
}
