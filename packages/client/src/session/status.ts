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

/**
 * Tells the app about status changes: `session.status` listeners, and Multisynq's `synced` view
 * event in the session's scope — `true` once caught up and live, `false` when the connection is
 * lost. Both are delivered at once, not at the next frame (no frames run while disconnected).
 */
export class StatusNotifier {
  readonly #domain: ViewDomain;
  readonly #syncedTopic: string;
  readonly #reportError: (context: string, error: unknown) => void;
  readonly #listeners = new Set<(status: SessionStatus) => void>();
  #status: SessionStatus = "connecting";

  constructor(domain: ViewDomain, sessionId: string, reportError: (context: string, error: unknown) => void) {
    this.#domain = domain;
    this.#syncedTopic = topicOf(sessionId, "synced");
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
    if (wasLive !== live && next.kind !== "left") this.#domain.notify(this.#syncedTopic, live);
    if (!changed) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(status);
      } catch (error) {
        this.#reportError("session status listener", error);
      }
    }
  }
}
