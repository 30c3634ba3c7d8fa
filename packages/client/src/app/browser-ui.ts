import { App } from "./app";
import { browserDocument } from "./dom";
import { pageWidgets } from "./widgets";
import type { SessionUi, SessionUiInfo, MessageLevel, SessionStatsSource } from "../session/ui";

/**
 * The browser's {@link SessionUi}: the App widgets, as a session drives them. `syncing` shows the
 * spinner (if `App.sync`), `joined` hides it and puts the session in the widget dock, `message`
 * makes a toast (subject to `App.messages`), `ended` hides the spinner and clears the dock.
 * Returns `undefined` where there is no `document` (Node, workers). Its methods never throw: a
 * broken widget must not break the session that reports to it.
 *
 * @example
 * ```ts
 * const ui = createBrowserUi();
 * ui?.syncing(0.4); // "Catching up… 40%"
 * ```
 */
export function createBrowserUi(): SessionUi | undefined {
  if (!browserDocument()) return undefined;
  return {
    syncing(progress: number | undefined): void {
      guarded(() => {
        if (App.sync) App.showSyncWait(true, progress);
      });
    },
    joined(info: SessionUiInfo): void {
      guarded(() => {
        App.showSyncWait(false);
        pageWidgets(App)?.showSession(info.sessionId, info.name);
      });
    },
    message(level: MessageLevel, text: string): void {
      guarded(() => App.showMessage(text, { level }));
    },
    ended(sessionId: string): void {
      guarded(() => pageWidgets(App)?.ended(sessionId));
    },
    stats(sessionId: string, source: SessionStatsSource): void {
      guarded(() => pageWidgets(App)?.showStats(sessionId, source));
    },
  };
}

function guarded(draw: () => void): void {
  try {
    draw();
  } catch (error) {
    console.error("[Lockstep] session widget failed:", error);
  }
}
