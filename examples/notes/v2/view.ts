/**
 * v2's view: the shared editor view plus tags (`#tags`, `#tag-input`), a pin, tags and pins in the
 * document list, and notices: `#migrated` when this session started from v1's data, `#load-error`
 * when the stored data could not be read (and is therefore not saved over).
 */
import { SCOPE, type PinRequest, type TagRequest } from "../events";
import { EditorView, h, type NoteDoc } from "../editor-view";
import { LIMITS } from "../limits";
import type { DocumentEditor } from "./model";

export class NotesView extends EditorView<DocumentEditor> {
  constructor(model: DocumentEditor) {
    super(model);
    if (model.loadError !== null) console.warn(`[notes] persisted data not loaded, and not saved over: ${model.loadError}`);
  }

  protected override orderedDocs(): NoteDoc[] {
    const docs = [...this.model.documents.values()];
    return [...docs.filter((d) => this.model.metadata.get(d.id)?.pinned), ...docs.filter((d) => !this.model.metadata.get(d.id)?.pinned)];
  }

  protected override renderListItem(li: HTMLLIElement, doc: NoteDoc): void {
    const meta = this.model.metadata.get(doc.id);
    if (!meta) return;
    if (meta.pinned) li.prepend(h("span", { class: "pin", title: "pinned" }, "★ "));
    if (meta.tags.length > 0) li.append(h("span", { class: "doc-tags" }, meta.tags.map((t) => `#${t}`).join(" ")));
  }

  // Called from the base constructor too, before this class's own fields exist: it keeps no element
  // fields, and builds its controls inside `extras` the first time.
  protected override renderExtras(): void {
    this.renderNotices();
    let tags = this.extras.querySelector<HTMLElement>("#tags");
    let input = this.extras.querySelector<HTMLInputElement>("#tag-input");
    let pin = this.extras.querySelector<HTMLInputElement>("#pin");
    if (!tags || !input || !pin) {
      tags = h("span", { id: "tags" });
      input = h("input", { id: "tag-input", type: "text", placeholder: "add tag ↵", maxlength: String(LIMITS.tagLength), autocomplete: "off" });
      pin = h("input", { id: "pin", type: "checkbox" });
      this.extras.replaceChildren(tags, input, h("label", { class: "pin-label" }, pin, " pinned"));
      const tagInput = input;
      const pinBox = pin;
      tagInput.addEventListener(
        "keydown",
        (event) => {
          if (event.key !== "Enter" || this.selected === undefined || tagInput.value.trim() === "") return;
          event.preventDefault();
          this.publish(SCOPE, "tag", { docId: this.selected, tag: tagInput.value, at: Date.now() } satisfies TagRequest);
          tagInput.value = "";
        },
        { signal: this.signal },
      );
      tags.addEventListener(
        "click",
        (event) => {
          const tag = (event.target as Element).closest<HTMLElement>("[data-tag]")?.dataset.tag;
          if (tag !== undefined && this.selected !== undefined) this.publish(SCOPE, "untag", { docId: this.selected, tag, at: Date.now() } satisfies TagRequest);
        },
        { signal: this.signal },
      );
      pinBox.addEventListener(
        "change",
        () => {
          if (this.selected !== undefined) this.publish(SCOPE, "pin", { docId: this.selected, pinned: pinBox.checked } satisfies PinRequest);
        },
        { signal: this.signal },
      );
    }
    const meta = this.selected === undefined ? undefined : this.model.metadata.get(this.selected);
    tags.replaceChildren(
      ...(meta?.tags ?? []).map((tag) => h("button", { class: "tag", type: "button", "data-tag": tag, title: "Remove this tag" }, `#${tag} ×`)),
    );
    input.disabled = pin.disabled = meta === undefined;
    pin.checked = meta?.pinned ?? false;
  }

  protected renderNotices(): void {
    const notices: HTMLElement[] = [];
    if (this.model.migratedFrom !== null) {
      notices.push(
        h("p", { id: "migrated", class: "notice" }, `Migrated from v${this.model.migratedFrom}: this session started from data saved by v${this.model.migratedFrom}; every document got empty tags and default metadata.`),
      );
    }
    if (this.model.loadError !== null) {
      notices.push(h("p", { id: "load-error", class: "notice error" }, `The saved data could not be loaded (${this.model.loadError}). It is kept as it was: changes made in this version are not saved.`));
    }
    this.notices.replaceChildren(...notices);
  }
}
