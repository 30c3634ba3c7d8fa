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
