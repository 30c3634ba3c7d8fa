import { renderBadge } from "./badge";
import { WidgetDock } from "./dock";
import type { WidgetDockOptions } from "./dock";
import { browserDocument, settingElement, widgetParent } from "./dom";
import { MessageFilter, isMessageLevel, messageDuration } from "./messages";
import type { ShowMessageOptions } from "./messages";
import { renderQRCanvas } from "./qr";
import { StatsWidget } from "./stats";
import { showSyncOverlay } from "./sync-overlay";
import { showToast } from "./toasts";
import type { SetTimer } from "./toasts";
import { urlSwitch } from "./url-switches";
import type { SessionStatsSource } from "../session/ui";

/**
 * Where a widget goes, as `App.badge`, `App.qrcode` and `App.stats` say it (Croquet's settings):
 * `true` in the widget dock, `false` nowhere, or an element (or the id of one) to draw it into.
 */
export type WidgetPlace = boolean | HTMLElement | string;

/** The `App` settings the widgets read each time they draw. */
export interface WidgetSettings {
  /** Where widgets go: an element or its id; `null` for `<body>`; `false`: no widgets at all. */
  readonly root: HTMLElement | string | false | null;
  /** Show statuses and warnings (errors always show). */
  readonly messages: boolean;
  /** Where the session badge goes. */
  readonly badge: WidgetPlace;
  /** Where the QR code of the join link goes. */
  readonly qrcode: WidgetPlace;
  /** Where the stats widget goes (`true`: in the dock, even if its options did not ask). */
  readonly stats: WidgetPlace;
  /** The join link, for the QR code. */
  readonly sessionURL: string;
}

/** The session the widgets show. */
interface ShownSession {
  readonly sessionId: string;
  readonly name: string;
  /** Its numbers, once it told them (`SessionUi.stats`). */
  stats: SessionStatsSource | undefined;
}

/** Pixel size of a QR code drawn into the app's own element. */
const QR_SIZE = 128;

/**
 * The App widgets of one document: the sync overlay, toasts, the widget dock and widgets drawn
 * into the app's own elements, and what they remember (the current session, `only: "once"`
 * messages). Created lazily, on first use. `App.root = false` and the URL switches (`?nodock`,
 * `?noqr`, `?nostats`, `?nomessages`) are read each time something is drawn.
 */
export class BrowserWidgets {
  readonly #doc: Document;
  readonly #settings: WidgetSettings;
  readonly #setTimer: SetTimer;
  readonly #filter = new MessageFilter();
  #dock: WidgetDock | undefined;
  #session: ShownSession | undefined;
  /** The stats widget drawn into `App.stats`'s element, if any. */
  #ownStats: StatsWidget | undefined;

  constructor(doc: Document, settings: WidgetSettings, setTimer: SetTimer = (fn, ms) => globalThis.setTimeout(fn, ms)) {
    this.#doc = doc;
    this.#settings = settings;
    this.#setTimer = setTimer;
  }

  /** A toast, unless filtered out (see `App.showMessage`). */
  showMessage(text: string, options: ShowMessageOptions): void {
    const level = isMessageLevel(options.level) ? options.level : "status";
    const message = String(text);
    const parent = this.#parent();
    const messages = this.#settings.messages && !urlSwitch("nomessages");
    if (!parent || !this.#filter.admit(message, level, options.only === "once", messages)) return;
    showToast(this.#doc, parent, level, message, messageDuration(level, options.duration), this.#setTimer);
  }

  /** Shows, updates or removes the sync overlay. */
  showSyncWait(show: boolean, progress: number | undefined): void {
    const parent = this.#parent();
    // With no place for widgets (App.root = false) only removing is allowed.
    if (parent) showSyncOverlay(this.#doc, parent, show, progress);
    else if (!show) showSyncOverlay(this.#doc, this.#doc.documentElement, false, undefined);
  }

  /** Replaces the dock (if any) with a new one, showing the current session if there is one; null with `?nodock` or `App.root = false`. */
  makeWidgetDock(options: WidgetDockOptions): HTMLElement | null {
    this.#dock?.remove();
    this.#dock = undefined;
    const parent = this.#parent();
    if (!parent || urlSwitch("nodock")) return null;
    this.#dock = new WidgetDock(this.#doc, parent, options);
    this.#refresh();
    return this.#dock.element;
  }

  /** A session joined (or the app asked to show one): the dock and the app's elements show its badge, QR code and stats. */
  showSession(sessionId: string, name?: string): void {
    const known = this.#session?.sessionId === sessionId ? this.#session : undefined;
    this.#session = { sessionId, name: name ?? known?.name ?? this.#nameFromUrl() ?? sessionId.slice(0, 8), stats: known?.stats };
    this.#refresh();
  }

  /** The numbers of a joined session, for the stats widget. */
  showStats(sessionId: string, source: SessionStatsSource): void {
    if (this.#session?.sessionId !== sessionId) this.showSession(sessionId);
    if (this.#session) this.#session.stats = source;
    this.#refresh();
  }

  /** A session ended: the overlay goes, and the widgets forget it if it was the one shown. */
  ended(sessionId: string): void {
    this.showSyncWait(false, undefined);
    if (this.#session?.sessionId !== sessionId) return;
    this.#session = undefined;
    this.#refresh();
  }

  /** Redraws what shows the session: the dock, and the app's own badge, QR code and stats elements. */
  #refresh(): void {
    const settings = this.#settings;
    const session = this.#session;
    const noStats = urlSwitch("nostats");
    const dock = this.#dock;
    if (dock) {
      // The app may have replaced its page content (and the dock with it): put it back.
      const parent = this.#parent();
      if (parent && !dock.host.isConnected) parent.appendChild(dock.host);
      const stats = !noStats && (settings.stats === true || dock.wantsStats) ? session?.stats : undefined;
      dock.show(session && { ...session, url: settings.sessionURL, badge: settings.badge === true, qrcode: settings.qrcode === true && !urlSwitch("noqr"), stats });
    }
    if (this.#parent() === undefined || !session) {
      this.#ownStats?.show(undefined);
      return;
    }
    const doc = this.#doc;
    const badge = settingElement(doc, settings.badge);
    badge?.replaceChildren(renderBadge(doc, session.sessionId, session.name));
    const qr = urlSwitch("noqr") ? undefined : settingElement(doc, settings.qrcode);
    if (qr && settings.sessionURL !== "") {
      try {
        const canvas = renderQRCanvas(doc, settings.sessionURL, { width: QR_SIZE, margin: 1 });
        if (canvas) qr.replaceChildren(canvas);
      } catch (error) {
        console.warn("[Lockstep] no QR code for this session link:", error);
      }
    }
    const statsPlace = noStats ? undefined : settingElement(doc, settings.stats);
    if (statsPlace && session.stats) {
      this.#ownStats?.stop();
      this.#ownStats = new StatsWidget(doc);
      statsPlace.replaceChildren(this.#ownStats.element);
      this.#ownStats.show(session.stats);
    }
  }

  /** Where widgets go now, or undefined when `App.root` is false. */
  #parent(): HTMLElement | undefined {
    const root = this.#settings.root;
    if (root === false) return undefined;
    return widgetParent(this.#doc, root === null ? null : (settingElement(this.#doc, root) ?? null));
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
