// Browser entry of notes v1 (bundled to dist/main.js by the dev server).
import { App, Session } from "@lockstep/client";
import { EditorView } from "../editor-view";
import { DocumentEditor } from "./model";

/** v1's view: the shared editor view as it is. */
class NotesView extends EditorView<DocumentEditor> {}

App.makeWidgetDock();   // badge + QR code
const session = await Session.join({
  appId: "dev.lockstep.notes",
  name: App.autoSession(),
  password: App.autoPassword(),
  model: DocumentEditor, view: NotesView,
  reflector: new URLSearchParams(location.search).get("reflector") ?? `ws://${location.hostname}:8787/`,
});
Object.assign(window, { session }); // handy in the devtools console (and used by the browser tests)
addEventListener("pagehide", () => void session.flushPersistence()); // best effort before unload

// The same session name and password under v2's code: a new session that starts from what v1
// saved. Flush first, so v2 starts from everything typed here.
const toV2 = document.getElementById("to-v2");
if (toV2 instanceof HTMLAnchorElement) {
  toV2.href = `../v2/${location.search}${location.hash}`;
  toV2.onclick = (event) => {
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return void session.flushPersistence(); // a new tab
    event.preventDefault();
    const target = `../v2/${location.search}${location.hash}`;
    void session.flushPersistence().finally(() => location.assign(target));
  };
}
document.getElementById("session")!.textContent = `session ${session.id.slice(0, 8)} · persistent ${session.persistentId.slice(0, 8)}`;
