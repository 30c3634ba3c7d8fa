import { element, ensureStyles, withCompatIds } from "./dom";

/** Id of the "catching up" overlay, as Croquet names it (apps look it up to tell whether a session is still syncing). */
export const SYNC_ID = "croquet_spinnerOverlay";
/** Multisynq's id of the overlay: the element holding it ({@link withCompatIds}). */
export const SYNC_HOST_ID = "multisynq_spinnerOverlay";

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
 * Shows (creating it under `parent` if needed) or removes the centred overlay
 * `#croquet_spinnerOverlay.lockstep-sync` (inside `#multisynq_spinnerOverlay`) with a spinner
 * (`#croquet_loader`) and its `.lockstep-sync-progress` text. Hidden means gone from the DOM, as
 * apps that test for the element expect.
 */
export function showSyncOverlay(doc: Document, parent: HTMLElement, show: boolean, progress: number | undefined): void {
  const existing = doc.getElementById(SYNC_ID);
  if (!show) {
    doc.getElementById(SYNC_HOST_ID)?.remove();
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
  overlay.setAttribute("role", "status");
  overlay.setAttribute("aria-live", "polite");
  const box = element(doc, "div", "lockstep-sync-box");
  const spinner = withCompatIds(doc, element(doc, "div", "lockstep-spinner"), "croquet_loader", "multisynq_loader");
  box.append(spinner, element(doc, "div", SYNC_PROGRESS_CLASS));
  overlay.appendChild(box);
  parent.appendChild(withCompatIds(doc, overlay, SYNC_ID, SYNC_HOST_ID));
  return overlay;
}
