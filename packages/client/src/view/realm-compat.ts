import type { Model } from "../kernel/model";

/**
 * What Croquet apps read of the session's controller, as `view.realm.vm.controller` — in status
 * displays and frame loops, every frame. Read-only figures, safe to read at any moment (before
 * the join completes, while reconnecting, after leaving): they never throw.
 */
export interface CroquetController {
  /** The sessionId. */
  readonly id: string;
  readonly persistentId: string;
  readonly versionId: string;
  /** This client's view id. */
  readonly viewId: string;
  /** The object `Session.join` resolved with. */
  readonly session: unknown;
  /** Ms of session time heard from the reflector that the replica has not simulated yet. */
  readonly backlog: number;
  /** Ms since anything was last heard from the reflector. */
  readonly starvation: number;
  /** Ms the replica trails the extrapolated session time, beyond one tick period. */
  readonly lag: number;
  /** Views in the session now (as this replica has processed their joins and exits). */
  readonly users: number;
  /** The same as {@link users}: Lockstep has no spectators. */
  readonly usersTotal: number;
  /** Whether the session is live (caught up and connected): what the `synced` view event last said. */
  readonly synced: boolean;
  /** Whether the session is connected to its reflector. */
  readonly connected: boolean;
  /** The reflector's time as last heard (ms of session time). */
  readonly reflectorTime: number;
  /** {@link reflectorTime} plus the local time elapsed since it was heard. */
  readonly extrapolatedTime: number;
  /** Ms between the reflector's ticks (1000 / tps). */
  readonly msPerTick: number;
  /** Local ticks per reflector tick (`tps: "10x3"` → 3). */
  readonly tickMultiplier: number;
  /**
   * The connection, for apps that look at it: `connected`, and a `pongHook` that may be set (Lockstep
   * never calls it: there is no time-sync ping for apps).
   */
  readonly connection: { readonly connected: boolean; pongHook?: (args: unknown) => void };
}

/** What Croquet apps read as `view.realm.vm`: the replica, as far as views may see it. */
export interface CroquetVM {
  readonly controller: CroquetController;
  /** The sessionId. */
  readonly id: string;
  /** Model time now (ms): what `view.now()` says. */
  readonly time: number;
  /** The model registered under `name` (`"modelRoot"`: the root model). */
  get(name: string): Model | undefined;
}

/** `view.realm`, as Croquet apps use it: the session a view belongs to. */
export interface CroquetViewRealm {
  readonly vm: CroquetVM;
}
