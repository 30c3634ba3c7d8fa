// A chat room in the style of the Multisynq "simple chat" tutorial: the `Multisynq` global, a
// model that names each arriving view, keeps the history and persists it, and a view that posts.

const NICKNAMES = ["Otter", "Heron", "Lynx", "Marten", "Ibis", "Vole", "Wren", "Stoat", "Newt", "Kite"];

class ChatRoom extends Multisynq.Model {
  init(options, persisted) {
    this.nicknames = new Map();
    this.history = persisted && Array.isArray(persisted.history) ? persisted.history : [];
    this.subscribe(this.sessionId, "view-join", this.viewJoined);
    this.subscribe(this.sessionId, "view-exit", this.viewExited);
    // arrow handlers that call one method, as tutorials write them
    this.subscribe("input", "post", (post) => this.addPost(post));
    this.subscribe("input", "clear", () => this.clearHistory());
  }

  viewJoined(viewId) {
    const nickname = NICKNAMES[Math.floor(this.random() * NICKNAMES.length)] + "-" + (this.nicknames.size + 1);
    this.nicknames.set(viewId, nickname);
    this.addLine(`${nickname} has entered the room`);
  }

  viewExited(viewId) {
    const nickname = this.nicknames.get(viewId);
    this.nicknames.delete(viewId);
    if (nickname) this.addLine(`${nickname} has left`);
  }

  addPost({ viewId, text }) {
    if (typeof text !== "string" || text.length === 0) return;
    this.addLine(`${this.nicknames.get(viewId) ?? "someone"}: ${text.slice(0, 300)}`);
    // a plain object, not a function: what survives a change of this code
    this.persistSession({ history: this.history.slice(-50) });
  }

  clearHistory() {
    this.history = [];
    this.addLine("(history cleared)");
  }

  addLine(line) {
    this.history.push(line);
    if (this.history.length > 100) this.history.shift();
    this.publish("history", "refresh");
  }
}
ChatRoom.register("ChatRoom");

class ChatView extends Multisynq.View {
  constructor(model) {
    super(model);
    this.model = model;
    const input = document.getElementById("textIn");
    document.getElementById("sendButton").onclick = () => this.send();
    document.getElementById("clearButton").onclick = () => this.publish("input", "clear");
    input.onkeydown = (event) => {
      if (event.key === "Enter") this.send();
    };
    this.subscribe("history", "refresh", this.refresh);
    this.refresh();
  }

  send() {
    const input = document.getElementById("textIn");
    this.publish("input", "post", { viewId: this.viewId, text: input.value });
    input.value = "";
  }

  refresh() {
    const out = document.getElementById("textOut");
    out.textContent = this.model.history.join("\n");
    out.scrollTop = out.scrollHeight;
    document.getElementById("viewCount").textContent = `${this.model.nicknames.size} here · you are ${this.model.nicknames.get(this.viewId) ?? "?"}`;
  }

  detach() {
    super.detach();
    document.getElementById("sendButton").onclick = null;
  }
}

// tps 0: no heartbeat ticks are needed while nobody types
Multisynq.Session.join({
  apiKey: "1_compat_suite_placeholder",
  appId: "io.lockstep.compat.chat",
  model: ChatRoom,
  view: ChatView,
  tps: 0,
}).then((session) => {
  window.session = session;
});
