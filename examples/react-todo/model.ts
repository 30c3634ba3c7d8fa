import { Model } from "@lockstep/client";

/** One todo. Plain data: models hold it, views read it. */
export interface Todo {
  readonly id: number;
  text: string;
  done: boolean;
}

/** Longest todo text kept (longer input is cut), and most todos in one list. */
export const MAX_TEXT = 200;
export const MAX_TODOS = 500;

/**
 * The shared todo list. Every client runs this same code on the same ordered events, so every
 * client holds the same list; views change it only by publishing "todos" events. Event data comes
 * from other users' browsers: it is checked here, and what does not fit is ignored (alike everywhere).
 */
export class TodoList extends Model {
  todos: Todo[] = [];
  nextId = 1;

  override init(): void {
    this.subscribe("todos", "add", this.add);
    this.subscribe("todos", "toggle", this.toggle);
    this.subscribe("todos", "delete", this.remove);
    this.subscribe("todos", "clear-done", this.clearDone);
  }

  add(text: unknown): void {
    if (typeof text !== "string" || this.todos.length >= MAX_TODOS) return;
    const trimmed = text.trim().slice(0, MAX_TEXT);
    if (trimmed.length === 0) return;
    this.todos.push({ id: this.nextId++, text: trimmed, done: false });
  }

  toggle(id: unknown): void {
    const todo = this.todos.find((t) => t.id === id);
    if (todo) todo.done = !todo.done;
  }

  remove(id: unknown): void {
    this.todos = this.todos.filter((t) => t.id !== id);
  }

  clearDone(): void {
    this.todos = this.todos.filter((t) => !t.done);
  }
}
TodoList.register("TodoList");
