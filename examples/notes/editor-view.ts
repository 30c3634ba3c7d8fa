/**
 * The browser view shared by both code versions: the document list, a title field and the text
 * body. v2 extends it with tags, pins and notices (v2/view.ts). Views read the model and publish
 * requests; they never write model state.
 *
 * Lockstep rebuilds the root view after a rejoin (network drop, sleeping tab): `detach()` runs on
 * the old one, then a new one is constructed. So the constructor replaces the contents of `#app`
 * (keeping the selected document, focus and caret of the view it replaces) and every DOM listener
 * is registered with one AbortSignal that `detach()` aborts.
 */
import { View, type Model } from "@lockstep/client";
import { SCOPE, type AddRequest, type ChangedEvent, type DeleteRequest, type RenameRequest, type SpliceRequest, type TextEvent } from "./events";
import { LIMITS } from "./limits";
import { TextSync } from "./text-sync";

/** A document as both versions keep it. */
export interface NoteDoc {
  readonly id: string;
  readonly title: string;
  readonly text: string;
}

/** What the view reads of a notes model (v1's and v2's DocumentEditor both have it). */
export interface NotesModel extends Model {
  readonly documents: ReadonlyMap<string, NoteDoc>;
  revisionOf(docId: string): number;
}

/** Makes an element: `h("button", { id: "new-doc" }, "New")`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<Record<string, string>> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value !== undefined) el.setAttribute(key, value);
  }
  el.append(...children);
  return el;
}

/** Words in a text (for the status line). */
export function wordCount(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

/** The shared editor view; see the module comment. */
export class EditorView<M extends NotesModel = NotesModel> extends View {
  protected readonly model: M;
  protected readonly app: HTMLElement;
  protected readonly docs: HTMLUListElement;
  protected readonly notices: HTMLElement;
  protected readonly extras: HTMLElement;
  protected readonly titleInput: HTMLInputElement;
  protected readonly textArea: HTMLTextAreaElement;
  protected readonly status: HTMLElement;
  /** Aborted by detach(): every DOM listener is registered with it. */
  protected readonly signal: AbortSignal;
  readonly #abort = new AbortController();
  readonly #sync: TextSync;
  #selected: string | undefined;

  constructor(model: M) {
    super(model);
    this.model = model;
    this.signal = this.#abort.signal;
    const app = document.getElementById("app");
    if (!app) throw new Error('notes: the page needs an element with id="app"');
    this.app = app;

    // What the view being replaced (if any) showed, so a rebuild is invisible to the user.
    const previous = app.querySelector<HTMLTextAreaElement>("#text");
    const hadFocus = previous !== null && document.activeElement === previous;
    const selection = previous ? [previous.selectionStart, previous.selectionEnd] : [0, 0];

    this.docs = h("ul", { id: "docs" });
    const newDoc = h("button", { id: "new-doc", type: "button" }, "+ New document");
    const del = h("button", { id: "delete-doc", type: "button", title: "Delete this document for everyone" }, "Delete");
    this.titleInput = h("input", { id: "title", type: "text", placeholder: "Title", maxlength: String(LIMITS.titleLength), autocomplete: "off" });
    this.textArea = h("textarea", { id: "text", maxlength: String(LIMITS.textLength), spellcheck: "false", placeholder: "Type here…" });
    this.notices = h("div", { id: "notices" });
    this.extras = h("div", { id: "extras" });
    this.status = h("footer", { id: "status" });
    app.replaceChildren(
      h("aside", {}, newDoc, this.docs),
      h("section", { id: "editor" }, this.notices, h("header", {}, this.titleInput, del), this.extras, this.textArea, this.status),
    );

    this.#sync = new TextSync({
      field: this.textArea,
      viewId: this.viewId,
      read: (docId) => {
        const doc = this.model.documents.get(docId);
        return doc && { text: doc.text, rev: this.model.revisionOf(docId) };
      },
      send: (request: SpliceRequest) => this.publish(SCOPE, "splice", request),
    });

    const signal = this.signal;
    newDoc.addEventListener("click", () => this.publish(SCOPE, "add", { viewId: this.viewId, at: Date.now() } satisfies AddRequest), { signal });
    del.addEventListener(
      "click",
      () => {
        if (this.#selected !== undefined) this.publish(SCOPE, "delete", { docId: this.#selected } satisfies DeleteRequest);
      },
      { signal },
    );
    this.docs.addEventListener(
      "click",
      (event) => {
        const item = (event.target as Element).closest<HTMLElement>(".doc");
        if (item?.dataset.docId !== undefined && !(event.target as Element).closest("button")) this.select(item.dataset.docId);
      },
      { signal },
    );
    this.titleInput.addEventListener(
      "input",
      () => {
        if (this.#selected !== undefined) this.publish(SCOPE, "rename", { docId: this.#selected, title: this.titleInput.value, at: Date.now() } satisfies RenameRequest);
      },
      { signal },
    );
    // While typing a title, others' renames wait; on leaving the field it shows the shared title.
    this.titleInput.addEventListener("blur", () => this.showTitle(), { signal });
    this.textArea.addEventListener(
      "input",
      () => {
        this.#sync.input();
        this.showStatus();
      },
      { signal },
    );

    this.subscribe(SCOPE, "text", this.onText);
    this.subscribe(SCOPE, "changed", this.onChanged);

    const keep = app.dataset.selected;
    this.select(keep !== undefined && model.documents.has(keep) ? keep : this.orderedDocs()[0]?.id);
    if (hadFocus) {
      this.textArea.focus();
      this.textArea.setSelectionRange(selection[0] ?? 0, selection[1] ?? 0);
    } else if (previous === null && (document.activeElement === null || document.activeElement === document.body)) {
      this.textArea.focus(); // a fresh page: ready to type
    }
  }

  /** The selected document's id, if any. */
  get selected(): string | undefined {
    return this.#selected;
  }

  /** Documents in list order (v2 puts pinned ones first). */
  protected orderedDocs(): NoteDoc[] {
    return [...this.model.documents.values()];
  }

  /** Shows a document in the editor (this view only: selection is not shared). */
  select(docId: string | undefined): void {
    this.#selected = docId;
    if (docId === undefined) delete this.app.dataset.selected;
    else this.app.dataset.selected = docId;
    this.#sync.attach(docId);
    this.textArea.disabled = docId === undefined;
    this.titleInput.disabled = docId === undefined;
    this.showTitle(true);
    this.renderList();
    this.renderExtras();
    this.showStatus();
  }

  onText(event: TextEvent): void {
    if (event.docId !== this.#selected) return;
    this.#sync.received(event);
    this.showStatus();
  }

  onChanged(event: ChangedEvent): void {
    if (event.kind === "added" && event.viewId === this.viewId) {
      this.select(event.docId);
      this.titleInput.focus();
      this.titleInput.select();
      return;
    }
    if (this.#selected !== undefined && !this.model.documents.has(this.#selected)) {
      this.select(this.orderedDocs()[0]?.id); // deleted by someone
      return;
    }
    if (event.docId === this.#selected && event.kind === "renamed") this.showTitle();
    this.renderList();
    this.renderExtras();
  }

  /** Rebuilds the document list. */
  protected renderList(): void {
    const items = this.orderedDocs().map((doc) => {
      const li = h("li", { class: doc.id === this.#selected ? "doc selected" : "doc", "data-doc-id": doc.id }, h("span", { class: "doc-title" }, doc.title || "Untitled"));
      this.renderListItem(li, doc);
      return li;
    });
    this.docs.replaceChildren(...items);
  }

  /** Hook: adds to one item of the document list (v2: tags, pin). */
  protected renderListItem(_li: HTMLLIElement, _doc: NoteDoc): void {}

  /** Hook: renders `this.extras` and `this.notices` for the selected document (v2: tags, notices). */
  protected renderExtras(): void {}

  /** Shows the shared title, unless the user is typing one (`force`: even then). */
  protected showTitle(force = false): void {
    if (!force && document.activeElement === this.titleInput) return;
    const doc = this.#selected === undefined ? undefined : this.model.documents.get(this.#selected);
    this.titleInput.value = doc?.title ?? "";
  }

  protected showStatus(): void {
    const text = this.textArea.value;
    this.status.textContent =
      this.#selected === undefined ? "No document: create one with + New document." : `${wordCount(text)} words · ${text.length} characters · saved for everyone a second after the last change`;
  }

  override detach(): void {
    this.#abort.abort();
    this.textArea.disabled = true;
    super.detach();
  }
}
