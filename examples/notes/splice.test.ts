/**
 * The notes example's pure parts, in memory: splices (diff, clamp, map, rebase, chunk), TextSync
 * keeping text fields converged under concurrent edits (against a stand-in sequencer that does
 * what the model does), and v2's reading of saved data (migration, refusal of unknown formats).
 */
import type { SpliceRequest, TextEvent } from "./events";
import { LIMITS } from "./limits";
import { applySplice, chunkSplice, clampSplice, diffSplice, mapThrough, rebaseSplice, type AppliedSplice, type Splice } from "./splice";
import { testRng } from "@lockstep/test-support";
import { FakeField } from "./test-helpers";
import { TextSync } from "./text-sync";
import { DocumentEditor } from "./v2/model";

const splitsPair = (text: string, pos: number): boolean =>
  pos > 0 && pos < text.length && /[\ud800-\udbff]/.test(text[pos - 1]!) && /[\udc00-\udfff]/.test(text[pos]!);

describe("diffSplice", () => {
  test.each([
    ["insert at start", "world", "hello world", { from: 0, deleteCount: 0, insert: "hello " }],
    ["insert at end", "hello", "hello world", { from: 5, deleteCount: 0, insert: " world" }],
    ["insert in the middle", "hello world", "hello brave world", { from: 6, deleteCount: 0, insert: "brave " }],
    ["replace", "hello world", "hello there", { from: 6, deleteCount: 5, insert: "there" }],
    ["delete", "hello brave world", "hello world", { from: 6, deleteCount: 6, insert: "" }],
    ["delete all", "hello", "", { from: 0, deleteCount: 5, insert: "" }],
    ["from empty", "", "hello", { from: 0, deleteCount: 0, insert: "hello" }],
    ["emoji replaced, pair kept whole", "a😀b", "a😁b", { from: 1, deleteCount: 2, insert: "😁" }],
    ["emoji appended after emoji", "😀", "😀😀", { from: 2, deleteCount: 0, insert: "😀" }],
    ["accented letters", "café", "cafés", { from: 4, deleteCount: 0, insert: "s" }],
    ["combining mark added", "cafe", "cafe\u0301", { from: 4, deleteCount: 0, insert: "\u0301" }],
  ])("%s", (_name, before, after, expected) => {
    const splice = diffSplice(before, after);
    expect(splice).toEqual(expected);
    expect(applySplice(before, splice!)).toBe(after);
  });

  test("equal strings give no splice", () => {
    expect(diffSplice("same", "same")).toBeUndefined();
    expect(diffSplice("", "")).toBeUndefined();
  });

  test("the caret settles ambiguous edits: typing into a run of equal letters", () => {
    expect(diffSplice("aa", "aaa")).toEqual({ from: 2, deleteCount: 0, insert: "a" });
    expect(diffSplice("aa", "aaa", 1)).toEqual({ from: 0, deleteCount: 0, insert: "a" });
    expect(diffSplice("aaa", "aa", 1)).toEqual({ from: 1, deleteCount: 1, insert: "" }); // backspace after the first a
    expect(diffSplice("😀", "😀😀", 2)).toEqual({ from: 0, deleteCount: 0, insert: "😀" });
  });

  test("random edits: applying the diff gives the new text, and no boundary splits a surrogate pair", () => {
    const rng = testRng("notes diffSplice");
    const alphabet = ["a", "b", " ", "é", "😀", "😁", "\n", "中"];
    const word = (n: number): string => Array.from({ length: n }, () => rng.pick(alphabet)).join("");
    for (let i = 0; i < 2000; i++) {
      const before = word(rng.int(12));
      const after = word(rng.int(12));
      const caret = rng.bool() ? undefined : rng.int(after.length + 1);
      const splice = diffSplice(before, after, caret);
      if (before === after) {
        expect(splice).toBeUndefined();
        continue;
      }
      expect(applySplice(before, splice!)).toBe(after);
      expect(splitsPair(before, splice!.from) || splitsPair(before, splice!.from + splice!.deleteCount)).toBe(false);
    }
  });
});

describe("clampSplice", () => {
  test("positions out of range are clamped", () => {
    expect(clampSplice("abc", { from: 10, deleteCount: 5, insert: "x" })).toEqual({ from: 3, deleteCount: 0, insert: "x" });
    expect(clampSplice("abc", { from: 1, deleteCount: 99, insert: "" })).toEqual({ from: 1, deleteCount: 2, insert: "" });
    expect(clampSplice("abc", { from: -4, deleteCount: -1, insert: "x" })).toEqual({ from: 0, deleteCount: 0, insert: "x" });
    expect(clampSplice("abc", { from: Number.NaN, deleteCount: 1.7, insert: "" })).toEqual({ from: 0, deleteCount: 1, insert: "" });
  });

  test("never cuts a surrogate pair in half", () => {
    expect(clampSplice("a😀b", { from: 2, deleteCount: 0, insert: "x" })).toEqual({ from: 1, deleteCount: 0, insert: "x" });
    expect(clampSplice("a😀b", { from: 2, deleteCount: 1, insert: "x" })).toEqual({ from: 1, deleteCount: 2, insert: "x" });
    expect(clampSplice("a😀b", { from: 0, deleteCount: 2, insert: "" })).toEqual({ from: 0, deleteCount: 3, insert: "" });
  });

  test("the insert is cut to the room left, never inside a pair", () => {
    expect(clampSplice("abc", { from: 3, deleteCount: 0, insert: "defg" }, 5)).toEqual({ from: 3, deleteCount: 0, insert: "de" });
    expect(clampSplice("abc", { from: 0, deleteCount: 3, insert: "defgh" }, 4)).toEqual({ from: 0, deleteCount: 3, insert: "defg" });
    expect(clampSplice("abc", { from: 3, deleteCount: 0, insert: "d😀" }, 5)).toEqual({ from: 3, deleteCount: 0, insert: "d" });
    expect(clampSplice("abcde", { from: 0, deleteCount: 0, insert: "x" }, 5)).toEqual({ from: 0, deleteCount: 0, insert: "" });
  });
});

describe("mapThrough and rebaseSplice", () => {
  const insert2At3: Splice = { from: 3, deleteCount: 0, insert: "XY" };
  const replace2At3: Splice = { from: 3, deleteCount: 2, insert: "Z" };

  test("positions before stay, after shift, at an insert follow the bias", () => {
    expect([2, 3, 4].map((p) => mapThrough(p, insert2At3, "before"))).toEqual([2, 3, 6]);
    expect([2, 3, 4].map((p) => mapThrough(p, insert2At3, "after"))).toEqual([2, 5, 6]);
    expect([3, 4, 5, 6].map((p) => mapThrough(p, replace2At3, "before"))).toEqual([3, 3, 4, 5]);
    expect([3, 4, 5, 6].map((p) => mapThrough(p, replace2At3, "after"))).toEqual([4, 4, 4, 5]);
  });

  const applied = (rev: number, viewId: string, s: Splice): AppliedSplice => ({ rev, viewId, from: s.from, deleteCount: s.deleteCount, insertLength: s.insert.length });

  test("a splice made before someone else's is moved past it; the author's own later splices are skipped", () => {
    // "hello world": A typed "XY" at 0 (rev 1); B, having seen rev 0, appends "!" at 11.
    const history = [applied(1, "A", { from: 0, deleteCount: 0, insert: "XY" })];
    expect(rebaseSplice({ from: 11, deleteCount: 0, insert: "!" }, history, 0, "B")).toEqual({ from: 13, deleteCount: 0, insert: "!" });
    expect(rebaseSplice({ from: 11, deleteCount: 0, insert: "!" }, history, 1, "B")).toEqual({ from: 11, deleteCount: 0, insert: "!" }); // B had seen it
    expect(rebaseSplice({ from: 2, deleteCount: 0, insert: "!" }, history, 0, "A")).toEqual({ from: 2, deleteCount: 0, insert: "!" }); // A's own
  });

  test("concurrent inserts at one place keep reflector order; a deletion never swallows a concurrent insert", () => {
    const history = [applied(1, "A", { from: 5, deleteCount: 0, insert: "AAA" })];
    expect(rebaseSplice({ from: 5, deleteCount: 0, insert: "B" }, history, 0, "B")).toEqual({ from: 8, deleteCount: 0, insert: "B" });
    // B deletes [2, 5) of the text it saw while A inserted at one edge of that range: A's text stays.
    const atEdge = [applied(1, "A", { from: 2, deleteCount: 0, insert: "AAA" })];
    expect(rebaseSplice({ from: 2, deleteCount: 3, insert: "" }, atEdge, 0, "B")).toEqual({ from: 5, deleteCount: 3, insert: "" });
    const atEnd = [applied(1, "A", { from: 5, deleteCount: 0, insert: "AAA" })];
    expect(rebaseSplice({ from: 2, deleteCount: 3, insert: "" }, atEnd, 0, "B")).toEqual({ from: 2, deleteCount: 3, insert: "" });
  });
});

describe("chunkSplice", () => {
  test("long inserts are split into consecutive splices that rebuild the same text", () => {
    const insert = "ab😀cd😀ef".repeat(3);
    const parts = chunkSplice({ from: 1, deleteCount: 2, insert }, 4);
    expect(parts.every((p) => p.insert.length <= 4)).toBe(true);
    expect(parts.slice(1).every((p) => p.deleteCount === 0)).toBe(true);
    expect(parts.map((p) => p.insert).join("")).toBe(insert);
    expect(parts.some((p) => /^[\udc00-\udfff]/.test(p.insert))).toBe(false);
    expect(parts.reduce((text, p) => applySplice(text, p), "xyzw")).toBe(applySplice("xyzw", { from: 1, deleteCount: 2, insert }));
    expect(chunkSplice({ from: 0, deleteCount: 4, insert: "" }, 4)).toEqual([{ from: 0, deleteCount: 4, insert: "" }]);
  });
});

/** What the model does with splice requests, without a session: rebase, clamp, apply, echo. */
class Sequencer {
  text: string;
  rev = 0;
  readonly history: AppliedSplice[] = [];
  readonly queue: SpliceRequest[] = [];
  constructor(text: string) {
    this.text = text;
  }
  next(): TextEvent | undefined {
    const request = this.queue.shift();
    if (!request) return undefined;
    const splice = clampSplice(this.text, rebaseSplice(request, this.history, Math.min(request.base, this.rev), request.viewId), LIMITS.textLength);
    this.text = applySplice(this.text, splice);
    this.rev++;
    this.history.push({ rev: this.rev, viewId: request.viewId, from: splice.from, deleteCount: splice.deleteCount, insertLength: splice.insert.length });
    if (this.history.length > LIMITS.history) this.history.shift();
    return { docId: request.docId, rev: this.rev, viewId: request.viewId, opId: request.opId, ...splice };
  }
}

/** A user's field and TextSync; events from the sequencer wait in `inbox` until delivered. */
function user(seq: Sequencer, viewId: string): { field: FakeField; sync: TextSync; inbox: TextEvent[] } {
  const field = new FakeField();
  const sync = new TextSync({ field, viewId, read: () => ({ text: seq.text, rev: seq.rev }), send: (r) => seq.queue.push(r), now: () => 1 });
  sync.attach("doc");
  return { field, sync, inbox: [] };
}

describe("TextSync", () => {
  test("two users typing at both ends at once: both edits land where they were typed, fields converge", () => {
    const seq = new Sequencer("hello world");
    const [a, b] = [user(seq, "A"), user(seq, "B")];
    for (const ch of "Alpha ") {
      const pos = a.field.selectionEnd;
      a.field.type(pos, pos, ch);
      a.sync.input();
    }
    for (const ch of " Beta") {
      b.field.type(b.field.value.length, b.field.value.length, ch);
      b.sync.input();
    }
    for (let ev = seq.next(); ev; ev = seq.next()) for (const u of [a, b]) u.sync.received(ev);
    expect(seq.text).toBe("Alpha hello world Beta");
    expect([a.field.value, b.field.value]).toEqual([seq.text, seq.text]);
    expect(a.sync.settled && b.sync.settled).toBe(true);
    expect(a.field.selectionEnd).toBe(6); // A's caret stayed after A's text
    expect(b.field.selectionEnd).toBe(seq.text.length);
  });

  test("a remote edit before the caret moves the caret and selection with the text", () => {
    const seq = new Sequencer("one two three");
    const [a, b] = [user(seq, "A"), user(seq, "B")];
    b.field.setSelectionRange(4, 7); // "two" selected
    a.field.type(0, 3, "ONE!!");
    a.sync.input();
    const ev = seq.next()!;
    a.sync.received(ev);
    b.sync.received(ev);
    expect(b.field.value).toBe("ONE!! two three");
    expect(b.field.value.slice(b.field.selectionStart, b.field.selectionEnd)).toBe("two");
  });

  test("random concurrent typing, deleting and pasting by three users with random delivery always converges", () => {
    const rng = testRng("notes TextSync convergence");
    for (let round = 0; round < 30; round++) {
      const seq = new Sequencer("The quick brown fox 😀 jumps over the lazy dog.");
      const users = ["A", "B", "C"].map((id) => user(seq, id));
      for (let step = 0; step < 300; step++) {
        const u = rng.pick(users);
        const r = rng.next();
        if (r < 0.4) {
          // type, delete or paste at a random place of this user's field
          const len = u.field.value.length;
          let start = rng.int(len + 1);
          let end = Math.min(len, start + (rng.bool(0.7) ? 0 : rng.int(5)));
          if (splitsPair(u.field.value, start)) start--;
          if (splitsPair(u.field.value, end)) end++;
          const text = rng.bool(0.2) ? "" : rng.pick(["x", "yz", "😀", " ", "pasted text "]);
          u.field.type(start, end, text);
          u.sync.input();
        } else if (r < 0.7) {
          const ev = seq.next();
          if (ev) for (const v of users) v.inbox.push(ev);
        } else {
          const ev = u.inbox.shift();
          if (ev) u.sync.received(ev);
        }
      }
      // Quiet: everything is sequenced and delivered.
      for (let ev = seq.next(); ev; ev = seq.next()) for (const v of users) v.inbox.push(ev);
      for (const v of users) for (let ev = v.inbox.shift(); ev; ev = v.inbox.shift()) v.sync.received(ev);
      for (const v of users) {
        expect(v.field.value).toBe(seq.text);
        expect(v.sync.settled).toBe(true);
      }
    }
  });

  test("a paste longer than one event is sent in chunks and arrives whole", () => {
    const seq = new Sequencer("");
    const a = user(seq, "A");
    const paste = "😀".repeat(LIMITS.insertChunk); // twice the chunk in UTF-16 units
    a.field.type(0, 0, paste);
    a.sync.input();
    expect(seq.queue.length).toBe(2);
    for (let ev = seq.next(); ev; ev = seq.next()) a.sync.received(ev);
    expect(seq.text).toBe(paste);
    expect(a.field.value).toBe(paste);
  });

  test("echoes of splices sent before switching documents are ignored; the field shows the new document", () => {
    const seq = new Sequencer("first");
    const a = user(seq, "A");
    a.field.type(5, 5, "!");
    a.sync.input();
    a.sync.attach("other"); // read() answers for every docId here: same text
    const ev = seq.next()!;
    a.sync.received({ ...ev, docId: "doc" });
    expect(a.field.value).toBe("first");
    expect(a.sync.pending).toBe(0);
  });
});

describe("v2 DocumentEditor.parseSavedData (the SafeModel part)", () => {
  const v1Data = {
    version: 1,
    documents: [
      ["welcome", { id: "welcome", title: "Welcome", text: "hello" }],
      ["doc-1", { id: "doc-1", title: "Second", text: "😀 two" }],
    ],
  };

  test("format 1 is migrated: every document gets no tags and default metadata", () => {
    const loaded = DocumentEditor.parseSavedData(v1Data);
    expect(loaded.migratedFrom).toBe(1);
    expect(loaded.documents).toEqual(v1Data.documents);
    expect(loaded.metadata).toEqual([
      ["welcome", { tags: [], pinned: false, createdAt: null, updatedAt: null }],
      ["doc-1", { tags: [], pinned: false, createdAt: null, updatedAt: null }],
    ]);
  });

  test("format 2 is read as is (metadata checked field by field)", () => {
    const loaded = DocumentEditor.parseSavedData({
      version: 2,
      documents: v1Data.documents,
      metadata: [
        ["welcome", { tags: ["draft", "Draft", "", 7, "x".repeat(LIMITS.tagLength + 1)], pinned: true, createdAt: 1700000000000, updatedAt: "soon" }],
        ["gone", { tags: ["orphan"] }],
      ],
    });
    expect(loaded.migratedFrom).toBeNull();
    expect(loaded.metadata).toEqual([
      ["welcome", { tags: ["draft"], pinned: true, createdAt: 1700000000000, updatedAt: null }],
      ["doc-1", { tags: [], pinned: false, createdAt: null, updatedAt: null }],
    ]);
  });

  test.each([
    ["no version", { documents: [] }, /Missing version/],
    ["a newer version", { version: 99, documents: [] }, /Unsupported version: 99/],
    ["a version that is not a number", { version: "2", documents: [] }, /Unsupported version: "2"/],
    ["not an object", "v1", /not an object/],
    ["no documents", { version: 1 }, /no documents list/],
    ["a document without text", { version: 1, documents: [["d", { title: "t" }]] }, /Document d needs a string title and text/],
    ["a document without an id", { version: 1, documents: [[42, { title: "t", text: "" }]] }, /Document 0 has no valid id/],
    ["a document that is too long", { version: 1, documents: [["d", { title: "t", text: "x".repeat(LIMITS.textLength + 1) }]] }, /longer than/],
    ["format 2 without metadata", { version: 2, documents: [] }, /no metadata list/],
  ])("%s is refused with a clear error", (_name, data, message) => {
    expect(() => DocumentEditor.parseSavedData(data)).toThrow(message);
  });
});
