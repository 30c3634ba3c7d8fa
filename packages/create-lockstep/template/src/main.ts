import { App, Session, View } from "@lockstep/client";
import { SharedBoard } from "./model";

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`index.html has no #${id}`);
  return found as T;
}

/**
 * Shows the board and turns clicks into events. A view reads the model but never writes it: it
 * publishes, and the change comes back through the model in every window at once.
 */
class BoardView extends View {
  readonly #model: SharedBoard;
  readonly #count = element("count");
  readonly #items = element<HTMLUListElement>("items");
  readonly #here = element("here");
  readonly #form = element<HTMLFormElement>("add");
  readonly #input = element<HTMLInputElement>("new-item");

  constructor(model: SharedBoard) {
    super(model);
    this.#model = model;
    this.subscribe("board", "changed", this.render);
    // False while the connection is lost (what you do is queued), true once it is back.
    this.subscribe(this.sessionId, "synced", (synced: boolean) => document.body.classList.toggle("offline", !synced));
    element("plus").onclick = () => this.publish("board", "add-to-count", 1);
    element("minus").onclick = () => this.publish("board", "add-to-count", -1);
    this.#form.onsubmit = (event) => {
      event.preventDefault();
      if (this.#input.value.trim() !== "") this.publish("board", "add-item", this.#input.value);
      this.#input.value = "";
    };
    this.#items.onclick = (event) => {
      const button = (event.target as HTMLElement).closest("button[data-id]");
      if (button) this.publish("board", "remove-item", Number(button.getAttribute("data-id")));
    };
    this.render();
  }

  render(): void {
    this.#count.textContent = String(this.#model.count);
    this.#here.textContent = this.#model.viewCount === 1 ? "1 window" : `${this.#model.viewCount} windows`;
    this.#items.replaceChildren(
      ...this.#model.items.map((item) => {
        const li = document.createElement("li");
        li.dataset.id = String(item.id);
        const text = document.createElement("span");
        text.textContent = item.text; // text, never HTML: another window wrote it
        const remove = document.createElement("button");
        remove.dataset.id = String(item.id);
        remove.title = "Remove";
        remove.textContent = "×";
        li.append(text, remove);
        return li;
      }),
    );
  }

  // After a long outage the session is joined anew with a new view: let go of the page.
  override detach(): void {
    super.detach();
    for (const id of ["plus", "minus"]) element(id).onclick = null;
    this.#form.onsubmit = null;
    this.#items.onclick = null;
  }
}

/** Where the reflector is: `?reflector=` in the page URL, else what `npm run dev` set, else port 8787 of this host. */
function reflectorUrl(): string {
  const fromPage = new URLSearchParams(location.search).get("reflector");
  const protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return fromPage ?? import.meta.env.VITE_LOCKSTEP_REFLECTOR ?? `${protocol}//${location.hostname}:8787/`;
}

async function start(): Promise<void> {
  App.makeWidgetDock(); // the session badge and a QR code of this page's link, bottom left
  const session = await Session.join({
    appId: "__APP_ID__",
    name: App.autoSession(), // ?q=… in the URL, or a new random name written there
    password: App.autoPassword(), // #pw=… in the URL fragment (never sent to a server), or a new one
    model: SharedBoard,
    view: BoardView,
    reflector: reflectorUrl(),
  });
  element("status").textContent = `session ${session.id.slice(0, 8)} · you are ${session.viewId}`;
  // Handy in the devtools console: session.model, session.view.
  Object.assign(window, { session });
}

start().catch((error: unknown) => {
  element("status").textContent = `could not join: ${error instanceof Error ? error.message : String(error)}`;
  console.error(error);
});
