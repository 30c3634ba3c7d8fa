/**
 * What a session tells the page about itself while it joins, runs, reconnects and fails. In
 * browsers the App widgets implement it (spinner, badge, QR code, toasts); in Node nothing does.
 */
export interface SessionUi {
  /** Joining or rejoining: the "catching up" spinner, with progress 0–1 once it is known. */
  syncing(progress: number | undefined): void;
  /** Joined (or rejoined): the spinner goes away, the badge and QR code show this session. */
  joined(info: SessionUiInfo): void;
  /** Something the user should know: a status line, a warning or an error (toasts). */
  message(level: MessageLevel, text: string): void;
  /** The session ended (left, or failed for good): its widgets go away. */
  ended(sessionId: string): void;
  /** A joined session's numbers for the stats widget (`croquet_stats`), sampled by it each frame it shows. */
  stats?(sessionId: string, source: SessionStatsSource): void;
}

/** What the stats widget reads of a session, live (each call gives the value now). */
export interface SessionStatsSource {
  /** Views in the session. */
  users(): number;
  /** How far the replica's model time trails the latest reflector time heard, in ms (catching up). */
  backlog(): number;
  /** How long since the reflector was last heard (a message or a tick), in ms: the network stalling. */
  starvation(): number;
}

/** How serious a message is. */
export type MessageLevel = "status" | "warning" | "error";

/** What the widgets show about a joined session. */
export interface SessionUiInfo {
  readonly sessionId: string;
  readonly persistentId: string;
  readonly name: string;
  readonly viewId: string;
}
