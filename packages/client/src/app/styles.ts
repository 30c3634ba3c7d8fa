/**
 * The stylesheet of the App widgets (sync overlay, toasts, widget dock, badge), injected once as
 * `<style id="lockstep-styles">`. Every class is prefixed `lockstep-` so it cannot collide with an
 * app's own; the z-index sits just under the largest value so widgets stay above app content.
 */
export const WIDGET_CSS = `
.lockstep-sync, .lockstep-toasts, .lockstep-dock {
  font: 13px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  box-sizing: border-box;
  z-index: 2147483000;
}
.lockstep-sync *, .lockstep-toasts *, .lockstep-dock * { box-sizing: border-box; }

.lockstep-sync {
  position: fixed; inset: 0;
  display: flex; align-items: center; justify-content: center;
  background: rgba(255, 255, 255, 0.55);
  animation: lockstep-fade-in 0.2s ease-out 0.25s both;
}
.lockstep-sync-box {
  display: flex; flex-direction: column; align-items: center; gap: 10px;
  padding: 18px 24px; border-radius: 10px;
  background: rgba(32, 33, 36, 0.88); color: #fff;
  box-shadow: 0 4px 18px rgba(0, 0, 0, 0.25);
}
.lockstep-spinner {
  width: 32px; height: 32px; border-radius: 50%;
  border: 3px solid rgba(255, 255, 255, 0.25); border-top-color: #fff;
  animation: lockstep-spin 0.9s linear infinite;
}
.lockstep-sync-progress { font-variant-numeric: tabular-nums; white-space: nowrap; }

.lockstep-toasts {
  position: fixed; top: 12px; right: 12px;
  display: flex; flex-direction: column; align-items: flex-end; gap: 8px;
  max-width: min(360px, calc(100vw - 24px));
  pointer-events: none;
}
.lockstep-toast {
  display: flex; align-items: flex-start; gap: 8px;
  padding: 8px 10px 8px 12px; border-radius: 6px; border-left: 4px solid;
  background: #fff; color: #202124; box-shadow: 0 2px 10px rgba(0, 0, 0, 0.18);
  pointer-events: auto; cursor: pointer; overflow-wrap: anywhere;
  animation: lockstep-fade-in 0.15s ease-out both;
}
.lockstep-toast-status { border-color: #1a73e8; }
.lockstep-toast-warning { border-color: #f9ab00; background: #fffbeb; }
.lockstep-toast-error { border-color: #d93025; background: #fdecea; }
.lockstep-toast-text { flex: 1; white-space: pre-wrap; }
.lockstep-toast-close {
  flex: none; border: 0; background: none; color: inherit; opacity: 0.6;
  font: inherit; font-size: 16px; line-height: 1; padding: 0 2px; cursor: pointer;
}
.lockstep-toast-close:hover { opacity: 1; }

.lockstep-dock {
  position: fixed; left: 8px; bottom: 8px;
  display: flex; flex-direction: column; align-items: flex-start; gap: 6px;
  padding: 6px; border-radius: 8px;
  background: rgba(255, 255, 255, 0.92); color: #202124;
  box-shadow: 0 1px 6px rgba(0, 0, 0, 0.2);
  cursor: pointer; user-select: none; opacity: 0.85;
}
.lockstep-dock:hover { opacity: 1; }
.lockstep-dock-pinned { cursor: default; }
.lockstep-dock-collapsed .lockstep-dock-qr, .lockstep-dock-collapsed .lockstep-dock-stats { display: none; }
.lockstep-dock-collapsed .lockstep-badge-name { display: none; }
.lockstep-dock-placeholder { color: #5f6368; font-size: 12px; padding: 0 2px; }
.lockstep-qr { display: block; image-rendering: pixelated; }
.lockstep-compat { display: contents; }
.lockstep-stats { font-size: 11px; line-height: 1.3; font-variant-numeric: tabular-nums; }
.lockstep-stats-line { white-space: nowrap; }
.lockstep-stats-graph { display: block; width: 120px; height: 48px; margin-top: 2px; background: #f8f9fa; border-radius: 3px; }

.lockstep-badge { display: flex; align-items: center; gap: 6px; max-width: 220px; }
.lockstep-badge-grid {
  display: grid; grid-template-columns: repeat(5, 5px); grid-auto-rows: 5px;
  flex: none; padding: 2px; border-radius: 3px; background: #f1f3f4;
}
.lockstep-badge-name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-weight: 600; }

@keyframes lockstep-spin { to { transform: rotate(360deg); } }
@keyframes lockstep-fade-in { from { opacity: 0; } to { opacity: 1; } }
@media (prefers-reduced-motion: reduce) {
  .lockstep-spinner { animation-duration: 3s; }
  .lockstep-sync, .lockstep-toast { animation: none; }
}
`;
