/**
 * @jest-environment jsdom
 * @jest-environment-options {"customExportConditions": ["node", "node-addons"]}
 */
// The hooks against a real reflector: each provider is a client of its own, like a browser tab.
import "./jsdom-env";
import { useEffect, type ReactNode } from "react";
import { createRoot, type Root } from "react-dom/client";
import type { LockstepSession } from "@lockstep/client";
import { LockstepProvider, shallowEqual, useConnectedViews, useModelSelector, usePublish, useSession, useStatus, useSubscribe, useViewId, type Publish } from "@lockstep/react";
import { Board, boardOptions, Commits, hashesWhen, joinHeadless, until, useReflector } from "./board";

const reflector = useReflector();
const roots: Root[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) root.unmount();
});

function mount(node: ReactNode): Root {
  const root = createRoot(document.createElement("div"));
  roots.push(root);
  root.render(node);
  return root;
}

/** Hands the component's session and publish function to the test once committed. */
function Grab({ into }: { into: Commits<{ session: LockstepSession<Board>; publish: Publish }> }): null {
  const session = useSession<Board>();
  const publish = usePublish();
  useEffect(() => into.push({ session, publish }), [into, session, publish]);
  return null;
}

test("the provider renders its fallback, joins, and the hooks report status, view id and the views present", async () => {
  const fallback = new Commits<string>();
  const info = new Commits<{ status: string; viewId: string; viewIds: readonly string[]; viewCount: number; sessionViewId: string }>();
  function Fallback(): ReactNode {
    useEffect(() => fallback.push("shown"), []);
    return <p>joining…</p>;
  }
  function Info(): ReactNode {
    const status = useStatus();
    const viewId = useViewId();
    const { viewIds, viewCount } = useConnectedViews();
    const session = useSession();
    useEffect(() => info.push({ status, viewId, viewIds, viewCount, sessionViewId: session.viewId }));
    return <p>{status}</p>;
  }
  const options = boardOptions(reflector.url);
  mount(
    <LockstepProvider options={options} fallback={<Fallback />}>
      <Info />
    </LockstepProvider>,
  );
  await fallback.when((v) => v === "shown");
  const first = await info.when((v) => v.status === "connected");
  expect(first.viewId).toBe(first.sessionViewId);
  expect(first.viewIds).toEqual([first.viewId]);
  expect(first.viewCount).toBe(1);

  // Another user joins, then leaves: the component sees both.
  const other = await joinHeadless(options);
  const two = await info.when((v) => v.viewCount === 2);
  expect(two.viewIds).toEqual([first.viewId, other.viewId]);
  await other.leave();
  const back = await info.when((v) => v.viewCount === 1);
  expect(back.viewIds).toEqual([first.viewId]);
});

test("useModelSelector re-renders on a remote client's publish of what it selects, and not on unrelated changes", async () => {
  const renders = { a: 0, b: 0, ticks: 0 };
  const seen = { a: new Commits<number>(), b: new Commits<number>(), ticks: new Commits<number>() };
  function Field({ name }: { name: "a" | "b" | "ticks" }): ReactNode {
    const value = useModelSelector<Board, number>((m) => m[name]);
    renders[name]++;
    useEffect(() => seen[name].push(value), [name, value]);
    return <span>{value}</span>;
  }
  const options = boardOptions(reflector.url);
  const grabbed = new Commits<{ session: LockstepSession<Board>; publish: Publish }>();
  mount(
    <LockstepProvider options={options}>
      <Field name="a" />
      <Field name="b" />
      <Field name="ticks" />
      <Grab into={grabbed} />
    </LockstepProvider>,
  );
  await Promise.all([seen.a.when((v) => v === 0), seen.b.when((v) => v === 0), seen.ticks.when((v) => v === 0)]);
  const initial = { ...renders };
  const remote = await joinHeadless(options);

  // b changes (on the remote's publish): only the component that selects b renders again.
  remote.view.publish("board", "incB");
  await seen.b.when((v) => v === 1);
  expect(renders).toEqual({ a: initial.a, b: initial.b + 1, ticks: initial.ticks });

  // Model changes made by a future (no event touches `ticks`) reach selectors too.
  remote.view.publish("board", "tickLater");
  await seen.ticks.when((v) => v === 1);
  expect(renders).toEqual({ a: initial.a, b: initial.b + 1, ticks: initial.ticks + 1 });

  // The same publish from this client, through usePublish; both replicas end identical.
  const { session, publish } = await grabbed.when(() => true);
  const hashes = hashesWhen([session, remote], (s) => s.model.a === 2);
  publish("board", "incA");
  remote.view.publish("board", "incA");
  await seen.a.when((v) => v === 2);
  expect(renders.b).toBe(initial.b + 1);
  const [mine, theirs] = await hashes;
  expect(mine).toEqual(theirs);
  // Every value committed once: no render repeated a value it already had.
  expect(new Set(seen.a.values).size).toBe(seen.a.values.length);
  await remote.leave();
});

test("a selector that builds arrays re-renders only when they differ under shallowEqual", async () => {
  let renders = 0;
  const notes = new Commits<readonly string[]>();
  function Notes(): ReactNode {
    const list = useModelSelector((m: Board) => m.notes.map((n) => n.toUpperCase()), shallowEqual);
    renders++;
    useEffect(() => notes.push(list), [list]);
    return <ul>{list.map((n) => <li key={n}>{n}</li>)}</ul>;
  }
  const options = boardOptions(reflector.url);
  mount(
    <LockstepProvider options={options}>
      <Notes />
    </LockstepProvider>,
  );
  await notes.when((l) => l.length === 0);
  const remote = await joinHeadless(options);
  remote.view.publish("board", "note", "x");
  await notes.when((l) => l.length === 1);
  const before = renders;
  // An unrelated change makes the selector build a new, equal array: no re-render.
  remote.view.publish("board", "incA");
  remote.view.publish("board", "note", "y");
  await notes.when((l) => l.length === 2);
  expect(renders).toBe(before + 1);
  expect(notes.latest).toEqual(["X", "Y"]);
  await remote.leave();
});

test("two providers are two clients: publishes from both re-render both, subscriptions hear model events, replicas end identical", async () => {
  const options = boardOptions(reflector.url);
  const heard: Array<Commits<string>> = [new Commits(), new Commits()];
  const shown: Array<Commits<string>> = [new Commits(), new Commits()];
  const grabbed: Array<Commits<{ session: LockstepSession<Board>; publish: Publish }>> = [new Commits(), new Commits()];
  function Pane({ index }: { index: number }): ReactNode {
    const text = useModelSelector((m: Board) => `${m.a}/${m.b}`);
    useSubscribe<{ which: string; value: number }>("board", "changed", (e) => heard[index]!.push(`${e.which}=${e.value}`));
    const incA = usePublish(() => ["board", "incA"]);
    useEffect(() => shown[index]!.push(text), [index, text]);
    return <button onClick={incA}>{text}</button>;
  }
  for (const index of [0, 1]) {
    mount(
      <LockstepProvider options={options}>
        <Pane index={index} />
        <Grab into={grabbed[index]!} />
      </LockstepProvider>,
    );
  }
  const [a, b] = await Promise.all(grabbed.map((g) => g.when(() => true)));
  await Promise.all(shown.map((s) => s.when((t) => t === "0/0")));
  const hashes = hashesWhen([a!.session, b!.session], (s) => s.model.a === 1 && s.model.b === 1);
  a!.publish("board", "incA");
  b!.publish("board", "incB");
  await Promise.all(shown.map((s) => s.when((t) => t === "1/1")));
  await Promise.all(heard.map((h) => h.when(() => h.values.length === 2)));
  expect(heard[0]!.values.sort()).toEqual(["a=1", "b=1"]);
  expect(heard[1]!.values.sort()).toEqual(["a=1", "b=1"]);
  const [ha, hb] = await hashes;
  expect(ha).toEqual(hb);
  expect(a!.session.id).toBe(b!.session.id);
  expect(a!.session.viewId).not.toBe(b!.session.viewId);
  await until(b!.session, () => b!.session.model.a === 1);
});
