import { element, ensureStyles } from "./dom";

/** Side of the badge grid, in cells. */
export const BADGE_SIZE = 5;

/**
 * A session's badge: a small left–right symmetric grid of colours derived from the sessionId, so
 * two people can see at a glance whether they are in the same session.
 */
export interface SessionBadge {
  /** Three colours (`#rrggbb`) of different hue and lightness. */
  readonly colors: readonly [string, string, string];
  /** `BADGE_SIZE` rows of `BADGE_SIZE` cells: 0 is empty, 1–3 pick `colors[n - 1]`. */
  readonly cells: readonly (readonly number[])[];
}

/**
 * The badge of a session. Pure and deterministic: the same sessionId always gives the same badge,
 * on every browser; different ids give different badges (about 2^38 combinations).
 *
 * @example
 * ```ts
 * const { colors, cells } = sessionBadge(session.id);
 * ```
 */
export function sessionBadge(sessionId: string): SessionBadge {
  const [hueBits, cellBits, shiftBits] = hash96(sessionId);
  const hue = hueBits % 360;
  const colors: [string, string, string] = [
    hslToHex(hue, 0.7, 0.4),
    hslToHex(hue + 90 + (shiftBits % 60), 0.65, 0.52),
    hslToHex(hue + 210 + ((shiftBits >>> 8) % 60), 0.6, 0.64),
  ];
  const half = Math.ceil(BADGE_SIZE / 2);
  const cells: number[][] = [];
  for (let row = 0; row < BADGE_SIZE; row++) {
    const line: number[] = new Array<number>(BADGE_SIZE).fill(0);
    for (let col = 0; col < half; col++) {
      const value = (cellBits >>> (2 * (row * half + col))) & 3;
      line[col] = value;
      line[BADGE_SIZE - 1 - col] = value;
    }
    cells.push(line);
  }
  return { colors, cells };
}

/** 96 well-mixed bits of a string: FNV-1a over its UTF-16 code units per lane, then a murmur3 finaliser. */
function hash96(text: string): [number, number, number] {
  const lane = (seed: number): number => {
    let h = (0x811c9dc5 ^ seed) >>> 0;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    h ^= seed;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  };
  return [lane(0x9e3779b9), lane(0x7f4a7c15), lane(0x2545f491)];
}

/** `#rrggbb` of an HSL colour (hue in degrees, any range; saturation and lightness 0–1). */
export function hslToHex(hue: number, saturation: number, lightness: number): string {
  const h = ((hue % 360) + 360) % 360;
  const chroma = (1 - Math.abs(2 * lightness - 1)) * saturation;
  const x = chroma * (1 - Math.abs(((h / 60) % 2) - 1));
  const m = lightness - chroma / 2;
  const sector = Math.floor(h / 60);
  const [r, g, b] =
    sector === 0 ? [chroma, x, 0] :
    sector === 1 ? [x, chroma, 0] :
    sector === 2 ? [0, chroma, x] :
    sector === 3 ? [0, x, chroma] :
    sector === 4 ? [x, 0, chroma] : [chroma, 0, x];
  const hex = (v: number): string => Math.round((v + m) * 255).toString(16).padStart(2, "0");
  return `#${hex(r)}${hex(g)}${hex(b)}`;
}

/**
 * The badge element: `<div class="lockstep-badge" data-session-id>` with the colour grid
 * (`.lockstep-badge-grid` of `.lockstep-badge-cell`) and the session name (`.lockstep-badge-name`).
 */
export function renderBadge(doc: Document, sessionId: string, name: string): HTMLElement {
  ensureStyles(doc);
  const { colors, cells } = sessionBadge(sessionId);
  const badge = element(doc, "div", "lockstep-badge");
  badge.dataset["sessionId"] = sessionId;
  badge.title = `Session "${name}" (${sessionId.slice(0, 12)}…): the same badge means the same session`;
  const grid = element(doc, "div", "lockstep-badge-grid");
  grid.setAttribute("aria-hidden", "true");
  for (const line of cells) {
    for (const value of line) {
      const cell = element(doc, "span", "lockstep-badge-cell");
      const color = value === 0 ? undefined : colors[value - 1];
      if (color !== undefined) cell.style.backgroundColor = color;
      grid.appendChild(cell);
    }
  }
  badge.append(grid, element(doc, "span", "lockstep-badge-name", name));
  return badge;
}
