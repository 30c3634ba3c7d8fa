import type { Timers } from "@lockstep/protocol";
import type { Model } from "../kernel/model";
import type { VirtualMachine } from "../kernel/vm";
import type { CroquetController, CroquetVM, CroquetViewRealm } from "../view/realm-compat";
import { replicaOf, type ControllerState } from "./states";
import type { Stream } from "./stream";
import type { TickRate } from "./tps";

/** What the compatibility realm reads of its session. */
export interface CompatHost {
  readonly state: ControllerState;
  readonly session: unknown;
  readonly stream: Stream;
  readonly timers: Timers;
  readonly rate: TickRate;
  readonly ids: { readonly sessionId: string; readonly persistentId: string; readonly versionId: string; readonly viewId: string };
}

/**
 * `view.realm` for Croquet apps (`view.realm.vm.controller.backlog`, `.starvation`, `.users`,
 * `view.realm.vm.time`): live read-only figures over the session, computed when read. Every
 * getter works in every state of the session (zeros where there is no replica yet) and never
 * throws, since apps read them from their frame loops.
 */
export class CompatRealm implements CroquetViewRealm {
  readonly vm: CroquetVM;

  constructor(host: CompatHost) {
    const vmNow = (): VirtualMachine | undefined => replicaOf(host.state)?.vm;
    const live = (): boolean => host.state.kind === "joined";
    const connection = {
      get connected(): boolean {
        return live();
      },
      pongHook: undefined as ((args: unknown) => void) | undefined,
    };
    const controller: CroquetController = {
      get id() {
        return host.ids.sessionId;
      },
      get persistentId() {
        return host.ids.persistentId;
      },
      get versionId() {
        return host.ids.versionId;
      },
      get viewId() {
        return host.ids.viewId;
      },
      get session() {
        return host.session;
      },
      get backlog() {
        const vm = vmNow();
        return vm ? Math.max(0, host.stream.externalTime - vm.time) : 0;
      },
      get starvation() {
        return Math.max(0, host.timers.now() - host.stream.heardAt);
      },
      get lag() {
        const vm = vmNow();
        return vm ? Math.max(0, host.stream.extrapolatedTime() - vm.time - 1000 / host.rate.tps) : 0;
      },
      get users() {
        return vmNow()?.viewCount ?? 0;
      },
      get usersTotal() {
        return vmNow()?.viewCount ?? 0;
      },
      get synced() {
        return live();
      },
      get connected() {
        return live();
      },
      get reflectorTime() {
        return host.stream.externalTime;
      },
      get extrapolatedTime() {
        return host.stream.extrapolatedTime();
      },
      get msPerTick() {
        return 1000 / host.rate.tps;
      },
      get tickMultiplier() {
        return host.rate.multiplier;
      },
      connection,
    };
    this.vm = {
      controller,
      get id() {
        return host.ids.sessionId;
      },
      get time() {
        return vmNow()?.time ?? 0;
      },
      get(name: string): Model | undefined {
        return vmNow()?.wellKnownModel(name);
      },
    };
  }
}
