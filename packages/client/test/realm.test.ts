import { ViewDomain } from "../src/view/domain";
import { SessionRealm, type RealmHost } from "../src/session/realm";
import type { Publisher } from "../src/session/publisher";
import type { Replica } from "../src/session/replica";
import type { ControllerState } from "../src/session/states";

/** A realm over a host in `state`, with a publisher that records whether each publish went out live. */
function realmIn(state: ControllerState): { realm: SessionRealm; sentLive: boolean[] } {
  const sentLive: boolean[] = [];
  const publisher = { publish: (_s: string, _e: string, _d: unknown, _o: unknown, send: unknown) => (sentLive.push(send !== undefined), true) } as unknown as Publisher;
  const host: RealmHost = { state, session: undefined, stream: undefined as never, publisher, wake: () => {} };
  return { realm: new SessionRealm("v1", "s1", new ViewDomain(() => {}), host), sentLive };
}

const replica = { hasJoined: true } as unknown as Replica;
const screen = { replica, rootView: undefined };

test("publishing is live when joined and while the root view is built, queued while a resume catches up or while reconnecting", () => {
  const cases: Array<[string, ControllerState, boolean]> = [
    ["joined", { kind: "joined", replica, rootView: undefined as never, stopLoop: () => {} }, true],
    ["building the root view after the own view-join", { kind: "syncing", pending: undefined, screen: undefined, replica }, true],
    // The old connection's unconfirmed sends go first once the resume caught up; a publish now would overtake them.
    ["catching up after a resume", { kind: "syncing", pending: undefined, screen, replica, resumeAt: 9 }, false],
    ["disconnected", { kind: "disconnected", screen }, false],
  ];
  for (const [name, state, live] of cases) {
    const { realm, sentLive } = realmIn(state);
    realm.publish("room", "write", name);
    expect({ name, live: sentLive }).toEqual({ name, live: [live] });
  }
  expect(() => realmIn({ kind: "left", screen: undefined }).realm.publish("room", "write", "x")).toThrow('cannot publish "room:write": the session is left');
});
