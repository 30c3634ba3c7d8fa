import { DecryptionError } from "./crypto";
import { ReplayError } from "../errors";
import type { DivergenceReport } from "./snapshots";
import type { ViewDomain } from "../view/domain";
import { topicOf } from "../kernel/vm";

/**
 * How a session tells the app what went wrong: console lines, and view events in the session's
 * scope (`"error"`, `"divergence"`) that views can subscribe to.
 */
export class SessionReporter {
  readonly #domain: ViewDomain;
  readonly #sessionId: string;
  readonly #debug: ReadonlySet<string>;
  #rejected = 0;
  #replayed = 0;

  constructor(domain: ViewDomain, sessionId: string, debug: ReadonlySet<string>) {
    this.#domain = domain;
    this.#sessionId = sessionId;
    this.#debug = debug;
  }

  /** Model code threw, a handler failed, or a relayed payload did not open or was a replay. */
  error(context: string, error: unknown): void {
    if (error instanceof DecryptionError) this.#decryptionFailed(context, error);
    else if (error instanceof ReplayError) this.#replayDropped(context, error);
    else console.error(`[Lockstep] error in ${context}:`, error);
  }

  /**
   * A relayed payload opened but was not new (a repeat, or from an older connection of its view):
   * every replica dropped it at the same point. Reported once per session, like a payload that
   * failed authentication: someone with access to the traffic is re-sending it.
   */
  #replayDropped(context: string, error: ReplayError): void {
    if (++this.#replayed > 1) return;
    const sessionId = this.#sessionId;
    console.warn(`[Lockstep] dropped ${context}: ${error.message} (someone re-sent captured traffic). Further replays are dropped silently.`);
    this.#domain.deliver(topicOf(sessionId, "error"), { kind: "replay", context, message: error.message, sessionId });
  }

  /**
   * A relayed payload or view data failed authentication: it was dropped before model code saw it
   * (identically on every replica that received the same bytes). Reported once per session: a
   * warning in the console and a `(sessionId, "error")` event for views.
   */
  #decryptionFailed(context: string, error: DecryptionError): void {
    if (++this.#rejected > 1) return;
    const sessionId = this.#sessionId;
    console.warn(`[Lockstep] dropped ${context}: it failed authentication (tampered, or sent without the session key). Further ones are dropped silently.`);
    this.#domain.deliver(topicOf(sessionId, "error"), { kind: "decryption", context, message: error.message, sessionId });
  }

  /** Snapshot votes differed: a `(sessionId, "divergence")` event, and a console line if this replica diverged. */
  divergence(report: DivergenceReport): void {
    if (report.diverged) {
      console.error(`[Lockstep] this replica diverged from the session at #${report.seq}: its state differs from the majority's. Model code must be deterministic.`);
    } else if (this.#debug.has("session")) {
      console.warn(`[Lockstep] another replica diverged from the session at #${report.seq}`);
    }
    this.#domain.deliver(topicOf(this.#sessionId, "divergence"), report);
  }
}
