import { toBase64Url } from "@lockstep/protocol";
import type { WidgetDockOptions } from "./dock";
import { browserDocument, settingElement } from "./dom";
import type { ShowMessageOptions } from "./messages";
import { renderQRCanvas } from "./qr";
import type { QRCanvasOptions } from "./qr";
import { pageWidgets } from "./widgets";
import type { BrowserWidgets, WidgetPlace } from "./widgets";

interface BrowserLocation {
  href: string;
  search: string;
  hash: string;
}

function browserLocation(): BrowserLocation | undefined {
  return (globalThis as { location?: BrowserLocation }).location;
}

function replaceUrl(url: URL): void {
  const history = (globalThis as { history?: { replaceState(data: unknown, unused: string, url: string): void } }).history;
  history?.replaceState(null, "", url.toString());
}

function randomName(): string {
  const alphabet = "abcdefghijkmnopqrstuvwxyz23456789";
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(10));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

function hashParams(hash: string): URLSearchParams {
  return new URLSearchParams(hash.replace(/^#/, ""));
}

/** `App.root` as the app set it: an element or its id; `undefined` (or `null`) means `<body>`; false: no widgets. */
let rootSetting: HTMLElement | string | false | null | undefined;

/** The page's widgets, created on first use; `undefined` outside a browser, where every widget call is a no-op. */
function widgets(): BrowserWidgets | undefined {
  return pageWidgets(App);
}

/**
 * Browser helpers (Multisynq-compatible). `autoSession` and `autoPassword` return promises, which
 * `Session.join` accepts for `name` and `password`. The widgets (sync spinner, toasts, a dock with
 * the session badge and a QR code of the join link) are made only when first used, and only in a
 * browser: in Node every widget call does nothing and `makeQRCanvas` returns `null`.
 *
 * @example
 * ```ts
 * App.makeWidgetDock();                 // badge + QR code of the join link, bottom-left
 * App.messages = false;                 // only errors become toasts
 * const session = await Session.join({
 *   appId, name: App.autoSession(), password: App.autoPassword(), model, view,
 * });
 * App.showMessage("Welcome!", { level: "status", only: "once" });
 * document.body.append(App.makeQRCanvas({ width: 200 }) ?? "");
 * ```
 */
export const App = {
  /**
   * The session name from the URL's `?q=` parameter; if there is none, a new random name that is
   * written into the URL, so the link can be shared.
   */
  async autoSession(options: string | { parameter?: string } = {}): Promise<string> {
    const parameter = (typeof options === "string" ? options : options.parameter) ?? "q";
    const location = browserLocation();
    if (!location) return randomName();
    const url = new URL(location.href);
    const existing = url.searchParams.get(parameter);
    if (existing) return existing;
    const name = randomName();
    url.searchParams.set(parameter, name);
    replaceUrl(url);
    return name;
  },

  /**
   * The session password from the URL fragment `#pw=`; if there is none, a new random one that is
   * written into the fragment. Fragments never travel to a server over HTTP, so the reflector and
   * the web server never see it; anyone with the full link can join.
   */
  async autoPassword(options: { parameter?: string } = {}): Promise<string> {
    const parameter = options.parameter ?? "pw";
    const location = browserLocation();
    const fresh = toBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(16)));
    if (!location) return fresh;
    const url = new URL(location.href);
    const params = hashParams(url.hash);
    const existing = params.get(parameter);
    if (existing) return existing;
    params.set(parameter, fresh);
    url.hash = params.toString();
    replaceUrl(url);
    return fresh;
  },

  /** The page's URL (with session name and password): the link to share. */
  get sessionURL(): string {
    return browserLocation()?.href ?? "";
  },

  /**
   * Where widgets are attached: an element, or the id of one. Defaults to `document.body` (`null`
   * outside a browser); setting `null` restores the default. `false` (as in Croquet) shows no
   * widgets at all: no spinner, toasts or dock. Widgets already on the page stay where they are.
   */
  get root(): HTMLElement | false | null {
    if (rootSetting === false) return false;
    if (typeof rootSetting === "object" && rootSetting !== null) return rootSetting;
    const doc = browserDocument();
    return (doc && typeof rootSetting === "string" ? settingElement(doc, rootSetting) : undefined) ?? doc?.body ?? null;
  },
  set root(element: HTMLElement | string | false | null) {
    rootSetting = element;
  },

  /** Show the "catching up" spinner while a session joins or rejoins. Default true. */
  sync: true,

  /** Show statuses and warnings as toasts. Default true. Errors are shown regardless. */
  messages: true,

  /**
   * Where the session badge goes: `true` (default) in the widget dock, `false` nowhere, or an
   * element (or its id) to draw it into when a session joins.
   */
  badge: true as WidgetPlace,

  /**
   * Where the QR code of the join link goes: `true` (default) in the widget dock, `false` nowhere,
   * or an element (or its id). `?noqr` in the page URL turns it off everywhere.
   */
  qrcode: true as WidgetPlace,

  /**
   * Where the stats widget goes (`#croquet_stats`: users, frame rate, and a graph of frame time,
   * network silence and backlog): `false` (default) only where `makeWidgetDock({ stats: true })`
   * asks for it, `true` in the widget dock, or an element (or its id). `?nostats` turns it off.
   */
  stats: false as WidgetPlace,

  /**
   * Adds a small dock in the bottom-left corner (`#croquet_dock`, inside `#multisynq_dock`) with
   * the session badge and a QR code of the join link ({@link App.sessionURL}, with `?q=` and
   * `#pw=`), and the stats widget with `{ stats: true }`. Until a session joins it shows a
   * placeholder. Clicking collapses it to the badge and expands it again, unless `alwaysPinned`.
   * Calling it again replaces the dock. Unknown options are ignored. `?nodock` in the page URL
   * (or `App.root = false`) makes none.
   *
   * @returns The dock element, or `null` outside a browser or when no dock is made.
   */
  makeWidgetDock(options: WidgetDockOptions = {}): HTMLElement | null {
    return widgets()?.makeWidgetDock(options) ?? null;
  },

  /**
   * Shows `sessionId`'s badge and QR code in the widget dock (if one was made). Sessions do this
   * themselves when they join; this is for Multisynq compatibility.
   */
  makeSessionWidgets(sessionId: string): void {
    widgets()?.showSession(sessionId);
  },

  /**
   * A canvas with the QR code of `options.text`, by default {@link App.sessionURL}.
   *
   * @returns The canvas (`class="lockstep-qr"`), or `null` outside a browser or without a 2D context.
   * @throws UsageError if the text is too long for a QR code.
   */
  makeQRCanvas(options: QRCanvasOptions = {}): HTMLCanvasElement | null {
    const doc = browserDocument();
    return doc ? renderQRCanvas(doc, options.text ?? App.sessionURL, options) : null;
  },

  /**
   * Shows (or with `false` removes) the centred overlay `#croquet_spinnerOverlay` (inside
   * `#multisynq_spinnerOverlay`, class `lockstep-sync`): a spinner (`#croquet_loader`) and the text
   * `.lockstep-sync-progress`, "Catching up… NN%" for `progress` 0–1, else "Joining…". Sessions
   * call it while they join if {@link App.sync} is set.
   */
  showSyncWait(show: boolean, progress?: number): void {
    widgets()?.showSyncWait(show, progress);
  },

  /**
   * Shows a toast in the top-right corner (`#lockstep-toasts` > `.lockstep-toast.lockstep-toast-<level>`).
   * Statuses and warnings go after `duration` ms (default 3000 and 6000); errors stay until
   * clicked. With {@link App.messages} off only errors are shown. `only: "once"` shows a text the
   * first time only. It does not write to the console: callers log what they need logged.
   */
  showMessage(text: string, options: ShowMessageOptions = {}): void {
    widgets()?.showMessage(text, options);
  },
};
