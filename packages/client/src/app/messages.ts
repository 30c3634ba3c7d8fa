import type { MessageLevel } from "../session/ui";

/** Options of `App.showMessage`. */
export interface ShowMessageOptions {
  /** How serious: `"status"` (default), `"warning"` or `"error"`. */
  readonly level?: MessageLevel;
  /**
   * How long a status or warning stays, in ms (defaults 3000 and 6000). Zero, negative or
   * `Infinity` keep it until clicked. Errors always stay until clicked.
   */
  readonly duration?: number;
  /** `"once"`: show this text (at this level) only the first time it is asked for. */
  readonly only?: "once";
}

/** Default display time of each level, in ms; `undefined` stays until clicked. */
export const DEFAULT_DURATION: Readonly<Record<MessageLevel, number | undefined>> = {
  status: 3000,
  warning: 6000,
  error: undefined,
};

/** How long a toast stays, in ms, or `undefined` to keep it until the user clicks it. */
export function messageDuration(level: MessageLevel, duration: number | undefined): number | undefined {
  if (level === "error") return undefined;
  const ms = duration ?? DEFAULT_DURATION[level];
  return ms === undefined || !(ms > 0) || !Number.isFinite(ms) ? undefined : ms;
}

/** At most this many distinct `only: "once"` messages are remembered (then the oldest is forgotten). */
const MAX_REMEMBERED = 500;

/**
 * Decides which messages become toasts: with `App.messages` off only errors do (a fatal error must
 * never be invisible), and an `only: "once"` message shows the first time only. Pure state, no
 * DOM: one per document.
 */
export class MessageFilter {
  readonly #seen = new Set<string>();

  /** Whether to show `text` now; remembers it if it is `once` and shown. */
  admit(text: string, level: MessageLevel, once: boolean, messagesEnabled: boolean): boolean {
    if (!messagesEnabled && level !== "error") return false;
    if (!once) return true;
    const key = `${level}\u0000${text}`;
    if (this.#seen.has(key)) return false;
    if (this.#seen.size >= MAX_REMEMBERED) {
      const oldest = this.#seen.values().next();
      if (!oldest.done) this.#seen.delete(oldest.value);
    }
    this.#seen.add(key);
    return true;
  }
}

/** Whether a value is a known message level (network and app input may carry anything). */
export function isMessageLevel(value: unknown): value is MessageLevel {
  return value === "status" || value === "warning" || value === "error";
}
