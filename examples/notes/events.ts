/**
 * The events of the notes example: what views publish (requests, validated by the models before
 * anything changes) and what models publish back (facts, for views to render). Everything goes
 * through the `"notes"` scope.
 */
import type { Splice } from "./splice";

/** The scope of every notes event. */
export const SCOPE = "notes";

/** `notes/add`: create a document; the model answers with `changed` `{ kind: "added", viewId }`. */
export interface AddRequest {
  readonly viewId: string;
  readonly title?: string;
  /** Wall-clock time of the request (views may read the clock, models may not): v2's createdAt. */
  readonly at?: number;
}

/** `notes/delete`. */
export interface DeleteRequest {
  readonly docId: string;
}

/** `notes/rename`. */
export interface RenameRequest {
  readonly docId: string;
  readonly title: string;
  readonly at?: number;
}

/**
 * `notes/splice`: an edit of a document's text, computed by the sender's view against the text
 * it showed, which included every edit up to revision `base` (plus its own edits in flight).
 */
export interface SpliceRequest extends Splice {
  readonly docId: string;
  readonly base: number;
  readonly viewId: string;
  /** Sender-chosen id, echoed in the resulting {@link TextEvent}. */
  readonly opId: string;
  readonly at?: number;
}

/** `notes/text` (model → views): a splice as applied, making revision `rev` of the document. */
export interface TextEvent extends Splice {
  readonly docId: string;
  readonly rev: number;
  readonly viewId: string;
  readonly opId: string;
}

/** `notes/changed` (model → views): the list of documents or a document's title, tags or pin changed. */
export interface ChangedEvent {
  readonly kind: "added" | "deleted" | "renamed" | "tags" | "pinned";
  readonly docId: string;
  /** Who asked, when the view needs to know (`added`: the asker selects the new document). */
  readonly viewId?: string;
}

/** `notes/tag` and `notes/untag` (v2). */
export interface TagRequest {
  readonly docId: string;
  readonly tag: string;
  readonly at?: number;
}

/** `notes/pin` (v2). */
export interface PinRequest {
  readonly docId: string;
  readonly pinned: boolean;
}
