import { CloseCode, MessageType, encodeClientMessage } from "@lockstep/protocol";
import { Harness, randomId, testAuth, testCheck } from "./helpers";

const h = new Harness();
afterEach(() => h.teardown());

test("the creating join registers the check; later joins with the same token get it in Sync", async () => {
  await h.start();
  const sessionId = randomId();
  const a = await h.connect();
  const b = await h.connect();
  const first = await a.join({ sessionId, auth: testAuth("right") });
  const second = await b.join({ sessionId, auth: testAuth("right") });
  expect(Buffer.from(first.sync.auth).toString()).toBe(Buffer.from(testCheck("right")).toString());
  expect(Buffer.from(second.sync.auth)).toEqual(Buffer.from(first.sync.auth));
});

test("a join with another token is refused with AuthFailed before it joins: members see no view-join", async () => {
  await h.start();
  const sessionId = randomId();
  const member = await h.connect();
  await member.join({ sessionId, auth: testAuth("right") });
  const intruder = await h.connect();
  intruder.send({ type: MessageType.Join, sessionId, persistentId: randomId(), viewId: randomId(), tps: 20, auth: testAuth("wrong"), viewData: new Uint8Array(0) });
  const error = await intruder.nextOf(MessageType.Error);
  expect(error.code).toBe(CloseCode.AuthFailed);
  expect(error.message).toMatch(/wrong password/);
  expect((await intruder.close(false)).code).toBe(CloseCode.AuthFailed);
  // The member's stream goes on without the intruder: its next entry is its own message.
  member.send({ type: MessageType.Send, payload: Uint8Array.of(1, 2, 3) });
  const next = await member.nextEntry();
  expect(next.type).toBe(MessageType.Relay);
});

test("a join without auth, or with malformed auth, is AuthFailed", async () => {
  await h.start();
  for (const auth of [new Uint8Array(0), Uint8Array.of(1, 2, 3)]) {
    const c = await h.connect();
    c.sendRaw(encodeClientMessage({ type: MessageType.Join, sessionId: randomId(), persistentId: randomId(), viewId: randomId(), tps: 20, auth, viewData: new Uint8Array(0) }));
    expect((await c.nextOf(MessageType.Error)).code).toBe(CloseCode.AuthFailed);
  }
});
