import { Model } from "@lockstep/client";
import { SCOPE, type AddRequest, type ChangedEvent, type DeleteRequest, type RenameRequest, type SpliceRequest, type TextEvent } from "../events";
import { LIMITS } from "../limits";
import { applySplice, clampSplice, rebaseSplice, type AppliedSplice } from "../splice";
import { cleanTitle, isCount, isId, isRecord } from "../validate";

/** A document: what v1 keeps and saves. */
export interface Doc {
  readonly id: string;
  readonly title: string;
  readonly text: string;
}

/** What v1 saves with `persistSession` (format 1): the documents Map as entries. */
export interface SavedV1 {
  readonly version: 1;
  readonly documents: ReadonlyArray<readonly [string, Doc]>;
}

const WELCOME_TEXT = `Welcome to Lockstep notes!

Everyone who opens this page's link (its ?q= session name and #pw= password) edits these documents with you, live. Open the link in a second window and type in both.

What you write is saved a second after you stop typing, and it survives a new version of the code: open the same link under /notes/v2/ to see it migrated.`;

/**
 * Version 1 of the notes app: a list of documents, each a title and a text body that several
 * users edit together. The seeds' DocumentEditor: documents in a Map, saved with
 * `persistSession` after every significant change (add, delete, rename, and text edits, which come
 * in bursts: Lockstep delays a save by `persistDelay` and the latest call wins, so one save
 * follows a burst).
 *
 * Text edits are splices (see ../splice.ts), validated, mapped through the edits the sender had
 * not yet seen, clamped and applied in the reflector's order, so every replica has the same text.
 */
export class DocumentEditor extends Model {
  /** The documents, in creation order. */
  documents = new Map<string, Doc>();
  /** Revision of each document's text: how many splices it has had in this session. */
  revisions = new Map<string, number>();
  /** The latest splices of each document (at most LIMITS.history), to map late edits through. */
  history = new Map<string, AppliedSplice[]>();
  /** Next number for a new document id (`doc-N`). */
  nextNumber = 1;
  /** Stored data this code could not read (a format it does not know): it is kept, never saved over. */
  readOnlyPersistence = false;

  override init(_options: unknown, persisted?: unknown): void {
    if (persisted == null) {
      this.documents.set("welcome", { id: "welcome", title: "Welcome", text: WELCOME_TEXT });
    } else if (!this.load(persisted)) {
      this.readOnlyPersistence = true;
      this.documents.set("welcome", { id: "welcome", title: "Welcome", text: WELCOME_TEXT });
    }
    this.subscribe(SCOPE, "add", this.addDocument);
    this.subscribe(SCOPE, "delete", this.deleteDocument);
    this.subscribe(SCOPE, "rename", this.renameDocument);
    this.subscribe(SCOPE, "splice", this.editText);
  }

  /** Reads format 1; anything else is left alone (and false returned). */
  load(persisted: unknown): boolean {
    if (!isRecord(persisted) || persisted.version !== 1 || !Array.isArray(persisted.documents)) return false;
    for (const entry of persisted.documents.slice(0, LIMITS.documents)) {
      if (!Array.isArray(entry) || !isId(entry[0]) || !isRecord(entry[1])) continue;
      const id = entry[0];
      const text = typeof entry[1].text === "string" ? entry[1].text.slice(0, LIMITS.textLength) : "";
      this.documents.set(id, { id, title: cleanTitle(entry[1].title) ?? "Untitled", text });
    }
    return true;
  }

  /** The text revision of a document (views send it as the `base` of their splices). */
  revisionOf(docId: string): number {
    return this.revisions.get(docId) ?? 0;
  }

  addDocument(request: AddRequest): void {
    if (!isRecord(request) || !isId(request.viewId) || this.documents.size >= LIMITS.documents) return;
    let id = `doc-${this.nextNumber++}`;
    while (this.documents.has(id)) id = `doc-${this.nextNumber++}`;
    const title = (request.title === undefined ? undefined : cleanTitle(request.title)) || "Untitled";
    this.documents.set(id, { id, title, text: "" });
    this.changed({ kind: "added", docId: id, viewId: request.viewId });
    this.save();
  }

  deleteDocument(request: DeleteRequest): void {
    if (!isRecord(request) || typeof request.docId !== "string" || !this.documents.has(request.docId)) return;
    this.documents.delete(request.docId);
    this.revisions.delete(request.docId);
    this.history.delete(request.docId);
    this.changed({ kind: "deleted", docId: request.docId });
    this.save();
  }

  renameDocument(request: RenameRequest): void {
    if (!isRecord(request) || typeof request.docId !== "string") return;
    const doc = this.documents.get(request.docId);
    const title = cleanTitle(request.title);
    if (!doc || title === undefined || title === doc.title) return;
    this.documents.set(doc.id, { ...doc, title });
    this.changed({ kind: "renamed", docId: doc.id });
    this.save();
  }

  /** A splice from a view: validated, mapped through what its sender had not seen, clamped, applied. */
  editText(request: SpliceRequest): void {
    if (!isRecord(request) || typeof request.docId !== "string") return;
    const doc = this.documents.get(request.docId);
    const { from, deleteCount, insert, base, viewId, opId } = request;
    if (!doc || !isCount(from) || !isCount(deleteCount) || !isCount(base) || !isId(viewId) || !isId(opId)) return;
    if (typeof insert !== "string" || insert.length > LIMITS.textLength) return;
    const rev = this.revisionOf(doc.id);
    const history = this.history.get(doc.id) ?? [];
    const splice = clampSplice(doc.text, rebaseSplice({ from, deleteCount, insert }, history, Math.min(base, rev), viewId), LIMITS.textLength);
    // Even an edit that changes nothing makes a revision: its sender waits for the echo.
    this.documents.set(doc.id, { ...doc, text: applySplice(doc.text, splice) });
    this.revisions.set(doc.id, rev + 1);
    history.push({ rev: rev + 1, viewId, from: splice.from, deleteCount: splice.deleteCount, insertLength: splice.insert.length });
    if (history.length > LIMITS.history) history.shift();
    this.history.set(doc.id, history);
    const event: TextEvent = { docId: doc.id, rev: rev + 1, viewId, opId, ...splice };
    this.publish(SCOPE, "text", event);
    this.save();
  }

  changed(event: ChangedEvent): void {
    this.publish(SCOPE, "changed", event);
  }

  /** Saves the documents (Lockstep delays it by `persistDelay`; the latest call wins). */
  save(): void {
    if (this.readOnlyPersistence) return;
    this.persistSession(() => ({ version: 1, documents: [...this.documents] }));
  }
}
DocumentEditor.register("DocumentEditor");
