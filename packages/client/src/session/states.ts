import type { View } from "../view/view";
import type { Replica } from "./replica";

/** The pending `Session.join` promise of a first join. */
export interface PendingJoin {
  resolve(): void;
  reject(error: Error): void;
}

/** What the app sees of a session that is not live: the last replica booted, and its root view if one was built. */
export interface OnScreen {
  readonly replica: Replica;
  readonly rootView: View | undefined;
}

/**
 * Where a session is, and what it holds there. `pending` is the first join's promise: a state
 * without one was joined before (a lost connection rejoins it).
 */
export type ControllerState =
  /**
   * Opening a socket and sending the Join; on a rejoin the old views stay on screen meanwhile. A
   * first join that a cluster moved on (a redirect, a moved session) waits here for its next attempt.
   */
  | { readonly kind: "connecting"; readonly pending: PendingJoin | undefined; readonly screen: OnScreen | undefined }
  /**
   * The Join was sent; `replica` once the Sync booted one (it replaces what was on screen), catching
   * up. A resumed Sync keeps the replica and root view on screen instead: `resumeAt` is its seq,
   * where the session is live again.
   */
  | {
      readonly kind: "syncing";
      readonly pending: PendingJoin | undefined;
      readonly screen: OnScreen | undefined;
      readonly replica: Replica | undefined;
      readonly resumeAt?: number;
    }
  /** Live: this client's own view-join was processed and the root view built. */
  | { readonly kind: "joined"; readonly replica: Replica; readonly rootView: View; readonly stopLoop: () => void }
  /** The connection was lost; a rejoin is scheduled. */
  | { readonly kind: "disconnected"; readonly screen: OnScreen | undefined }
  /** The page is hidden; rejoins when it is visible again. */
  | { readonly kind: "sleeping"; readonly screen: OnScreen | undefined }
  /** Ended by a fatal error; the views stay until `leave()`. */
  | { readonly kind: "failed"; readonly screen: OnScreen | undefined }
  /** Left, or the first join failed. */
  | { readonly kind: "left"; readonly screen: OnScreen | undefined };

export type ControllerStateKind = ControllerState["kind"];

/** The state of a session catching up on a connection. */
export type Syncing = Extract<ControllerState, { kind: "syncing" }>;

/** The replica the app sees in state `s`: the live one, or the last one booted. */
export function replicaOf(s: ControllerState): Replica | undefined {
  if (s.kind === "joined") return s.replica;
  if (s.kind === "syncing") return s.replica ?? s.screen?.replica;
  return s.screen?.replica;
}

/** The root view on screen in state `s` (none while a rejoin catches up after its Sync). */
export function rootViewOf(s: ControllerState): View | undefined {
  if (s.kind === "joined") return s.rootView;
  if (s.kind === "syncing" && s.replica && s.resumeAt === undefined) return undefined;
  return s.screen?.rootView;
}

/** What stays on screen when the connection of state `s` goes: the live replica and view, or what the last Sync booted. */
export function screenOf(s: ControllerState): OnScreen | undefined {
  if (s.kind === "joined") return { replica: s.replica, rootView: s.rootView };
  if (s.kind === "syncing" && s.replica && s.resumeAt === undefined) return { replica: s.replica, rootView: undefined };
  return s.screen;
}

/** The first join's promise, while it is pending. */
export function pendingOf(s: ControllerState): PendingJoin | undefined {
  return s.kind === "connecting" || s.kind === "syncing" ? s.pending : undefined;
}

/** Whether `s` is a session that was joined and is getting its connection back (publishing is dropped then, not refused). */
export function isRejoining(s: ControllerState): boolean {
  return s.kind === "disconnected" || s.kind === "sleeping" || ((s.kind === "connecting" || s.kind === "syncing") && s.pending === undefined);
}

/** The replica the connection of state `s` booted, while it is up. */
export function connectedReplicaOf(s: ControllerState): Replica | undefined {
  return s.kind === "joined" || s.kind === "syncing" ? s.replica : undefined;
}
