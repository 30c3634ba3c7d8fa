import { DecryptionError } from "./crypto";
import { ReplayError } from "../errors";
import type { DivergenceReport } from "./snapshots";
import type { ViewDomain } from "../view/domain";
import { topicOf } from "../kernel/vm";
import type { SessionIdentity } from "../kernel/identity";
import type { JoinParameters } from "./join";
import { CloseCode } from "@lockstep/protocol";

/** What the page says when the reflector closed a joined session's connection for a reason worth naming (it rejoins either way). */
const LOST_BECAUSE: ReadonlyMap<number, string> = new Map([
  [CloseCode.LogFull, "The session's log is full until a snapshot succeeds: reconnecting…"],
  [CloseCode.RateLimited, "Sending faster than the reflector allows: reconnecting…"],
  [CloseCode.Overloaded, "The reflector is at capacity: reconnecting…"],
  [CloseCode.ServerShutdown, "The reflector is shutting down: reconnecting…"],
]);

/**
 * How a session tells the app what happened to it: UI and console lines, and view events in the session's
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

  /** This client's own view-join was processed (`rejoinedAt`: the seq, on a rejoin): the UI shows it. */
  joined(p: JoinParameters, id: SessionIdentity, viewId: string, rejoinedAt: number | undefined, resumed = false): void {
    p.ui?.joined({ sessionId: id.sessionId, persistentId: id.persistentId, name: p.name, viewId });
    if (rejoinedAt === undefined) return;
    p.ui?.message("status", "Reconnected");
    if (this.#debug.has("session")) console.log(`[Lockstep] ${resumed ? "Resumed" : "Rejoined"} session ${id.sessionId} at #${rejoinedAt}`);
  }

  /** Catching up: `fraction` of the history is processed (1: joined). */
  progress(p: JoinParameters, fraction: number): void {
    p.progressReporter?.(fraction);
    if (fraction < 1) p.ui?.syncing(fraction);
  }

  /**
   * The connection dropped (`wasLive`: while joined, not during a rejoin attempt). `moved`: a
   * cluster moved the session to another node (a redirect, a moved session); that is no trouble,
   * so the page says it is reconnecting, with no warning.
   */
  connectionLost(p: JoinParameters, detail: string, wasLive: boolean, moved = false, code?: number): void {
    if (wasLive && moved) p.ui?.message("status", "Reconnecting…");
    else if (wasLive) {
      console.warn(`[Lockstep] lost the connection to the reflector (${detail}); reconnecting`);
      p.ui?.message("warning", (code === undefined ? undefined : LOST_BECAUSE.get(code)) ?? "Connection lost: reconnecting…");
    }
    p.ui?.syncing(undefined);
  }

  /** `?debug=session`: where a cluster sent the session, and why. */
  moved(line: string): void {
    if (this.#debug.has("session")) console.log(`[Lockstep] ${line}`);
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

  /**
   * Snapshot votes differed (or a diverged replica was rebuilt): a `(sessionId, "divergence")`
   * event, and a console line if this replica diverged or nobody could tell.
   */
  divergence(report: DivergenceReport): void {
    if (report.repaired) {
      console.warn(`[Lockstep] this replica was rebuilt from the session's state after diverging at #${report.seq}`);
    } else if (report.diverged) {
      console.error(
        `[Lockstep] this replica diverged from the session at #${report.seq}: its state differs from the majority's; rebuilding it from the session's state. Model code must be deterministic, and views must not write model state (find the write with ?debug=write).`,
      );
    } else if (report.split) {
      console.warn(`[Lockstep] the replicas disagree at #${report.seq} and no majority can tell which is right: model code must be deterministic (try ?debug=write to find view code writing model state)`);
    } else if (this.#debug.has("session")) {
      console.warn(`[Lockstep] another replica diverged from the session at #${report.seq}`);
    }
    // At once: a diverged replica is rebuilt right after, and its views must hear why first.
    this.#domain.notify(topicOf(this.#sessionId, "divergence"), report);
  }
}
