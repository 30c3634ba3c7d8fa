/**
 * @jest-environment jsdom
 * @jest-environment-options {"customExportConditions": ["node", "node-addons"]}
 */
// The provider's lifecycle against a real reflector: one join under StrictMode, leaving on unmount
// (also while still joining), and a failed join reaching an error boundary.
import "./jsdom-env";
import { Component, StrictMode, useEffect, type ReactNode } from "react";
import { createRoot } from "react-dom/client";
import { Session, type LockstepSession, type SessionStatus } from "@lockstep/client";
import { createMemoryStore, silentLogger, startReflector } from "@lockstep/reflector";
import { keepOpen } from "@lockstep/test-support";
import { LockstepProvider, useModelSelector, useSession, useStatus, useSubscribe } from "@lockstep/react";
import { Board, boardOptions, Commits, hashesWhen, joinHeadless, tappedSockets, until, useReflector } from "./board";

const reflector = useReflector();
afterEach(() => jest.restoreAllMocks());

/** Resolves once the session's status is `status`. */
function statusReached(session: LockstepSession, status: SessionStatus): Promise<void> {
  if (session.status === status) return Promise.resolve();
  return new Promise((resolve) => {
    const stop = session.on("status", (s) => s === status && (stop(), resolve()));
  });
}

function Status({ into }: { into: Commits<{ status: SessionStatus; session: LockstepSession<Board> }> }): ReactNode {
  const status = useStatus();
  const session = useSession<Board>();
  useEffect(() => into.push({ status, session }), [into, status, session]);
  return <p>{status}</p>;
}

test("under StrictMode the provider joins once, and unmounting leaves the session", async () => {
  const options = boardOptions(reflector.url);
  const remote = await joinHeadless(options);
  const join = jest.spyOn(Session, "join");
  const seen = new Commits<{ status: SessionStatus; session: LockstepSession<Board> }>();
  const root = createRoot(document.createElement("div"));
  root.render(
    <StrictMode>
      <LockstepProvider options={options}>
        <Status into={seen} />
      </LockstepProvider>
    </StrictMode>,
  );
  const { session } = await seen.when((v) => v.status === "connected");
  expect(join).toHaveBeenCalledTimes(1);
  // The other user sees exactly one more view; a round trip later still one (no second join in flight).
  await until(remote, () => remote.viewIds.includes(session.viewId));
  remote.view.publish("board", "incA");
  await until(remote, () => remote.model.a === 1);
  await until(session, () => session.model.a === 1);
  expect(remote.viewIds).toEqual([remote.viewId, session.viewId]);

  root.unmount();
  await statusReached(session, "ended");
  await until(remote, () => remote.viewIds.length === 1);
  expect(remote.viewIds).toEqual([remote.viewId]);
  expect(join).toHaveBeenCalledTimes(1);
  await remote.leave();
});

test("a provider unmounted while still joining leaves once the join completes", async () => {
  const options = boardOptions(reflector.url);
  const remote = await joinHeadless(options);
  const join = jest.spyOn(Session, "join");
  const root = createRoot(document.createElement("div"));
  const fallback = new Commits<string>();
  function Fallback(): ReactNode {
    useEffect(() => fallback.push("shown"), []);
    return null;
  }
  root.render(
    <LockstepProvider options={options} fallback={<Fallback />}>
      <p>joined</p>
    </LockstepProvider>,
  );
  await fallback.when(() => true);
  root.unmount();
  expect(join).toHaveBeenCalledTimes(1);
  const session = (await join.mock.results[0]!.value) as LockstepSession<Board>;
  await statusReached(session, "ended");
  await until(remote, () => remote.viewIds.length === 1 && !remote.viewIds.includes(session.viewId));
  await remote.leave();
});

class Boundary extends Component<{ children: ReactNode; into: Commits<string> }, { error?: Error }> {
  override state: { error?: Error } = {};
  static getDerivedStateFromError(error: Error): { error: Error } {
    return { error };
  }
  override componentDidCatch(error: Error): void {
    this.props.into.push(error.message);
  }
  override render(): ReactNode {
    return this.state.error ? <p role="alert">{this.state.error.message}</p> : this.props.children;
  }
}

/** Reports the model events it hears (useSubscribe) and the counter `a` it shows (useModelSelector). */
function Watch({ heard, shown }: { heard: Commits<string>; shown: Commits<number> }): ReactNode {
  useSubscribe<{ which: string; value: number }>("board", "changed", (e) => heard.push(`${e.which}=${e.value}`));
  const a = useModelSelector((m: Board) => m.a);
  useEffect(() => shown.push(a), [a]);
  return null;
}

test("through a reflector restart: status shows reconnecting, then subscriptions and selectors carry on", async () => {
  // One store for both runs, as a redeploy keeps its database.
  const storage = keepOpen(createMemoryStore());
  let reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, storage });
  const port = reflector.port;
  const options = boardOptions(reflector.url);
  const statuses = new Commits<{ status: SessionStatus; session: LockstepSession<Board> }>();
  const heard = new Commits<string>();
  const shown = new Commits<number>();
  const root = createRoot(document.createElement("div"));
  root.render(
    <LockstepProvider options={options}>
      <Status into={statuses} />
      <Watch heard={heard} shown={shown} />
    </LockstepProvider>,
  );
  const { session } = await statuses.when((v) => v.status === "connected");
  const remote = await joinHeadless(options);
  remote.view.publish("board", "incA");
  await Promise.all([heard.when((e) => e === "a=1"), shown.when((a) => a === 1)]);

  jest.spyOn(console, "warn").mockImplementation(() => {}); // "lost the connection … reconnecting"
  await reflector.close();
  await statuses.when((v) => v.status === "reconnecting");
  reflector = await startReflector({ port, host: "127.0.0.1", logger: silentLogger, storage });
  try {
    await Promise.all([statuses.when((v) => v.status === "connected"), statusReached(remote, "connected")]);
    const hashes = hashesWhen([session, remote], (s) => s.model.a === 2);
    remote.view.publish("board", "incA");
    await Promise.all([heard.when((e) => e === "a=2"), shown.when((a) => a === 2)]);
    const [mine, theirs] = await hashes;
    expect(mine).toEqual(theirs);
    root.unmount();
    await Promise.all([statusReached(session, "ended"), remote.leave()]);
  } finally {
    await reflector.close();
  }
});

test("a connection dropped past the reflector's grace rejoins afresh: the hooks follow the rebuilt replica and views", async () => {
  // No grace: a dropped view is gone at once, so its rejoin starts over (new replica, new root view).
  const reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, viewGraceMs: 0 });
  try {
    const tap = tappedSockets();
    const options = boardOptions(reflector.url);
    const statuses = new Commits<{ status: SessionStatus; session: LockstepSession<Board> }>();
    const heard = new Commits<string>();
    const shown = new Commits<number>();
    const root = createRoot(document.createElement("div"));
    root.render(
      <LockstepProvider options={{ ...options, socket: tap.socket }}>
        <Status into={statuses} />
        <Watch heard={heard} shown={shown} />
      </LockstepProvider>,
    );
    const { session } = await statuses.when((v) => v.status === "connected");
    const remote = await joinHeadless(options);
    remote.view.publish("board", "incA");
    await Promise.all([heard.when((e) => e === "a=1"), shown.when((a) => a === 1)]);
    const oldModel = session.model;
    const oldView = session.view;

    jest.spyOn(console, "warn").mockImplementation(() => {}); // "lost the connection … reconnecting"
    tap.sockets[0]!.terminate();
    await statuses.when((v) => v.status === "reconnecting");
    await statuses.when((v) => v.status === "connected");
    expect(tap.sockets).toHaveLength(2);
    expect(session.model).not.toBe(oldModel);
    expect(session.view).not.toBe(oldView);

    const hashes = hashesWhen([session, remote], (s) => s.model.a === 2);
    remote.view.publish("board", "incA");
    await Promise.all([heard.when((e) => e === "a=2"), shown.when((a) => a === 2)]);
    const [mine, theirs] = await hashes;
    expect(mine).toEqual(theirs);
    root.unmount();
    await Promise.all([statusReached(session, "ended"), remote.leave()]);
  } finally {
    await reflector.close();
  }
});

/** A model class nobody registered: `Session.join` refuses it. */
class Unregistered extends Board {}

test("a failed join is thrown to the nearest error boundary", async () => {
  jest.spyOn(console, "error").mockImplementation(() => {}); // React reports the caught error too
  const caught = new Commits<string>();
  const container = document.createElement("div");
  const root = createRoot(container);
  root.render(
    <Boundary into={caught}>
      <LockstepProvider options={{ ...boardOptions(reflector.url), model: Unregistered }}>
        <p>joined</p>
      </LockstepProvider>
    </Boundary>,
  );
  const message = await caught.when(() => true);
  expect(message).toMatch(/Unregistered is not registered/);
  expect(container.textContent).toBe(message);
  root.unmount();
});

test("hooks outside a provider say what to do", () => {
  function Orphan(): ReactNode {
    useStatus();
    return null;
  }
  jest.spyOn(console, "error").mockImplementation(() => {});
  const caught = new Commits<string>();
  const root = createRoot(document.createElement("div"));
  root.render(
    <Boundary into={caught}>
      <Orphan />
    </Boundary>,
  );
  return caught.when(() => true).then((message) => {
    expect(message).toBe("useStatus() must be called inside <LockstepProvider> (its children render once the session is joined)");
    root.unmount();
  });
});
