import { renderBadge } from "./badge";
import { element, ensureStyles } from "./dom";
import { renderQRCanvas } from "./qr";

/**
 * Options of `App.makeWidgetDock`. Unknown options (Multisynq's `iframe`, `fps`, …) are accepted
 * and ignored, so apps written for Multisynq type-check unchanged.
 */
export interface WidgetDockOptions {
  /** Show the session badge (also needs `App.badge`); default true. */
  readonly badge?: boolean;
  /** Show a QR code of the join link (`App.sessionURL`); default true. */
  readonly qrcode?: boolean;
  /** Accepted for compatibility; Lockstep has no debug widget. */
  readonly debug?: boolean;
  /** Accepted for compatibility; Lockstep has no stats widget. */
  readonly stats?: boolean;
  /** Keep the dock open: clicking does not collapse it. Default false. */
  readonly alwaysPinned?: boolean;
  /** Other Multisynq options: ignored. */
  readonly [option: string]: unknown;
}

/** Id of the widget dock (bottom-left). */
export const DOCK_ID = "lockstep-dock";

/** Pixel size of the dock's QR code. */
const DOCK_QR_SIZE = 112;

/** What the dock shows about the current session. */
export interface DockContent {
  readonly sessionId: string;
  readonly name: string;
  /** The join link for the QR code; empty for none. */
  readonly url: string;
  /** Whether `App.badge` allows the badge. */
  readonly badge: boolean;
}

/**
 * The dock `#lockstep-dock`: a small box in the bottom-left corner with the session badge and a QR
 * code of the join link. Before a session joins it shows a placeholder. Clicking it collapses it to
 * the badge grid (and expands it again), unless `alwaysPinned`.
 */
export class WidgetDock {
  /** The dock element. */
  readonly element: HTMLElement;
  readonly #doc: Document;
  readonly #options: WidgetDockOptions;

  constructor(doc: Document, parent: HTMLElement, options: WidgetDockOptions) {
    ensureStyles(doc);
    this.#doc = doc;
    this.#options = options;
    const dock = element(doc, "div", "lockstep-dock");
    dock.id = DOCK_ID;
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
    parent.appendChild(dock);
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
    if (!content) {
      delete dock.dataset["sessionId"];
      dock.appendChild(element(doc, "span", "lockstep-dock-placeholder", "Not in a session"));
      return;
    }
    dock.dataset["sessionId"] = content.sessionId;
    if (this.#options.badge !== false && content.badge) {
      const slot = element(doc, "div", "lockstep-dock-badge");
      slot.appendChild(renderBadge(doc, content.sessionId, content.name));
      dock.appendChild(slot);
    }
    const qr = this.#options.qrcode !== false && content.url !== "" ? this.#qr(content.url) : null;
    if (qr) {
      const slot = element(doc, "div", "lockstep-dock-qr");
      slot.title = "Scan to join this session";
      slot.appendChild(qr);
      dock.appendChild(slot);
    }
    if (dock.childElementCount === 0) {
      dock.appendChild(element(doc, "span", "lockstep-dock-placeholder", content.name));
    }
  }

  /** Takes the dock off the page. */
  remove(): void {
    this.element.remove();
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
