/**
 * The controller's asynchronous boot (bulk data is decrypted with WebCrypto before the VM exists),
 * against a scripted fake reflector: what arrives while a Sync is being decrypted is handled after
 * the boot, in order; a Sync that does not open fails the join; a boot whose connection went
 * meanwhile is dropped.
 */
import { MessageType } from "@lockstep/protocol";
import { JoinError } from "../src/errors";
import { Model } from "../src/kernel/model";
import { deriveSessionKeys, sealBulk, slotBulkKey, slotKeys } from "../src/session/crypto";
import { sessionSlotOf } from "../src/session/persist-uploads";
import { Replica } from "../src/session/replica";
import { View } from "../src/view/view";
import { syncFor, viewJoin } from "./fake-socket";
import { clock, fakeClient, joinFake, rejectionOf, rejoinAfterBackoff, startJoin, useControllerHarness, waitFor, type FakeClient } from "./controller-harness";

useControllerHarness();

/** Keeps what `init` was given to start from, and who joined, in order. */
class Stash extends Model {
  persisted: unknown = null;
  members: string[] = [];
  override init(_options: unknown, persisted?: unknown): void {
    this.persisted = persisted ?? null;
    this.subscribe(this.sessionId, "view-join", this.joined);
  }
  joined(viewId: string): void {
    this.members.push(viewId);
  }
}
Stash.register("ControllerBootTest.Stash");

const utf8 = new TextEncoder();

/** The base slot's data as this client's persister would have sealed it (a version-2 envelope). */
async function persistedFor(f: FakeClient, data: unknown): Promise<Uint8Array> {
  const { persistMaster } = await deriveSessionKeys("pw", f.c.identity.persistentId, f.c.identity.sessionId);
  const slot = sessionSlotOf(persistMaster);
  return sealBulk(await slotBulkKey(persistMaster, slot, slotKeys(persistMaster, slot).enc), utf8.encode(JSON.stringify(data)));
}

/** Records the promises Replica.open returns, so a test can wait for a decryption to finish. */
function watchOpens(): Array<Promise<unknown>> {
  const opens: Array<Promise<unknown>> = [];
  const original = Replica.open.bind(Replica);
  jest.spyOn(Replica, "open").mockImplementation((...args) => {
    const p = original(...args);
    opens.push(p.catch(() => undefined));
    return p;
  });
  return opens;
}

afterEach(() => jest.restoreAllMocks());

test("a Sync with bulk data boots once it is decrypted; frames delivered meanwhile are handled after the boot, in order", async () => {
  const f = await fakeClient({ model: Stash, view: View });
  const { joining, socket } = await startJoin(f);
  const persisted = await persistedFor(f, { notes: ["kept"] });
  expect(persisted[0]).toBe(2);
  socket.deliver(syncFor(socket.join, { persisted }));
  // Delivered while the Sync is being decrypted: not dropped, not reordered.
  socket.deliver(viewJoin(1, "other-view"));
  socket.deliver({ type: MessageType.Tick, time: 1100 });
  socket.deliver(viewJoin(2, f.c.viewId));
  expect(f.c.state).toBe("syncing");
  expect(f.c.rootModel).toBeUndefined();
  await joining;
  expect(f.c.state).toBe("joined");
  const model = f.c.rootModel as Stash;
  expect(model.persisted).toEqual({ notes: ["kept"] });
  expect(model.members).toEqual(["other-view", f.c.viewId]);
});

test("a fresh Sync with nothing encrypted boots at once (no decryption to wait for)", async () => {
  const f = await fakeClient({ model: Stash, view: View });
  const opens = watchOpens();
  const { socket } = await startJoin(f);
  socket.deliver(syncFor(socket.join, { entries: [viewJoin(1, "other-view")] }));
  expect((f.c.rootModel as Stash).members).toEqual(["other-view"]);
  expect(opens).toHaveLength(0);
});

test("persisted data that does not open fails the join with its JoinError; frames delivered meanwhile change nothing", async () => {
  const f = await fakeClient({ model: Stash, view: View });
  const { joining, socket } = await startJoin(f);
  const persisted = await persistedFor(f, { notes: ["x"] });
  persisted[persisted.length - 3]! ^= 0x01;
  socket.deliver(syncFor(socket.join, { persisted }));
  socket.deliver(viewJoin(1, f.c.viewId));
  const error = await rejectionOf(joining);
  expect(error).toBeInstanceOf(JoinError);
  expect((error as Error).message).toMatch(new RegExp(`^the persisted data of persistentId ${f.c.identity.persistentId} could not be decrypted`));
  expect(f.c.rootModel).toBeUndefined();
});

test("a boot whose connection is lost while decrypting is dropped; the rejoin boots from its own Sync", async () => {
  const f = await fakeClient({ model: Stash, view: View });
  const first = await joinFake(f);
  const opens = watchOpens();
  first.closed(1006);
  expect(f.c.state).toBe("disconnected");
  const second = await rejoinAfterBackoff(f);
  // This connection's Sync brings bulk data; it is lost before the data is decrypted.
  second.deliver(syncFor(second.join, { persisted: await persistedFor(f, { from: "lost connection" }), entries: [viewJoin(1, f.c.viewId)] }));
  second.deliver(viewJoin(2, f.c.viewId));
  expect(opens).toHaveLength(1);
  second.closed(1006);
  expect(f.c.state).toBe("disconnected");
  await opens[0];
  await clock.settle();
  expect(f.c.state).toBe("disconnected"); // the decrypted Sync booted nothing
  const third = await rejoinAfterBackoff(f, 1);
  third.deliver(syncFor(third.join, { entries: [viewJoin(1, f.c.viewId)] }));
  third.deliver(viewJoin(2, f.c.viewId));
  await waitFor(() => f.c.state === "joined", "the third connection is joined");
  expect((f.c.rootModel as Stash).persisted).toBeNull();
  expect((f.c.rootModel as Stash).members).toEqual([f.c.viewId, f.c.viewId]);
});
