/**
 * `@lockstep/client/app`: the browser widgets (session badge and QR code, "catching up" overlay,
 * toasts) and `App`, their Multisynq-compatible entry point. The same `App` is exported by
 * `@lockstep/client`; import this subpath to depend on the widgets explicitly.
 * @packageDocumentation
 */
export { App } from "./app";
export type { MessageLevel } from "../session/ui";
export type { WidgetDockOptions } from "./dock";
export type { QRCanvasOptions, QRErrorCorrection } from "./qr";
export type { ShowMessageOptions } from "./messages";
