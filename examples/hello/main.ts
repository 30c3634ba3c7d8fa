import { App, Session, View } from "@lockstep/client";
import { HelloModel } from "./model";

/** Shows the count; the button resets it for everyone. */
class HelloView extends View {
  readonly #model: HelloModel;
  readonly #display = document.getElementById("count")!;
  readonly #reset = document.getElementById("reset")!;

  constructor(model: HelloModel) {
    super(model);
    this.#model = model;
    this.subscribe("counter", "changed", this.show);
    // Multisynq's event: false while the connection is lost (clicks are queued), true once back.
    this.subscribe(this.sessionId, "synced", (synced: boolean) => document.body.classList.toggle("offline", !synced));
    this.show();
    this.#reset.onclick = () => this.publish("counter", "reset");
  }

  show(): void {
    this.#display.textContent = String(this.#model.count);
  }

  // After a long outage the session rejoins and builds a new root view: let go of the page.
  override detach(): void {
    super.detach();
    this.#reset.onclick = null;
  }
}

App.makeWidgetDock(); // the session badge and a QR code of this page's link, bottom left
const session = await Session.join({
  appId: "dev.lockstep.hello",
  name: App.autoSession(), // ?q=… in the URL, or a new random name written there
  password: App.autoPassword(), // #pw=… in the URL fragment (never sent to a server), or a new one
  model: HelloModel,
  view: HelloView,
  reflector: new URLSearchParams(location.search).get("reflector") ?? `ws://${location.hostname}:8787/`,
});
document.getElementById("session")!.textContent = `session ${session.id.slice(0, 8)} · view ${session.viewId}`;
Object.assign(window, { session }); // handy in the devtools console (and used by the browser tests)
