// Browser entry of notes v2 (bundled to dist/main.js by the dev server).
import { App, Session } from "@lockstep/client";
import { DocumentEditor } from "./model";
import { NotesView } from "./view";

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

document.getElementById("session")!.textContent = `session ${session.id.slice(0, 8)} · persistent ${session.persistentId.slice(0, 8)}`;
