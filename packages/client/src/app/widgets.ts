import { WidgetDock } from "./dock";
import type { WidgetDockOptions } from "./dock";
import { browserDocument, widgetParent } from "./dom";
import { MessageFilter, isMessageLevel, messageDuration } from "./messages";
import type { ShowMessageOptions } from "./messages";
import { showSyncOverlay } from "./sync-overlay";
import { showToast } from "./toasts";
import type { SetTimer } from "./toasts";

/** The `App` settings the widgets read each time they draw. */
export interface WidgetSettings {
  /** Where widgets go; `null` for `<body>`. */
  readonly root: HTMLElement | null;
  /** Show statuses and warnings (errors always show). */
  readonly messages: boolean;
  /** Show the session badge in the dock. */
  readonly badge: boolean;
  /** The join link, for the QR code. */
  readonly sessionURL: string;
}

/** The session the widgets show. */
interface ShownSession {
  readonly sessionId: string;
  readonly name: string;
}

/**
 * The App widgets of one document: the sync overlay, toasts and the widget dock, and what they
 * remember (the current session, `only: "once"` messages). Created lazily, on first use.
 */
export class BrowserWidgets {
  readonly #doc: Document;
  readonly #settings: WidgetSettings;
  readonly #setTimer: SetTimer;
  readonly #filter = new MessageFilter();
  #dock: WidgetDock | undefined;
  #session: ShownSession | undefined;

  constructor(doc: Document, settings: WidgetSettings, setTimer: SetTimer = (fn, ms) => globalThis.setTimeout(fn, ms)) {
    this.#doc = doc;
    this.#settings = settings;
    this.#setTimer = setTimer;
  }

  /** A toast, unless filtered out (see `App.showMessage`). */
  showMessage(text: string, options: ShowMessageOptions): void {
    const level = isMessageLevel(options.level) ? options.level : "status";
    const message = String(text);
    if (!this.#filter.admit(message, level, options.only === "once", this.#settings.messages)) return;
    showToast(this.#doc, this.#parent(), level, message, messageDuration(level, options.duration), this.#setTimer);
  }

  /** Shows, updates or removes the sync overlay. */
  showSyncWait(show: boolean, progress: number | undefined): void {
    showSyncOverlay(this.#doc, this.#parent(), show, progress);
  }

  /** Replaces the dock (if any) with a new one, showing the current session if there is one. */
  makeWidgetDock(options: WidgetDockOptions): HTMLElement {
    this.#dock?.remove();
    this.#dock = new WidgetDock(this.#doc, this.#parent(), options);
    this.#refreshDock();
    return this.#dock.element;
  }

  /** A session joined (or the app asked to show one): the dock shows its badge and QR code. */
  showSession(sessionId: string, name?: string): void {
    const known = this.#session?.sessionId === sessionId ? this.#session.name : undefined;
    this.#session = { sessionId, name: name ?? known ?? this.#nameFromUrl() ?? sessionId.slice(0, 8) };
    this.#refreshDock();
  }

  /** A session ended: the overlay goes, and the dock forgets it if it was the one shown. */
  ended(sessionId: string): void {
    this.showSyncWait(false, undefined);
    if (this.#session?.sessionId !== sessionId) return;
    this.#session = undefined;
    this.#refreshDock();
  }

  #refreshDock(): void {
    const dock = this.#dock;
    if (!dock) return;
    // The app may have replaced its page content (and the dock with it): put it back.
    if (!dock.element.isConnected) this.#parent().appendChild(dock.element);
    const session = this.#session;
    dock.show(session && { ...session, url: this.#settings.sessionURL, badge: this.#settings.badge });
  }

  #parent(): HTMLElement {
    return widgetParent(this.#doc, this.#settings.root);
  }

  #nameFromUrl(): string | undefined {
    try {
      return new URL(this.#settings.sessionURL).searchParams.get("q") ?? undefined;
    } catch {
      return undefined;
    }
  }
}

// One set of widgets per document (in practice, the page's): keyed weakly so nothing outlives it.
const perDocument = new WeakMap<Document, BrowserWidgets>();

/** The widgets of the page's document, created on first use; `undefined` outside a browser. */
export function pageWidgets(settings: WidgetSettings): BrowserWidgets | undefined {
  const doc = browserDocument();
  if (!doc) return undefined;
  let widgets = perDocument.get(doc);
  if (!widgets) {
    widgets = new BrowserWidgets(doc, settings);
    perDocument.set(doc, widgets);
  }
  return widgets;
}
