/**
 * A tiny replicated model for the reflector's process-level tests with real clients: every
 * `add` it hears is kept in order, so a replica's `items` is exactly the stream it applied.
 */
import { Model, Session, View, type LockstepSession, type SocketFactory } from "@lockstep/client";

export class Tally extends Model {
  items: string[] = [];
  override init(): void {
    this.subscribe("tally", "add", this.add);
  }
  add(item: string): void {
    this.items.push(item);
  }
}
Tally.register("ReflectorTest.Tally");

export class TallyView extends View {}

export type TallySession = LockstepSession<Tally, TallyView>;

/** Joins session `name` of the tally app on `reflector`, optionally over a socket factory of the test's. */
export async function joinTally(reflector: string, name: string, socket?: SocketFactory): Promise<TallySession> {
  return (await Session.join({
    appId: "test.lockstep.reflector.tally",
    name,
    password: "pw",
    model: Tally,
    view: TallyView,
    reflector,
    ...(socket ? { socket } : {}),
  })) as TallySession;
}

/** Publishes one `add` from a session's root view. */
export function add(session: TallySession, item: string): void {
  session.view.publish("tally", "add", item);
}
