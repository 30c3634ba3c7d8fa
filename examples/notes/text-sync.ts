/**
 * Keeps one text field (a textarea, or a stand-in in tests) in step with a document of the
 * replicated model, for one view. Local typing becomes splices sent to the model; the model's
 * applied splices come back as `text` events and are applied to the field, keeping the caret and
 * selection where the user left them. No DOM access: the field is an interface.
 *
 * The field always shows: the model's text up to the last revision this view took in, plus this
 * view's own splices still in flight. A remote splice is mapped past those before it is applied;
 * whenever nothing of this view's is in flight, the field is compared with the model's text and
 * corrected, so the field always converges on what every replica has.
 */
import type { SpliceRequest, TextEvent } from "./events";
import { LIMITS } from "./limits";
import { chunkSplice, clampSplice, diffSplice, mapThrough, type Splice } from "./splice";

/** What TextSync needs of a text field (an `HTMLTextAreaElement` has all of it). */
export interface TextField {
  value: string;
  readonly selectionStart: number | null;
  readonly selectionEnd: number | null;
  setSelectionRange(start: number, end: number): void;
  scrollTop?: number;
}

/** A document as the model has it now. */
export interface DocumentText {
  readonly text: string;
  readonly rev: number;
}

/** Options of {@link TextSync}. */
export interface TextSyncOptions {
  readonly field: TextField;
  /** This view's id (the model echoes it in the `text` events of this view's splices). */
  readonly viewId: string;
  /** Reads a document from the model (read only), or undefined if it does not exist. */
  readonly read: (docId: string) => DocumentText | undefined;
  /** Publishes a splice request to the model. */
  readonly send: (request: SpliceRequest) => void;
  /** Wall-clock now, sent along as the edit time (default `Date.now`). */
  readonly now?: () => number;
}

/** See the module comment. */
export class TextSync {
  readonly #options: TextSyncOptions;
  /** Prefix of op ids, different for every TextSync, so a rebuilt view never mistakes an old echo for its own. */
  readonly #tag = Math.floor(Math.random() * 36 ** 6).toString(36);
  #nextOp = 1;
  #docId: string | undefined;
  /** The last model revision the field took in. */
  #rev = 0;
  /** What the field showed after the last input or update: the next input is diffed against it. */
  #shadow = "";
  /** This view's splices sent but not yet echoed, by op id, in sending order. */
  readonly #pending = new Map<string, Splice>();

  constructor(options: TextSyncOptions) {
    this.#options = options;
  }

  /** The document the field shows, if any. */
  get docId(): string | undefined {
    return this.#docId;
  }

  /** How many of this view's splices are in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Whether the field shows exactly the model's text, with nothing in flight. */
  get settled(): boolean {
    const doc = this.#docId === undefined ? undefined : this.#options.read(this.#docId);
    return this.#pending.size === 0 && (doc === undefined || (doc.text === this.#options.field.value && doc.rev === this.#rev));
  }

  /** Shows document `docId` (or nothing) in the field. */
  attach(docId: string | undefined): void {
    this.#docId = docId;
    this.#pending.clear();
    const doc = docId === undefined ? undefined : this.#options.read(docId);
    this.#options.field.value = doc?.text ?? "";
    this.#shadow = this.#options.field.value;
    this.#rev = doc?.rev ?? 0;
  }

  /** Call after the user changed the field: sends what changed as splices. */
  input(): void {
    const { field } = this.#options;
    const docId = this.#docId;
    if (docId === undefined) return;
    const splice = diffSplice(this.#shadow, field.value, field.selectionEnd ?? undefined);
    this.#shadow = field.value;
    if (!splice) return;
    const at = (this.#options.now ?? Date.now)();
    for (const part of chunkSplice(splice, LIMITS.insertChunk)) {
      const opId = `${this.#tag}.${this.#nextOp++}`;
      this.#pending.set(opId, part);
      this.#options.send({ docId, base: this.#rev, viewId: this.#options.viewId, opId, at, ...part });
    }
  }

  /** Call with every `text` event of the model. */
  received(event: TextEvent): void {
    if (event.docId !== this.#docId) return;
    const mine = event.viewId === this.#options.viewId && this.#pending.delete(event.opId);
    if (event.rev > this.#rev) {
      // An own splice is in the field already; a remote one is not, and is mapped past ours in flight.
      if (!mine) this.#applyRemote(event);
      this.#rev = event.rev;
    }
    // Older revisions were taken in by an earlier correction. With nothing in flight, correct now.
    if (this.#pending.size === 0) this.#reconcile();
  }

  #applyRemote(event: TextEvent): void {
    let from = event.from;
    let end = event.from + event.deleteCount;
    for (const own of this.#pending.values()) {
      // The model put the remote splice before ours: an insert at the same place stays before ours,
      // a deletion stays off text we inserted at its edges.
      if (from === end) {
        from = end = mapThrough(from, own, "before");
      } else {
        from = mapThrough(from, own, "after");
        end = Math.max(from, mapThrough(end, own, "before"));
      }
    }
    const value = this.#options.field.value;
    this.#replace(clampSplice(value, { from, deleteCount: end - from, insert: event.insert }));
  }

  /** Makes the field show the model's text, changing only what differs. */
  #reconcile(): void {
    if (this.#docId === undefined) return;
    const doc = this.#options.read(this.#docId);
    if (!doc) return;
    const splice = diffSplice(this.#options.field.value, doc.text);
    if (splice) this.#replace(splice);
    this.#rev = doc.rev;
  }

  /** Applies a splice to the field, keeping selection and scroll where they were relative to the text. */
  #replace(splice: Splice): void {
    const { field } = this.#options;
    const start = field.selectionStart ?? 0;
    const end = field.selectionEnd ?? start;
    const scrollTop = field.scrollTop;
    field.value = field.value.slice(0, splice.from) + splice.insert + field.value.slice(splice.from + splice.deleteCount);
    this.#shadow = field.value;
    const newStart = mapThrough(start, splice, "before");
    field.setSelectionRange(newStart, Math.max(newStart, mapThrough(end, splice, "before")));
    if (scrollTop !== undefined) field.scrollTop = scrollTop;
  }
}
