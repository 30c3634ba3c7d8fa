/**
 * The page URL's widget switches, as Croquet reads them: a bare `?nodock` (or `nodock=true`, also
 * among the fragment's `&`-separated parameters) turns a widget off for that page, whatever the
 * app's code asks for — so a deployed app can be shown without its dock or QR code, or without
 * toasts, with no rebuild.
 *
 * - `nodock`: `App.makeWidgetDock` makes no dock.
 * - `noqr`: no QR code (in the dock or in `App.qrcode`'s element).
 * - `nostats`: no stats widget.
 * - `nomessages`: no status or warning toasts (errors still show).
 */
export type WidgetSwitch = "nodock" | "noqr" | "nostats" | "nomessages";

/** Whether the URL `location` (default: the page's) turns `name` on; false outside a browser. */
export function urlSwitch(name: WidgetSwitch, location: { search?: string; hash?: string } | undefined = pageLocation()): boolean {
  if (!location) return false;
  for (const part of [location.search ?? "", location.hash ?? ""]) {
    for (const param of part.replace(/^[?#]/, "").split("&")) {
      const eq = param.indexOf("=");
      const key = eq < 0 ? param : param.slice(0, eq);
      if (key !== name) continue;
      const value = eq < 0 ? "" : param.slice(eq + 1).toLowerCase();
      // `?nodock` and `?nodock=true` turn it on; `?nodock=false` (or 0) leaves it off.
      if (value !== "false" && value !== "0") return true;
    }
  }
  return false;
}

function pageLocation(): { search?: string; hash?: string } | undefined {
  return (globalThis as { location?: { search?: string; hash?: string } }).location;
}
