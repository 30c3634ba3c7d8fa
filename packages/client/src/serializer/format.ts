/**
 * The object-graph serialization format, version 1. Writer and reader both follow this table;
 * change it only together with {@link FORMAT_VERSION}.
 *
 * ## Layout
 *
 * ```text
 * graph      = version:u8 value deferred-body*          (no trailing bytes)
 * value      = tag:u8 payload
 * varuint    = unsigned LEB128, at most 8 bytes, value ≤ 2^53 − 1
 * str        = varuint h, then by h:
 *                0  → varuint n, n bytes UTF-8; appended to the string table
 *                1  → varuint n, n bytes UTF-8 (not added to the table)
 *                2  → varuint n, n UTF-16 code units little-endian (strings with lone surrogates)
 *                h≥3 → string table entry h − 3
 * props      = varuint count, then count × (key:str value)
 * ```
 *
 * Which strings are interned is the writer's choice (strings.ts: names always, string values
 * while recently seen); the reader simply appends every NEW_INTERNED string to its table.
 *
 * | tag  | name          | payload                                                               |
 * |------|---------------|-----------------------------------------------------------------------|
 * | 0x00 | UNDEFINED     | —                                                                     |
 * | 0x01 | NULL          | —                                                                     |
 * | 0x02 | FALSE         | —                                                                     |
 * | 0x03 | TRUE          | —                                                                     |
 * | 0x04 | INT           | varuint zigzag(n); integers in [−2^52, 2^52), never −0                |
 * | 0x05 | FLOAT         | float64 little-endian; NaN always as 0x7ff8000000000000               |
 * | 0x06 | STRING        | str                                                                   |
 * | 0x07 | BIGINT_POS    | varuint n, n magnitude bytes little-endian (0n: n = 0)                |
 * | 0x08 | BIGINT_NEG    | as BIGINT_POS, value negated                                          |
 * | 0x10 | BACKREF       | varuint object index (an object written earlier)                      |
 * | 0x11 | REF           | id:str — message mode, resolved by `resolveRef` (takes an index)      |
 * | 0x20 | ARRAY         | varuint length, then elements (values or HOLES)                       |
 * | 0x21 | OBJECT        | props (prototype Object.prototype)                                    |
 * | 0x22 | NULL_OBJECT   | props (null prototype)                                                |
 * | 0x23 | MAP           | varuint size, then size × (key value)                                 |
 * | 0x24 | SET           | varuint size, then size × value                                       |
 * | 0x25 | CLASS         | id:str props — registered class instance                              |
 * | 0x26 | CUSTOM        | id:str value — custom type: `read(value)` recreates the object       |
 * | 0x30 | ARRAY_BUFFER  | varuint byteLength, raw bytes                                         |
 * | 0x31 | VIEW          | kind:u8 buffer:value varuint byteOffset varuint length (see below)    |
 * | 0x40 | DEFERRED      | container tag (ARRAY, OBJECT, NULL_OBJECT, MAP, SET, or CLASS id:str) |
 * | 0x41 | HOLES         | varuint count ≥ 1 — only as an array element: a run of holes          |
 *
 * Every object takes the next object index (0, 1, …) when it first appears: REF, the container
 * tags ARRAY…CLASS (also when announced by DEFERRED), CUSTOM, ARRAY_BUFFER and VIEW. The index is
 * taken *before* the contents are read, so contents can refer back to their container (cycles).
 * A VIEW's index comes before its buffer's. A custom type's index is reserved before its data but
 * only filled once `read()` returns, so its data cannot refer back to it: the writer rejects such
 * cycles and the reader treats a back-reference to an unfilled index as malformed.
 *
 * A container first met at nesting depth {@link DEFER_DEPTH} is written as DEFERRED (kind, and
 * for CLASS the id, taking its index) and its contents follow later as a *deferred body*: the
 * payload without tag and id, written at depth 0 again. Deferred bodies come after the root value,
 * in the order the containers were deferred (bodies may defer more containers). This keeps
 * recursion bounded for arbitrarily deep graphs (long linked lists) on both sides. Custom-type
 * data is never deferred, because `read()` needs it complete.
 *
 * VIEW kinds: {@link VIEW_KINDS} order (Int8Array = 0 … BigUint64Array = 10, DataView = 11,
 * Float16Array = 12 where the platform has it). `length` is in elements (bytes for DataView), and
 * `buffer` must be an ARRAY_BUFFER or a back-reference to one, so views keep sharing buffers.
 * Buffer contents are raw bytes in platform byte order (little-endian on every supported platform).
 */

/** First byte of every serialization. */
export const FORMAT_VERSION = 1;

/** Value tags; see the table in this module's documentation. */
export const Tag = {
  UNDEFINED: 0x00,
  NULL: 0x01,
  FALSE: 0x02,
  TRUE: 0x03,
  INT: 0x04,
  FLOAT: 0x05,
  STRING: 0x06,
  BIGINT_POS: 0x07,
  BIGINT_NEG: 0x08,
  BACKREF: 0x10,
  REF: 0x11,
  ARRAY: 0x20,
  OBJECT: 0x21,
  NULL_OBJECT: 0x22,
  MAP: 0x23,
  SET: 0x24,
  CLASS: 0x25,
  CUSTOM: 0x26,
  ARRAY_BUFFER: 0x30,
  VIEW: 0x31,
  DEFERRED: 0x40,
  HOLES: 0x41,
} as const;

/** String body markers (`h` in the layout); table references are `h = index + STR_TABLE_BASE`. */
export const Str = {
  NEW_INTERNED: 0,
  LITERAL_UTF8: 1,
  LITERAL_UTF16: 2,
  TABLE_BASE: 3,
} as const;

/**
 * Only strings up to this many UTF-16 units go into the string table (and can be written by
 * index later); longer ones are written in full each time.
 */
export const INTERN_MAX_LENGTH = 64;

/** Nesting depth at which a newly met container is deferred (see module documentation). */
export const DEFER_DEPTH = 200;

/**
 * Hard nesting limit for both sides. Only custom-type data can get past {@link DEFER_DEPTH} when
 * writing (it is never deferred, because `read()` needs its data complete).
 */
export const MAX_DEPTH = 1000;

/** Integers in [−INT_LIMIT, INT_LIMIT) are written as INT, so their zigzag stays ≤ 2^53 − 1. */
export const INT_LIMIT = 2 ** 52;

/** A binary view constructor: every typed array kind and DataView. */
export type ViewConstructor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayBufferView;

const float16 = (globalThis as { Float16Array?: ViewConstructor }).Float16Array;

/** VIEW kind byte → constructor. Append only: indices are part of the format. */
export const VIEW_KINDS: readonly ViewConstructor[] = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
  ...(float16 ? [float16] : []),
];

/** The VIEW kind of DataView, whose length is in bytes. */
export const DATA_VIEW_KIND = 11;

/** Bytes per element of each VIEW kind (1 for DataView). */
export const VIEW_ELEMENT_SIZE: readonly number[] = VIEW_KINDS.map((ctor, kind) =>
  kind === DATA_VIEW_KIND ? 1 : (ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT,
);

/** Writer-side kinds of built-in objects other than views (whose kinds are VIEW kinds, 0…). */
export const Builtin = {
  MAP: 100,
  SET: 101,
  ARRAY_BUFFER: 102,
  /** Only from another realm: this realm's Object/Array prototypes are checked before the lookup. */
  OBJECT: 103,
  ARRAY: 104,
} as const;

/** Prototype → VIEW kind (0…) or a {@link Builtin} code. Null prototype is handled separately. */
export const BUILTIN_BY_PROTOTYPE: ReadonlyMap<object, number> = new Map<object, number>([
  ...VIEW_KINDS.map((ctor, kind): [object, number] => [ctor.prototype as object, kind]),
  [Map.prototype, Builtin.MAP],
  [Set.prototype, Builtin.SET],
  [ArrayBuffer.prototype, Builtin.ARRAY_BUFFER],
]);
