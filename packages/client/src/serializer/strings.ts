/**
 * The writer's side of the string table (`str` in format.ts). The reader appends every
 * NEW_INTERNED string to its table; the writer decides which strings to write in full and which by
 * index. Those decisions depend only on the sequence of strings written, so output stays
 * deterministic.
 */
import { INTERN_MAX_LENGTH, Str } from "./format";
import { type ByteSink, isWellFormed } from "./sink";

/** Slots of the recent-values cache: starts small (cheap small messages), grows with use. */
const RECENT_MIN = 16;
const RECENT_MAX = 1 << 14;

/** Writes `str` fields into one sink. */
export class StringWriter {
  readonly #sink: ByteSink;
  /** Table entries written so far (the next NEW_INTERNED string's index). */
  #count = 0;
  /** Names: property keys, class ids and refs. Few and much repeated, so remembered exactly. */
  readonly #names = new Map<string, number>();
  /**
   * String values: a direct-mapped cache of recently written ones. Many values are unique (ids),
   * and remembering them all would cost a Map insertion each; a value repeated while it is still
   * cached is written by index, otherwise in full again.
   */
  #recent: Array<string | undefined> | undefined;
  #recentIndex: number[] | undefined;
  #recentFills = 0;

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  /** A name (property key, class id, ref id): each distinct one is written in full only once. */
  name(value: string): void {
    const sink = this.#sink;
    if (value.length > INTERN_MAX_LENGTH) {
      this.#literal(value);
      return;
    }
    const index = this.#names.get(value);
    if (index !== undefined) {
      sink.varUint(index + Str.TABLE_BASE);
    } else if (isWellFormed(value)) {
      this.#names.set(value, this.#count++);
      sink.u8(Str.NEW_INTERNED);
      sink.utf8(value);
    } else {
      sink.u8(Str.LITERAL_UTF16);
      sink.utf16(value);
    }
  }

  /** A string value: by index if it was written recently, else in full. */
  value(value: string): void {
    const n = value.length;
    if (n > INTERN_MAX_LENGTH || n === 0) {
      this.#literal(value);
      return;
    }
    let recent = this.#recent;
    let recentIndex = this.#recentIndex;
    if (recent === undefined || recentIndex === undefined) {
      recent = this.#recent = new Array<string | undefined>(RECENT_MIN).fill(undefined);
      recentIndex = this.#recentIndex = new Array<number>(RECENT_MIN).fill(0);
    }
    // FNV-1a over UTF-16 units: fully specified arithmetic, so every engine picks the same slot.
    let h = 0x811c9dc5;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ value.charCodeAt(i), 0x01000193);
    const slot = (h ^ (h >>> 16)) & (recent.length - 1);
    if (recent[slot] === value) {
      this.#sink.varUint(recentIndex[slot]! + Str.TABLE_BASE);
      return;
    }
    if (!isWellFormed(value)) {
      this.#sink.u8(Str.LITERAL_UTF16);
      this.#sink.utf16(value);
      return;
    }
    if (++this.#recentFills > recent.length && recent.length < RECENT_MAX) {
      // Grow (emptied, which is simplest and just as deterministic) once the cache is well used.
      const size = recent.length * 4;
      recent = this.#recent = new Array<string | undefined>(size).fill(undefined);
      recentIndex = this.#recentIndex = new Array<number>(size).fill(0);
      this.#recentFills = 0;
    }
    const slotNow = (h ^ (h >>> 16)) & (recent.length - 1);
    recent[slotNow] = value;
    recentIndex[slotNow] = this.#count++;
    this.#sink.u8(Str.NEW_INTERNED);
    this.#sink.utf8(value);
  }

  #literal(value: string): void {
    if (isWellFormed(value)) {
      this.#sink.u8(Str.LITERAL_UTF8);
      this.#sink.utf8(value);
    } else {
      this.#sink.u8(Str.LITERAL_UTF16);
      this.#sink.utf16(value);
    }
  }
}
