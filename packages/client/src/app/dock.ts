import { renderBadge } from "./badge";
import { element, ensureStyles, withCompatIds } from "./dom";
import { renderQRCanvas } from "./qr";
import { StatsWidget } from "./stats";
import type { SessionStatsSource } from "../session/ui";

/**
 * Options of `App.makeWidgetDock`. Unknown options (Multisynq's `iframe`, `fps`, …) are accepted
 * and ignored, so apps written for Multisynq type-check unchanged.
 */
export interface WidgetDockOptions {
  /** Show the session badge (also needs `App.badge`); default true. */
  readonly badge?: boolean;
  /** Show a QR code of the join link (`App.sessionURL`); default true. */
  readonly qrcode?: boolean;
  /** Croquet's debug dock: shows the stats widget too (as `stats: true`). */
  readonly debug?: boolean;
  /** Show the stats widget (`#croquet_stats`: users, frame rate, network and backlog graph); default false. */
  readonly stats?: boolean;
  /** Keep the dock open: clicking does not collapse it. Default false. */
  readonly alwaysPinned?: boolean;
  /** Other Multisynq options: ignored. */
  readonly [option: string]: unknown;
}

/** Id of the widget dock (bottom-left), as Croquet names it; `#multisynq_dock` wraps it ({@link withCompatIds}). */
export const DOCK_ID = "croquet_dock";

/** Ids of the dock's parts, Croquet's and Multisynq's (apps style and look up both). */
export const DOCK_IDS = {
  dock: ["croquet_dock", "multisynq_dock"],
  badge: ["croquet_badge", "multisynq_badge"],
  qrcode: ["croquet_qrcode", "multisynq_qrcode"],
  stats: ["croquet_stats", "multisynq_stats"],
} as const;

/** Pixel size of the dock's QR code. */
const DOCK_QR_SIZE = 112;

/** What the dock shows about the current session. */
export interface DockContent {
  readonly sessionId: string;
  readonly name: string;
  /** The join link for the QR code; empty for none. */
  readonly url: string;
  /** Whether the badge goes in the dock (`App.badge` true, not an element of its own). */
  readonly badge: boolean;
  /** Whether the QR code goes in the dock (`App.qrcode` not false nor an element, no `?noqr`). */
  readonly qrcode: boolean;
  /** The session's numbers for the stats widget, if it goes in the dock (asked for, and no `?nostats`). */
  readonly stats: SessionStatsSource | undefined;
}

/**
 * The dock `#croquet_dock` (inside `#multisynq_dock`): a small box in the bottom-left corner with
 * the session badge (`#croquet_badge`), a QR code (`#croquet_qrcode`) and, if asked for, the stats
 * widget (`#croquet_stats`), each inside its Multisynq-named twin. The session badge and a QR
 * code of the join link. Before a session joins it shows a placeholder. Clicking it collapses it to
 * the badge grid (and expands it again), unless `alwaysPinned`.
 */
export class WidgetDock {
  /** The dock element (`#croquet_dock`). */
  readonly element: HTMLElement;
  /** What is attached to the page: `#multisynq_dock`, holding the dock. */
  readonly host: HTMLElement;
  readonly #doc: Document;
  readonly #options: WidgetDockOptions;
  #stats: StatsWidget | undefined;

  constructor(doc: Document, parent: HTMLElement, options: WidgetDockOptions) {
    ensureStyles(doc);
    this.#doc = doc;
    this.#options = options;
    const dock = element(doc, "div", "lockstep-dock");
    this.host = withCompatIds(doc, dock, ...DOCK_IDS.dock);
    dock.setAttribute("role", "region");
    dock.setAttribute("aria-label", "Session");
    if (options.alwaysPinned === true) {
      dock.classList.add("lockstep-dock-pinned");
    } else {
      dock.tabIndex = 0;
      dock.setAttribute("aria-expanded", "true");
      dock.title = "Click to collapse or expand";
      dock.addEventListener("click", () => this.toggle());
      dock.addEventListener("keydown", (event) => {
        if (event.key !== "Enter" && event.key !== " ") return;
        event.preventDefault();
        this.toggle();
      });
    }
    this.element = dock;
    this.show(undefined);
    parent.appendChild(this.host);
  }

  /** Whether this dock shows the stats widget (its options ask for it). */
  get wantsStats(): boolean {
    return this.#options.stats === true || this.#options.debug === true;
  }

  /** Collapses or expands the dock (no-op when pinned); returns whether it is now collapsed. */
  toggle(): boolean {
    if (this.#options.alwaysPinned === true) return false;
    const collapsed = this.element.classList.toggle("lockstep-dock-collapsed");
    this.element.setAttribute("aria-expanded", String(!collapsed));
    return collapsed;
  }

  /** Shows a session's badge and QR code, or the placeholder when there is no session. */
  show(content: DockContent | undefined): void {
    const doc = this.#doc;
    const dock = this.element;
    dock.replaceChildren();
    this.#stats?.stop();
    this.#stats = undefined;
    if (!content) {
      delete dock.dataset["sessionId"];
      dock.appendChild(element(doc, "span", "lockstep-dock-placeholder", "Not in a session"));
      return;
    }
    dock.dataset["sessionId"] = content.sessionId;
    if (this.#options.badge !== false && content.badge) {
      const slot = element(doc, "div", "lockstep-dock-badge");
      slot.appendChild(renderBadge(doc, content.sessionId, content.name));
      dock.appendChild(withCompatIds(doc, slot, ...DOCK_IDS.badge));
    }
    const qr = this.#options.qrcode !== false && content.qrcode && content.url !== "" ? this.#qr(content.url) : null;
    if (qr) {
      const slot = element(doc, "div", "lockstep-dock-qr");
      slot.title = "Scan to join this session";
      slot.appendChild(qr);
      dock.appendChild(withCompatIds(doc, slot, ...DOCK_IDS.qrcode));
    }
    if (content.stats) {
      const stats = new StatsWidget(doc);
      const slot = element(doc, "div", "lockstep-dock-stats");
      slot.appendChild(stats.element);
      dock.appendChild(withCompatIds(doc, slot, ...DOCK_IDS.stats));
      this.#stats = stats;
      stats.show(content.stats);
    }
    if (dock.childElementCount === 0) {
      dock.appendChild(element(doc, "span", "lockstep-dock-placeholder", content.name));
    }
  }

  /** Takes the dock off the page. */
  remove(): void {
    this.#stats?.stop();
    this.host.remove();
  }

  #qr(url: string): HTMLCanvasElement | null {
    try {
      return renderQRCanvas(this.#doc, url, { width: DOCK_QR_SIZE, margin: 1 });
    } catch (error) {
      // An absurdly long URL cannot be a QR code; the badge still tells sessions apart.
      console.warn("[Lockstep] no QR code for this session link:", error);
      return null;
    }
  }
}
