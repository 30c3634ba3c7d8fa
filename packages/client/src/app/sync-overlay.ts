import { element, ensureStyles } from "./dom";

/** Id of the "catching up" overlay. */
export const SYNC_ID = "lockstep-sync";

/** Class of the overlay's text line. */
export const SYNC_PROGRESS_CLASS = "lockstep-sync-progress";

/**
 * The overlay's text: `"Catching up… NN%"` once progress (0–1, clamped) is known, `"Joining…"`
 * before.
 */
export function syncText(progress: number | undefined): string {
  if (progress === undefined || Number.isNaN(progress)) return "Joining…";
  const percent = Math.round(Math.min(1, Math.max(0, progress)) * 100);
  return `Catching up… ${percent}%`;
}

/**
 * Shows (creating it under `parent` if needed) or removes the centred overlay `#lockstep-sync`
 * with a spinner and its `.lockstep-sync-progress` text. Hidden means gone from the DOM.
 */
export function showSyncOverlay(doc: Document, parent: HTMLElement, show: boolean, progress: number | undefined): void {
  const existing = doc.getElementById(SYNC_ID);
  if (!show) {
    existing?.remove();
    return;
  }
  ensureStyles(doc);
  const overlay = existing ?? createOverlay(doc, parent);
  const text = overlay.querySelector(`.${SYNC_PROGRESS_CLASS}`);
  if (text) text.textContent = syncText(progress);
}

function createOverlay(doc: Document, parent: HTMLElement): HTMLElement {
  const overlay = element(doc, "div", "lockstep-sync");
  overlay.id = SYNC_ID;
  overlay.setAttribute("role", "status");
  overlay.setAttribute("aria-live", "polite");
  const box = element(doc, "div", "lockstep-sync-box");
  box.append(element(doc, "div", "lockstep-spinner"), element(doc, "div", SYNC_PROGRESS_CLASS));
  overlay.appendChild(box);
  parent.appendChild(overlay);
  return overlay;
}
