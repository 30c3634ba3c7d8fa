import { App, type LockstepSession } from "@lockstep/client";
import { LockstepProvider, shallowEqual, useConnectedViews, useModelSelector, usePublish, useSession, useStatus, useViewId } from "@lockstep/react";
import { StrictMode, useEffect, useState, type FormEvent, type ReactNode } from "react";
import { createRoot } from "react-dom/client";
import { MAX_TEXT, TodoList, type Todo } from "./model";

/** The add form: its text is local React state until it is published. */
function AddTodo(): ReactNode {
  const [text, setText] = useState("");
  const publish = usePublish();
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (text.trim() === "") return;
    publish("todos", "add", text);
    setText("");
  };
  return (
    <form id="add" onSubmit={submit}>
      <input id="new" value={text} maxLength={MAX_TEXT} placeholder="What needs doing?" autoFocus onChange={(e) => setText(e.target.value)} />
      <button type="submit">Add</button>
    </form>
  );
}

/**
 * One row. It re-renders only when its own todo changed. Models change their objects in place, so
 * the selector copies out what the row shows (a fresh object each time, hence `shallowEqual`).
 */
function TodoItem({ id }: { id: number }): ReactNode {
  const todo = useModelSelector((m: TodoList) => shown(m.todos.find((t) => t.id === id)), shallowEqual);
  const toggle = usePublish((todoId: number) => ["todos", "toggle", todoId]);
  const remove = usePublish((todoId: number) => ["todos", "delete", todoId]);
  if (todo === undefined) return null;
  return (
    <li data-id={id} className={todo.done ? "done" : ""}>
      <label>
        <input type="checkbox" checked={todo.done} onChange={() => toggle(id)} />
        <span className="text">{todo.text}</span>
      </label>
      <button className="delete" aria-label={`Delete ${todo.text}`} onClick={() => remove(id)}>
        ×
      </button>
    </li>
  );
}

const shown = (todo: Todo | undefined): Pick<Todo, "text" | "done"> | undefined => todo && { text: todo.text, done: todo.done };

/** The list: re-renders when ids come or go, not when a todo is toggled. */
function Todos(): ReactNode {
  const ids = useModelSelector((m: TodoList) => m.todos.map((t) => t.id), shallowEqual);
  const left = useModelSelector((m: TodoList) => m.todos.filter((t) => !t.done).length);
  const publish = usePublish();
  return (
    <>
      <ul id="todos">{ids.map((id) => <TodoItem key={id} id={id} />)}</ul>
      <footer>
        <span>
          <span id="left">{left}</span> left
        </span>
        <button id="clear" onClick={() => publish("todos", "clear-done")} disabled={left === ids.length}>
          Clear done
        </button>
      </footer>
    </>
  );
}

/** Where the session stands and who else is here. */
function StatusBar(): ReactNode {
  const status = useStatus();
  const { viewCount } = useConnectedViews();
  const viewId = useViewId();
  return (
    <p id="statusbar">
      <span id="status" data-status={status}>{status}</span> · <span id="views">{viewCount}</span> {viewCount === 1 ? "window" : "windows"} · view {viewId}
    </p>
  );
}

/** Puts the session on `window.session` (handy in the devtools console, and used by the browser tests). */
function ExposeSession(): null {
  const session = useSession<TodoList>();
  useEffect(() => {
    Object.assign(window, { session });
  }, [session]);
  return null;
}

declare global {
  interface Window {
    session?: LockstepSession<TodoList>;
  }
}

App.makeWidgetDock(); // the session badge and a QR code of this page's link, bottom left
const options = {
  appId: "dev.lockstep.react-todo",
  name: App.autoSession(), // ?q=… in the URL, or a new random name written there
  password: App.autoPassword(), // #pw=… in the URL fragment (never sent to a server), or a new one
  model: TodoList,
  reflector: new URLSearchParams(location.search).get("reflector") ?? `ws://${location.hostname}:8787/`,
};

createRoot(document.getElementById("app")!).render(
  <StrictMode>
    <LockstepProvider options={options} fallback={<p id="joining">Joining…</p>}>
      <h1>Todos</h1>
      <StatusBar />
      <AddTodo />
      <Todos />
      <ExposeSession />
    </LockstepProvider>
  </StrictMode>,
);
