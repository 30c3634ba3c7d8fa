import { Model } from "@lockstep/client";

/** A user in the room: one per joined view. */
export interface ChatUser {
  name: string;
  color: string;
  /** Model time of the view-join. */
  joinedAt: number;
}

/** One posted message. Name and color are the sender's at the time of posting. */
export interface ChatMessage {
  /** Increasing number of the message in this room (views render incrementally by it). */
  seq: number;
  /** viewId of the sender. */
  from: string;
  name: string;
  color: string;
  text: string;
  /** Model time of the post. */
  time: number;
  /** The sender's wall clock when posting (ms since 1970), for display; null if it sent none. */
  sentAt: number | null;
}

/** What views publish to post: `view.publish("chat", "post", { viewId, text, sentAt })`. */
export interface PostEvent {
  viewId: string;
  text: string;
  sentAt?: number;
}

/** What views publish to rename themselves: `view.publish("chat", "rename", { viewId, name })`. */
export interface RenameEvent {
  viewId: string;
  name: string;
}

/**
 * The chat room: who is here (from view-join / view-exit) and the last 100 messages. Views publish
 * `chat/post` and `chat/rename`; the model validates both (any client can send anything) and
 * announces changes with `chat/users` and `chat/messages`.
 *
 * Limits and helpers are static members on purpose: the class source is part of the session's
 * code hash, so changing a limit starts a new session instead of letting two code versions
 * disagree in one.
 */
export class ChatModel extends Model {
  static readonly MAX_MESSAGES = 100;
  static readonly MAX_TEXT = 500;
  static readonly MAX_NAME = 24;
  static readonly COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#9a6324", "#800000", "#808000", "#000075"];

  users = new Map<string, ChatUser>();
  messages: ChatMessage[] = [];
  /** Messages ever posted in this room (the next message's seq). */
  posted = 0;

  override init(_options?: unknown, persisted?: unknown): void {
    this.subscribe(this.sessionId, "view-join", this.viewJoined);
    this.subscribe(this.sessionId, "view-exit", this.viewExited);
    this.subscribe("chat", "post", this.post);
    this.subscribe("chat", "rename", this.rename);
    this.restore(persisted);
  }

  /** view-join data is the viewId, or `{ viewId, viewData }` when the view joined with viewData. */
  viewJoined(data: unknown): void {
    const viewId = typeof data === "string" ? data : ChatModel.field(data, "viewId");
    if (typeof viewId !== "string" || this.users.has(viewId)) return;
    const viewData = typeof data === "object" && data !== null ? (data as { viewData?: unknown }).viewData : undefined;
    const name = ChatModel.cleanName(ChatModel.field(viewData, "name")) ?? `Guest-${viewId.slice(0, 4)}`;
    const color = ChatModel.COLORS[Math.floor(this.random() * ChatModel.COLORS.length)] ?? "#333";
    this.users.set(viewId, { name, color, joinedAt: this.now() });
    this.publish("chat", "users");
  }

  viewExited(viewId: unknown): void {
    if (typeof viewId !== "string" || !this.users.delete(viewId)) return;
    this.publish("chat", "users");
  }

  post(data: unknown): void {
    const user = this.userOf(data);
    const text = ChatModel.cleanText(ChatModel.field(data, "text"));
    if (!user || text === undefined) return;
    const sentAt = ChatModel.field(data, "sentAt");
    this.messages.push({
      seq: this.posted++,
      from: user.viewId,
      name: user.name,
      color: user.color,
      text,
      time: this.now(),
      sentAt: typeof sentAt === "number" && Number.isFinite(sentAt) ? sentAt : null,
    });
    if (this.messages.length > ChatModel.MAX_MESSAGES) this.messages.splice(0, this.messages.length - ChatModel.MAX_MESSAGES);
    this.publish("chat", "messages");
    this.persistSession(this.persistData);
  }

  rename(data: unknown): void {
    const user = this.userOf(data);
    const name = ChatModel.cleanName(ChatModel.field(data, "name"));
    if (!user || name === undefined || name === user.name) return;
    this.users.set(user.viewId, { ...this.users.get(user.viewId)!, name });
    this.publish("chat", "users");
  }

  /** What survives a code change (see `init(options, persisted)`): the history. */
  persistData(): unknown {
    return { version: 1, posted: this.posted, messages: this.messages };
  }

  /** Takes the history an earlier code version saved; anything malformed is skipped. */
  restore(persisted: unknown): void {
    const saved = ChatModel.field(persisted, "messages");
    if (!Array.isArray(saved)) return;
    for (const m of saved.slice(-ChatModel.MAX_MESSAGES)) {
      const text = ChatModel.cleanText(ChatModel.field(m, "text"));
      const name = ChatModel.cleanName(ChatModel.field(m, "name"));
      const from = ChatModel.field(m, "from");
      const color = ChatModel.field(m, "color");
      const sentAt = ChatModel.field(m, "sentAt");
      if (text === undefined || name === undefined || typeof from !== "string") continue;
      this.messages.push({
        seq: this.messages.length,
        from,
        name,
        color: typeof color === "string" && /^#[0-9a-f]{3,8}$/i.test(color) ? color : "#333",
        text,
        time: 0, // model time starts anew with each session; these came before it
        sentAt: typeof sentAt === "number" && Number.isFinite(sentAt) ? sentAt : null,
      });
    }
    this.posted = this.messages.length;
  }

  /** The present user an event claims to come from, or undefined. */
  userOf(data: unknown): (ChatUser & { viewId: string }) | undefined {
    const viewId = ChatModel.field(data, "viewId");
    if (typeof viewId !== "string") return undefined;
    const user = this.users.get(viewId);
    return user && { ...user, viewId };
  }

  static field(data: unknown, key: string): unknown {
    return typeof data === "object" && data !== null ? (data as Record<string, unknown>)[key] : undefined;
  }

  /** Trimmed text without control characters (newlines become spaces), at most MAX_TEXT code points; undefined if empty. */
  static cleanText(text: unknown): string | undefined {
    if (typeof text !== "string") return undefined;
    const clean = Array.from(text.slice(0, ChatModel.MAX_TEXT * 2).replace(/[\u0000-\u001f\u007f]+/g, " ").trim())
      .slice(0, ChatModel.MAX_TEXT)
      .join("")
      .trim();
    return clean.length > 0 ? clean : undefined;
  }

  /** Like cleanText, for names: at most MAX_NAME code points, inner whitespace collapsed. */
  static cleanName(name: unknown): string | undefined {
    if (typeof name !== "string") return undefined;
    const clean = Array.from(name.slice(0, ChatModel.MAX_NAME * 4).replace(/[\u0000-\u001f\u007f\s]+/g, " ").trim())
      .slice(0, ChatModel.MAX_NAME)
      .join("")
      .trim();
    return clean.length > 0 ? clean : undefined;
  }
}
ChatModel.register("ChatModel");
