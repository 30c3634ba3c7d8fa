import { element, ensureStyles } from "./dom";
import type { MessageLevel } from "../session/ui";

/** Id of the toast container (top-right). */
export const TOASTS_ID = "lockstep-toasts";

/** More toasts than this and the oldest go, statuses and warnings before errors. */
const MAX_TOASTS = 6;

/** Schedules a callback after `ms` milliseconds (`setTimeout`, or a fake clock). */
export type SetTimer = (callback: () => void, ms: number) => unknown;

/**
 * Adds a toast (`.lockstep-toast.lockstep-toast-<level>`) to the container `#lockstep-toasts`,
 * creating the container under `parent` if needed. It goes away after `durationMs`, or when
 * clicked (it has a close button); with `durationMs` undefined it stays until clicked.
 */
export function showToast(
  doc: Document,
  parent: HTMLElement,
  level: MessageLevel,
  text: string,
  durationMs: number | undefined,
  setTimer: SetTimer,
): HTMLElement {
  ensureStyles(doc);
  const container = toastContainer(doc, parent);
  const toast = element(doc, "div", `lockstep-toast lockstep-toast-${level}`);
  toast.dataset["level"] = level;
  // Errors interrupt screen readers; statuses and warnings wait for a pause.
  toast.setAttribute("role", level === "error" ? "alert" : "status");
  const close = element(doc, "button", "lockstep-toast-close", "×");
  close.type = "button";
  close.setAttribute("aria-label", "Dismiss");
  toast.append(element(doc, "span", "lockstep-toast-text", text), close);
  const dismiss = (): void => {
    toast.remove();
    if (container.childElementCount === 0) container.remove();
  };
  toast.addEventListener("click", dismiss);
  container.appendChild(toast);
  trim(container);
  if (durationMs !== undefined) setTimer(dismiss, durationMs);
  return toast;
}

function toastContainer(doc: Document, parent: HTMLElement): HTMLElement {
  const existing = doc.getElementById(TOASTS_ID);
  if (existing) return existing;
  const container = element(doc, "div", "lockstep-toasts");
  container.id = TOASTS_ID;
  parent.appendChild(container);
  return container;
}

function trim(container: HTMLElement): void {
  while (container.childElementCount > MAX_TOASTS) {
    const toasts = Array.from(container.children);
    const victim = toasts.find((t) => !t.classList.contains("lockstep-toast-error")) ?? toasts[0];
    if (!victim) return;
    victim.remove();
  }
}
