import { Model } from "@lockstep/client";
import {
  SCOPE,
  type AddRequest,
  type ChangedEvent,
  type DeleteRequest,
  type PinRequest,
  type RenameRequest,
  type SpliceRequest,
  type TagRequest,
  type TextEvent,
} from "../events";
import { LIMITS } from "../limits";
import { applySplice, clampSplice, rebaseSplice, type AppliedSplice } from "../splice";
import { cleanTag, cleanTitle, isCount, isId, isRecord, timeOrUndefined } from "../validate";

/** A document: the same shape as v1's. */
export interface Doc {
  readonly id: string;
  readonly title: string;
  readonly text: string;
}

/** What v2 adds per document. Times are wall-clock ms from the editing view, null when unknown (migrated). */
export interface DocMeta {
  readonly tags: readonly string[];
  readonly pinned: boolean;
  readonly createdAt: number | null;
  readonly updatedAt: number | null;
}

/** What v2 saves with `persistSession` (format 2): documents as in format 1, plus metadata per document. */
export interface SavedV2 {
  readonly version: 2;
  readonly documents: ReadonlyArray<readonly [string, Doc]>;
  readonly metadata: ReadonlyArray<readonly [string, DocMeta]>;
}

/** What {@link DocumentEditor.parseSavedData} makes of stored data. */
export interface LoadedData {
  readonly documents: Array<[string, Doc]>;
  readonly metadata: Array<[string, DocMeta]>;
  /** The format the data was migrated from, or null if it was already format 2. */
  readonly migratedFrom: number | null;
}

const WELCOME_TEXT = `Welcome to Lockstep notes, version 2!

Everyone who opens this page's link (its ?q= session name and #pw= password) edits these documents with you, live.

New in v2: tags (type one under the title and press Enter) and pinned documents, which stay at the top. Data saved by v1 is migrated when this version first starts.`;

/**
 * Version 2 of the notes app: v1's documents plus tags, a pin and created/updated times per
 * document. It starts from whatever the previous code version saved, following the seeds'
 * SafeModel pattern: format 1 is migrated (no tags, not pinned, times unknown), format 2 is read
 * as is, and anything else (no version, a newer version, malformed data) leaves the defaults in
 * place, shows the error, and turns saving off, so this version never overwrites data it could
 * not read.
 *
 * `migratedFrom` records, for the views, that this session started from older data. It is not
 * saved: a later code version that loads v2's data starts with it null.
 */
export class DocumentEditor extends Model {
  documents = new Map<string, Doc>();
  metadata = new Map<string, DocMeta>();
  /** Revision of each document's text: how many splices it has had in this session. */
  revisions = new Map<string, number>();
  /** The latest splices of each document (at most LIMITS.history), to map late edits through. */
  history = new Map<string, AppliedSplice[]>();
  nextNumber = 1;
  /** The format of the data this session was migrated from (1), or null. */
  migratedFrom: number | null = null;
  /** Why the stored data could not be loaded, or null. */
  loadError: string | null = null;
  declare loadingPersistentData?: boolean;
  declare loadingPersistentDataErrored?: boolean;

  override init(_options: unknown, persisted?: unknown): void {
    if (persisted != null) {
      delete this.loadingPersistentDataErrored;
      this.loadingPersistentData = true;
      try {
        this.fromSavedData(persisted);
      } catch (error) {
        this.loadingPersistentDataErrored = true;
        this.loadError = error instanceof Error ? error.message : String(error);
        this.initializeDefaults();
      } finally {
        delete this.loadingPersistentData;
      }
    } else {
      this.initializeDefaults();
    }
    this.subscribe(SCOPE, "add", this.addDocument);
    this.subscribe(SCOPE, "delete", this.deleteDocument);
    this.subscribe(SCOPE, "rename", this.renameDocument);
    this.subscribe(SCOPE, "splice", this.editText);
    this.subscribe(SCOPE, "tag", this.addTag);
    this.subscribe(SCOPE, "untag", this.removeTag);
    this.subscribe(SCOPE, "pin", this.pinDocument);
  }

  initializeDefaults(): void {
    this.documents = new Map([["welcome", { id: "welcome", title: "Welcome", text: WELCOME_TEXT }]]);
    this.metadata = new Map([["welcome", { tags: ["welcome"], pinned: false, createdAt: null, updatedAt: null }]]);
  }

  fromSavedData(persisted: unknown): void {
    const loaded = DocumentEditor.parseSavedData(persisted);
    this.documents = new Map(loaded.documents);
    this.metadata = new Map(loaded.metadata);
    this.migratedFrom = loaded.migratedFrom;
  }

  toSaveData(): SavedV2 {
    return { version: 2, documents: [...this.documents], metadata: [...this.metadata] };
  }

  /**
   * Reads format 1 (migrating it) or format 2; throws, saying what is wrong, on anything else.
   * Pure, so it can be tested on its own.
   */
  static parseSavedData(persisted: unknown): LoadedData {
    if (typeof persisted !== "object" || persisted === null || Array.isArray(persisted)) throw new Error("Persistent data is not an object");
    const data = persisted as Record<string, unknown>;
    if (data.version === undefined || data.version === null) throw new Error("Missing version in persistent data");
    if (data.version !== 1 && data.version !== 2) throw new Error(`Unsupported version: ${JSON.stringify(data.version)} (this code reads versions 1 and 2)`);
    if (!Array.isArray(data.documents)) throw new Error(`Version ${data.version} data has no documents list`);
    if (data.documents.length > LIMITS.documents) throw new Error(`Too many documents: ${data.documents.length} (at most ${LIMITS.documents})`);
    const documents: Array<[string, Doc]> = data.documents.map((entry: unknown, i: number): [string, Doc] => {
      const [id, doc] = Array.isArray(entry) ? (entry as unknown[]) : [];
      if (typeof id !== "string" || id.length === 0 || id.length > LIMITS.idLength) throw new Error(`Document ${i} has no valid id`);
      if (typeof doc !== "object" || doc === null) throw new Error(`Document ${id} is not an object`);
      const { title, text } = doc as Record<string, unknown>;
      if (typeof title !== "string" || typeof text !== "string") throw new Error(`Document ${id} needs a string title and text`);
      if (text.length > LIMITS.textLength) throw new Error(`Document ${id} is longer than ${LIMITS.textLength} characters`);
      return [id, { id, title: title.slice(0, LIMITS.titleLength), text }];
    });
    const stored = new Map<string, unknown>();
    if (data.version === 2) {
      if (!Array.isArray(data.metadata)) throw new Error("Version 2 data has no metadata list");
      for (const entry of data.metadata as unknown[]) {
        if (Array.isArray(entry) && typeof entry[0] === "string") stored.set(entry[0], entry[1]);
      }
    }
    // Format 1 had no metadata: every document gets the defaults (no tags, not pinned, times unknown).
    const metadata = documents.map(([id]): [string, DocMeta] => [id, DocumentEditor.readMeta(stored.get(id))]);
    return { documents, metadata, migratedFrom: data.version === 1 ? 1 : null };
  }

  /** One document's stored metadata, each field checked (defaults where missing or invalid). */
  static readMeta(value: unknown): DocMeta {
    const meta = typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
    const tags: string[] = [];
    for (const tag of Array.isArray(meta.tags) ? meta.tags : []) {
      const clean = cleanTag(tag);
      if (clean !== undefined && !tags.includes(clean) && tags.length < LIMITS.tagsPerDocument) tags.push(clean);
    }
    return {
      tags,
      pinned: meta.pinned === true,
      createdAt: timeOrUndefined(meta.createdAt) ?? null,
      updatedAt: timeOrUndefined(meta.updatedAt) ?? null,
    };
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
    const at = timeOrUndefined(request.at) ?? null;
    this.documents.set(id, { id, title, text: "" });
    this.metadata.set(id, { tags: [], pinned: false, createdAt: at, updatedAt: at });
    this.changed({ kind: "added", docId: id, viewId: request.viewId });
    this.save();
  }

  deleteDocument(request: DeleteRequest): void {
    if (!isRecord(request) || typeof request.docId !== "string" || !this.documents.has(request.docId)) return;
    this.documents.delete(request.docId);
    this.metadata.delete(request.docId);
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
    this.touch(doc.id, request.at);
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
    this.touch(doc.id, request.at);
    const event: TextEvent = { docId: doc.id, rev: rev + 1, viewId, opId, ...splice };
    this.publish(SCOPE, "text", event);
    this.save();
  }

  addTag(request: TagRequest): void {
    if (!isRecord(request) || typeof request.docId !== "string") return;
    const meta = this.metadata.get(request.docId);
    const tag = cleanTag(request.tag);
    if (!meta || tag === undefined || meta.tags.includes(tag) || meta.tags.length >= LIMITS.tagsPerDocument) return;
    this.metadata.set(request.docId, { ...meta, tags: [...meta.tags, tag] });
    this.touch(request.docId, request.at);
    this.changed({ kind: "tags", docId: request.docId });
    this.save();
  }

  removeTag(request: TagRequest): void {
    if (!isRecord(request) || typeof request.docId !== "string") return;
    const meta = this.metadata.get(request.docId);
    if (!meta || typeof request.tag !== "string" || !meta.tags.includes(request.tag)) return;
    this.metadata.set(request.docId, { ...meta, tags: meta.tags.filter((t) => t !== request.tag) });
    this.touch(request.docId, request.at);
    this.changed({ kind: "tags", docId: request.docId });
    this.save();
  }

  pinDocument(request: PinRequest): void {
    if (!isRecord(request) || typeof request.docId !== "string" || typeof request.pinned !== "boolean") return;
    const meta = this.metadata.get(request.docId);
    if (!meta || meta.pinned === request.pinned) return;
    this.metadata.set(request.docId, { ...meta, pinned: request.pinned });
    this.changed({ kind: "pinned", docId: request.docId });
    this.save();
  }

  /** Sets a document's updatedAt to the wall-clock time its editor sent, if it sent a valid one. */
  touch(docId: string, at: unknown): void {
    const meta = this.metadata.get(docId);
    const time = timeOrUndefined(at);
    if (meta && time !== undefined) this.metadata.set(docId, { ...meta, updatedAt: time });
  }

  changed(event: ChangedEvent): void {
    this.publish(SCOPE, "changed", event);
  }

  /** The seeds' SafeModel save: never while loading, never after a failed load (it would overwrite good data). */
  save(): void {
    if (this.loadingPersistentData) return;
    if (this.loadingPersistentDataErrored) return;
    this.persistSession(() => this.toSaveData());
  }
}
DocumentEditor.register("DocumentEditor");
