import { Model } from "@lockstep/client";

/** One entry of the shared list. */
export interface Item {
  /** Unique in this session: the model numbers items as they are added. */
  id: number;
  text: string;
}

/**
 * The shared state of the app: a counter and a list. Every window runs this same code on the same
 * events in the same order, so every window holds the same board.
 *
 * Views never change the model directly: they publish events (`board/add-to-count`,
 * `board/add-item`, `board/remove-item`), and the model checks them — any window can send anything —
 * and announces the change with `board/changed`.
 *
 * The class's source is part of the session's identity: after you change this file, windows with
 * the new code meet in a new session, never with windows still running the old code.
 */
export class SharedBoard extends Model {
  static readonly MAX_ITEMS = 100;
  static readonly MAX_TEXT = 200;

  count = 0;
  items: Item[] = [];
  nextId = 1;

  override init(): void {
    this.subscribe("board", "add-to-count", this.addToCount);
    this.subscribe("board", "add-item", this.addItem);
    this.subscribe("board", "remove-item", this.removeItem);
    // viewCount changes when a window joins or leaves: let the views show it.
    this.subscribe(this.sessionId, "view-join", this.changed);
    this.subscribe(this.sessionId, "view-exit", this.changed);
  }

  addToCount(delta: unknown): void {
    if (delta !== 1 && delta !== -1) return;
    this.count += delta;
    this.changed();
  }

  addItem(text: unknown): void {
    if (typeof text !== "string") return;
    const trimmed = text.trim().slice(0, SharedBoard.MAX_TEXT);
    if (trimmed === "" || this.items.length >= SharedBoard.MAX_ITEMS) return;
    this.items.push({ id: this.nextId++, text: trimmed });
    this.changed();
  }

  removeItem(id: unknown): void {
    const index = this.items.findIndex((item) => item.id === id);
    if (index === -1) return;
    this.items.splice(index, 1);
    this.changed();
  }

  changed(): void {
    this.publish("board", "changed");
  }
}
// The name under which snapshots store this class: keep it when you rename the class.
SharedBoard.register("SharedBoard");
