// Sharing files through the Data API, in the manner of Croquet's file-drop examples: a view
// uploads the bytes (encrypted, stored next to the session), the model keeps only the handles,
// and every view, late joiners too, fetches the bytes by handle.
import * as Croquet from "@croquet/croquet";

class FileShelf extends Croquet.Model {
  init() {
    this.files = [];
    this.subscribe("shelf", "added", this.addFile);
  }

  // the handle is an ordinary model value: it lives in snapshots and travels in events
  addFile({ handle, name, size, hash, from }) {
    this.files.push({ handle, name, size, hash, from });
    this.publish("shelf", "changed");
  }
}
FileShelf.register("FileShelf");

class ShelfView extends Croquet.View {
  constructor(shelf) {
    super(shelf);
    this.shelf = shelf;
    this.shown = 0;
    document.getElementById("upload").onclick = () => this.upload();
    this.subscribe("shelf", "changed", this.render);
    this.render();
  }

  async upload() {
    const text = document.getElementById("content").value;
    const bytes = new TextEncoder().encode(text);
    const hash = await Croquet.Data.hash(bytes);
    const handle = await this.session.data.store(bytes.buffer, { keep: true });
    // an id is a string form of a handle (for URLs, or another session); it turns back into one
    const id = Croquet.Data.toId(handle);
    this.publish("shelf", "added", { handle: Croquet.Data.fromId(id), name: `note-${this.shelf.files.length + 1}.txt`, size: bytes.length, hash, from: this.viewId });
  }

  render() {
    const list = document.getElementById("files");
    for (const file of this.shelf.files.slice(this.shown)) {
      const item = document.createElement("li");
      item.textContent = `${file.name} (${file.size} bytes): loading…`;
      list.appendChild(item);
      this.show(file, item);
    }
    this.shown = this.shelf.files.length;
  }

  async show(file, item) {
    const buffer = await this.session.data.fetch(file.handle);
    const text = new TextDecoder().decode(buffer);
    const ok = (await Croquet.Data.hash(buffer)) === file.hash;
    item.textContent = `${file.name}: ${text}`;
    item.dataset.verified = String(ok);
    item.classList.add("loaded");
  }
}

Croquet.Session.join({
  apiKey: "1_compat_suite_placeholder",
  appId: "io.lockstep.compat.data",
  model: FileShelf,
  view: ShelfView,
}).then((session) => {
  window.session = session;
});
