import { topicOf } from "../kernel/vm";
import type { ViewDomain } from "../view/domain";
import type { ControllerState } from "./states";

/**
 * Where a session stands, as an app shows it: `connecting` (first join), `syncing` (catching up
 * on the history), `connected` (live), `reconnecting` (the connection was lost; rejoining with
 * backoff, input is queued), `disconnected` (asleep while the page is hidden) and `ended` (left, or
 * ended by a fatal error).
 */
export type SessionStatus = "connecting" | "syncing" | "connected" | "reconnecting" | "disconnected" | "ended";

/** The status an app sees in controller state `s`. */
export function statusOf(s: ControllerState): SessionStatus {
  switch (s.kind) {
    case "connecting":
      return s.pending === undefined ? "reconnecting" : "connecting";
    case "syncing":
      return s.replica === undefined && s.pending === undefined ? "reconnecting" : "syncing";
    case "joined":
      return "connected";
    case "disconnected":
      return "reconnecting";
    case "sleeping":
      return "disconnected";
    case "failed":
    case "left":
      return "ended";
  }
}

/** Live, a view has fallen behind after this long without hearing the reflector (or this much backlog), as in Croquet. */
export const FALLEN_BEHIND_MS = 2000;
/** ...and is in sync again once both are below this. */
export const CAUGHT_UP_MS = 200;

/**
 * Tells the app about status changes: `session.status` listeners, and Multisynq's `synced` view
 * event — `true` once caught up and live, `false` when the connection is lost or, while still
 * connected, the view falls behind (nothing heard from the reflector for 2 s, or 2 s of backlog;
 * `true` again once caught up) — in this client's `viewId` scope (where Croquet publishes it) and
 * in the session's scope. Values alternate: never two `true`s or two `false`s in a row. Delivered
 * at once, not at the next frame (no frames run while disconnected).
 */
export class StatusNotifier {
  readonly #domain: ViewDomain;
  readonly #syncedTopics: readonly string[];
  readonly #reportError: (context: string, error: unknown) => void;
  readonly #listeners = new Set<(status: SessionStatus) => void>();
  #status: SessionStatus = "connecting";
  /** What the synced event last said. */
  #synced = false;
  /** Live, but fallen behind (see {@link frame}). */
  #behind = false;

  constructor(domain: ViewDomain, sessionId: string, reportError: (context: string, error: unknown) => void, viewId?: string) {
    this.#domain = domain;
    this.#syncedTopics = [sessionId, ...(viewId === undefined ? [] : [viewId])].map((scope) => topicOf(scope, "synced"));
    this.#reportError = reportError;
  }

  get status(): SessionStatus {
    return this.#status;
  }

  /** Calls `listener(status)` on every change; returns a function that stops it. */
  on(listener: (status: SessionStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The controller moved from `prev` to `next`. */
  changed(prev: ControllerState, next: ControllerState): void {
    const wasLive = prev.kind === "joined";
    const live = next.kind === "joined";
    const status = statusOf(next);
    const changed = status !== this.#status;
    // First the new status, so a synced handler that reads session.status sees the one that goes with it.
    this.#status = status;
    // Views of a session that ended are detached: they hear nothing more.
    if (wasLive !== live) this.#behind = false;
    if (next.kind !== "left") this.#sync(live);
    if (!changed) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(status);
      } catch (error) {
        this.#reportError("session status listener", error);
      }
    }
  }

  /**
   * A frame ran while live: `starvedMs` since the reflector was last heard, `backlogMs` of heard
   * session time not simulated yet. Past {@link FALLEN_BEHIND_MS} the view has fallen behind
   * (synced false), below {@link CAUGHT_UP_MS} it is in sync again.
   */
  frame(starvedMs: number, backlogMs: number): void {
    if (this.#status !== "connected") return;
    if (!this.#behind && (starvedMs > FALLEN_BEHIND_MS || backlogMs > FALLEN_BEHIND_MS)) this.#behind = true;
    else if (this.#behind && starvedMs < CAUGHT_UP_MS && backlogMs < CAUGHT_UP_MS) this.#behind = false;
    this.#sync(!this.#behind);
  }

  #sync(value: boolean): void {
    if (value === this.#synced) return;
    this.#synced = value;
    for (const topic of this.#syncedTopics) this.#domain.notify(topic, value);
  }
}
