import { Session, type LockstepSession } from "@lockstep/client";
import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { expectSame, hashesWhen, until } from "@lockstep/test-support";
import { ChatModel } from "./model";

type Chat = LockstepSession<ChatModel>;

let reflector: Reflector;
beforeAll(async () => {
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });
});
afterAll(() => reflector.close());

/** Every session a test joined; left after each test, even a failed one, so none outlives the reflector. */
const joined: Chat[] = [];
afterEach(async () => {
  await Promise.all(joined.splice(0).map((s) => s.leave()));
});

async function join(room: string, nickname?: string, options?: Record<string, unknown>): Promise<Chat> {
  const session = await Session.join({
    options,
    appId: "dev.lockstep.chat",
    name: room,
    password: "pw",
    model: ChatModel,
    viewData: nickname === undefined ? undefined : { name: nickname },
    reflector: reflector.url,
    tps: 60,
  });
  joined.push(session);
  return session;
}

function post(s: Chat, text: unknown): void {
  s.view.publish("chat", "post", { viewId: s.viewId, text, sentAt: 1_700_000_000_000 });
}

test("messages and renames reach everyone, a late joiner gets the history, a leaver leaves the user list", async () => {
  const a = await join("room-1", "Ann");
  const b = await join("room-1");
  await until(a, () => a.model.users.has(b.viewId));
  expect([...a.model.users.values()].map((u) => u.name)).toEqual(["Ann", `Guest-${b.viewId.slice(0, 4)}`]);

  const posted = hashesWhen([a, b], (s) => s.model.messages.length === 1);
  post(a, "hello from Ann");
  expectSame(await posted);
  expect(b.model.messages[0]).toMatchObject({ seq: 0, from: a.viewId, name: "Ann", text: "hello from Ann", sentAt: 1_700_000_000_000 });

  const renamed = hashesWhen([a, b], (s) => s.model.users.get(b.viewId)?.name === "Bob");
  b.view.publish("chat", "rename", { viewId: b.viewId, name: "  Bob " });
  expectSame(await renamed);
  post(b, "hi, Bob here");
  await until(a, () => a.model.messages.length === 2);
  expect(a.model.messages[1]).toMatchObject({ from: b.viewId, name: "Bob", text: "hi, Bob here" });

  // A late joiner restores the room as it is: both users, both messages.
  const c = await join("room-1", "Cid");
  expect(c.model.messages).toEqual(a.model.messages);
  expect([...c.model.users.values()].map((u) => u.name)).toEqual(["Ann", "Bob", "Cid"]);

  const left = hashesWhen([a, c], (s) => !s.model.users.has(b.viewId));
  await b.leave();
  expectSame(await left);
  expect([...a.model.users.keys()]).toEqual([a.viewId, c.viewId]);
  expect(a.model.messages).toHaveLength(2); // history stays
});

test("the room keeps the last 100 messages, limits text, and ignores malformed events", async () => {
  const a = await join("room-2", "Ann");
  const b = await join("room-2", "Bob");
  await until(a, () => a.model.users.size === 2);
  for (let i = 0; i < 105; i++) post(a, `message ${i}`);
  await until(b, () => b.model.posted === 105);
  expect(b.model.messages).toHaveLength(ChatModel.MAX_MESSAGES);
  expect(b.model.messages[0]).toMatchObject({ seq: 5, text: "message 5" });

  const before = b.model.messages.length;
  const names = [...b.model.users.values()].map((u) => u.name);
  // Malformed or unauthorized: none of these may change anything, or throw.
  a.view.publish("chat", "post", null);
  a.view.publish("chat", "post", "just a string");
  a.view.publish("chat", "post", { viewId: "nobody-here", text: "ghost" });
  a.view.publish("chat", "post", { viewId: a.viewId, text: 42 });
  a.view.publish("chat", "post", { viewId: a.viewId, text: " \n\t " });
  a.view.publish("chat", "post", { viewId: [a.viewId], text: "array id" });
  a.view.publish("chat", "rename", { viewId: a.viewId, name: "" });
  a.view.publish("chat", "rename", { viewId: a.viewId, name: { toString: "x" } });
  a.view.publish("chat", "rename", { viewId: "nobody-here", name: "Mallory" });
  a.view.publish("chat", "rename");
  // Valid but oversized or dirty: cleaned up.
  post(a, "x".repeat(5000));
  post(a, "line one\nline\u0000two");
  a.view.publish("chat", "post", { viewId: a.viewId, text: "bad clock", sentAt: Number.NaN });
  a.view.publish("chat", "rename", { viewId: b.viewId, name: `B${"o".repeat(100)}` });

  const done = hashesWhen([a, b], (s) => s.model.messages.at(-1)?.text === "end");
  post(a, "end");
  expectSame(await done);
  const added = b.model.messages.slice(-4);
  expect(b.model.messages).toHaveLength(before);
  expect(added.map((m) => m.text)).toEqual(["x".repeat(ChatModel.MAX_TEXT), "line one line two", "bad clock", "end"]);
  expect(added[2]!.sentAt).toBeNull();
  expect(b.model.posted).toBe(109);
  expect(names).toEqual(["Ann", "Bob"]);
  expect([...b.model.users.values()].map((u) => u.name)).toEqual(["Ann", `B${"o".repeat(ChatModel.MAX_NAME - 1)}`]);
});

test("the history outlives a code change (a new sessionId of the same room)", async () => {
  const a = await join("room-3", "Ann");
  post(a, "before the upgrade");
  post(a, "still before");
  await until(a, () => a.model.posted === 2);
  await a.leave(); // uploads the pending save and waits for the reflector's durable acknowledgement

  // Other options give another sessionId with the same persistentId, as a code change would.
  const b = await join("room-3", "Bob", { edition: 2 });
  expect(b.id).not.toBe(a.id);
  expect(b.model.messages.map((m) => [m.seq, m.name, m.text, m.sentAt])).toEqual([
    [0, "Ann", "before the upgrade", 1_700_000_000_000],
    [1, "Ann", "still before", 1_700_000_000_000],
  ]);
  expect(b.model.posted).toBe(2);
  expect([...b.model.users.values()].map((u) => u.name)).toEqual(["Bob"]);
});
