import { WIDGET_CSS } from "./styles";

/** Id of the one `<style>` element the App widgets inject. */
export const STYLE_ELEMENT_ID = "lockstep-styles";

/**
 * The page's document, or `undefined` outside a browser. Every widget goes through this guard, so
 * importing `@lockstep/client` in Node (or a worker) never touches `document`.
 */
export function browserDocument(): Document | undefined {
  // Something that only looks like a document (a test's stand-in for the visibility API) is not a page.
  return typeof document === "undefined" || typeof document.createElement !== "function" ? undefined : document;
}

/** Injects the widgets' stylesheet once per document (`<style id="lockstep-styles">`). */
export function ensureStyles(doc: Document): void {
  if (doc.getElementById(STYLE_ELEMENT_ID)) return;
  const style = doc.createElement("style");
  style.id = STYLE_ELEMENT_ID;
  style.textContent = WIDGET_CSS;
  (doc.head ?? doc.documentElement).appendChild(style);
}

/**
 * Creates an element with a class and, optionally, text. Text always goes in as `textContent`:
 * session names and messages come from URLs and the network, and must never become markup.
 */
export function element<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const el = doc.createElement(tag);
  el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Where widgets are attached: the app's choice, else `<body>`, else the root element (a script in `<head>`). */
export function widgetParent(doc: Document, root: HTMLElement | null): HTMLElement {
  return root ?? doc.body ?? doc.documentElement;
}

/**
 * Gives `inner` the id `croquetId` and wraps it in an element with the id `multisynqId` that
 * generates no box of its own (`display: contents`): apps written for either library find "their"
 * element (`document.getElementById("croquet_dock")` or `"multisynq_dock"`), and hiding or removing
 * either hides or removes the widget. Croquet's id is the widget itself, so style rules that
 * position or size it (`#croquet_dock { … }`) apply; rules for Multisynq's id can hide it.
 * @returns the wrapper, to be attached where the widget goes.
 */
export function withCompatIds(doc: Document, inner: HTMLElement, croquetId: string, multisynqId: string): HTMLElement {
  inner.id = croquetId;
  const host = element(doc, "div", "lockstep-compat");
  host.id = multisynqId;
  host.appendChild(inner);
  return host;
}

/**
 * The element an `App` setting names, the way Croquet reads `App.root`, `App.badge`, … : an
 * element, or the id of one in the document; undefined for anything else (`true`, `false`, an id
 * with no element).
 */
export function settingElement(doc: Document, setting: unknown): HTMLElement | undefined {
  if (typeof setting === "string") return doc.getElementById(setting) ?? undefined;
  // An element node (of this document or another realm's: an iframe's elements are not instanceof ours).
  const node = setting as { nodeType?: unknown } | null;
  return typeof node === "object" && node !== null && node.nodeType === 1 ? (setting as HTMLElement) : undefined;
}
