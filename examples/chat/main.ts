import { App, Session, View } from "@lockstep/client";
import { ChatModel, type ChatMessage } from "./model";

/** Where this browser remembers its nickname (sent as viewData when joining). */
const NICKNAME_KEY = "lockstep.chat.name";

function storedNickname(): string | undefined {
  try {
    return localStorage.getItem(NICKNAME_KEY) ?? undefined;
  } catch {
    return undefined; // storage can be disabled; a guest name will do
  }
}

/**
 * Posts this page sent that the room has not shown yet (in flight, or queued while offline), oldest
 * first. Page state, not model state: it outlives a rebuilt view, and the session sends them in
 * order once it is connected again, so the room shows them in this order too.
 */
const pendingPosts: string[] = [];

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`chat: index.html has no #${id}`);
  return el as T;
}

/**
 * The room: users (`#users`), messages (`#messages`, one `li.msg` each), the post form (`#post`
 * with `#text`) and the rename form (`#rename` with `#name`). A message sent while offline stays
 * on screen as pending (`li.msg.pending`) until the room has it. It may be rebuilt after a rejoin
 * from scratch, so the constructor resets the DOM it owns, and `detach` removes every listener it
 * added.
 */
class ChatView extends View {
  readonly #model: ChatModel;
  readonly #users = byId<HTMLUListElement>("users");
  readonly #messages = byId<HTMLOListElement>("messages");
  readonly #text = byId<HTMLInputElement>("text");
  readonly #name = byId<HTMLInputElement>("name");
  readonly #listeners = new AbortController();
  /** seq of the last message rendered. */
  #lastSeq = -1;
  /** The last name this view asked for (Enter fires both submit and change). */
  #requestedName: string | undefined;

  constructor(model: ChatModel) {
    super(model);
    this.#model = model;
    this.#users.replaceChildren();
    this.#messages.replaceChildren();
    const signal = this.#listeners.signal;
    byId<HTMLFormElement>("post").addEventListener("submit", (e) => this.#submitPost(e), { signal });
    byId<HTMLFormElement>("rename").addEventListener("submit", (e) => this.#submitName(e), { signal });
    this.#name.addEventListener("change", () => this.#submitName(), { signal });
    this.subscribe("chat", { event: "users", handling: "oncePerFrame" }, this.renderUsers);
    this.subscribe("chat", { event: "messages", handling: "oncePerFrame" }, this.renderMessages);
    // Multisynq's event: false when the connection is lost, true once caught up again.
    this.subscribe(this.sessionId, "synced", this.showSynced);
    this.#name.value = this.#me()?.name ?? "";
    this.renderUsers();
    this.renderMessages();
    byId("status").textContent = `${model.users.size} here`;
  }

  #me(): { name: string } | undefined {
    return this.#model.users.get(this.viewId);
  }

  #submitPost(e: Event): void {
    e.preventDefault();
    const text = this.#text.value.trim();
    if (!text) return;
    // Queued by the session while offline: shown as pending until the room has it.
    this.publish("chat", "post", { viewId: this.viewId, text, sentAt: Date.now() });
    pendingPosts.push(text);
    this.#text.value = "";
    this.renderMessages();
  }

  showSynced(synced: boolean): void {
    document.body.classList.toggle("offline", !synced);
    byId("status").textContent = synced ? `${this.#model.users.size} here` : "offline: messages are sent when reconnected";
  }

  #submitName(e?: Event): void {
    e?.preventDefault();
    const name = this.#name.value.trim();
    if (!name || name === this.#me()?.name || name === this.#requestedName) return;
    this.#requestedName = name;
    this.publish("chat", "rename", { viewId: this.viewId, name });
    try {
      localStorage.setItem(NICKNAME_KEY, name);
    } catch {
      // not remembered across reloads; the rename itself still happens
    }
  }

  renderUsers(): void {
    const items = [...this.#model.users].map(([viewId, user]) => {
      const li = document.createElement("li");
      li.dataset.viewId = viewId;
      li.style.setProperty("--color", user.color);
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = user.name;
      li.append(name);
      if (viewId === this.viewId) {
        li.classList.add("me");
        const you = document.createElement("span");
        you.className = "you";
        you.textContent = " (you)";
        li.append(you);
      }
      return li;
    });
    this.#users.replaceChildren(...items);
    byId("status").textContent = `${items.length} here`;
    const me = this.#me();
    if (me && document.activeElement !== this.#name) this.#name.value = me.name;
  }

  /** Appends messages not rendered yet and drops those the model no longer keeps. */
  renderMessages(): void {
    const messages = this.#model.messages;
    const list = this.#messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const first = messages[0]?.seq ?? Infinity;
    while (list.firstElementChild && Number((list.firstElementChild as HTMLElement).dataset.seq) < first) list.firstElementChild.remove();
    list.querySelectorAll("li.pending").forEach((li) => li.remove());
    for (const m of messages) {
      if (m.seq <= this.#lastSeq) continue;
      list.append(this.#messageElement(m));
      // Ours arrive in the order they were sent: the oldest pending one is this one.
      if (m.from === this.viewId && pendingPosts[0] === m.text) pendingPosts.shift();
    }
    this.#lastSeq = messages.at(-1)?.seq ?? this.#lastSeq;
    for (const text of pendingPosts) list.append(this.#pendingElement(text));
    if (atBottom || pendingPosts.length > 0) list.scrollTop = list.scrollHeight;
  }

  #pendingElement(text: string): HTMLLIElement {
    const li = document.createElement("li");
    li.className = "msg mine pending";
    const head = document.createElement("div");
    head.className = "head";
    head.textContent = "sending…";
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    li.append(head, body);
    return li;
  }

  #messageElement(m: ChatMessage): HTMLLIElement {
    const li = document.createElement("li");
    li.className = m.from === this.viewId ? "msg mine" : "msg";
    li.dataset.seq = String(m.seq);
    li.dataset.from = m.from;
    const head = document.createElement("div");
    head.className = "head";
    const name = document.createElement("span");
    name.className = "name";
    name.style.color = m.color;
    name.textContent = m.name;
    head.append(name);
    if (m.sentAt !== null) {
      const time = document.createElement("time");
      time.dateTime = new Date(m.sentAt).toISOString();
      time.textContent = new Date(m.sentAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      head.append(time);
    }
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = m.text;
    li.append(head, text);
    return li;
  }

  override detach(): void {
    this.#listeners.abort();
    super.detach();
  }
}

App.makeWidgetDock(); // badge + QR code of the join link
const nickname = storedNickname();
const session = await Session.join({
  appId: "dev.lockstep.chat",
  name: App.autoSession(),
  password: App.autoPassword(),
  model: ChatModel,
  view: ChatView,
  viewData: nickname ? { name: nickname } : undefined,
  reflector: new URLSearchParams(location.search).get("reflector") ?? `ws://${location.hostname}:8787/`,
});
Object.assign(window, { session }); // handy in the devtools console (and used by the browser tests)
byId("text").focus();
