import qrcode from "qrcode-generator";
import { UsageError } from "../errors";
import { element, ensureStyles } from "./dom";

/** QR error-correction level: L (7%), M (15%), Q (25%), H (30%) of the code may be damaged. */
export type QRErrorCorrection = "L" | "M" | "Q" | "H";

/** Options of {@link qrMatrix}. */
export interface QRMatrixOptions {
  /** Error-correction level; default `"M"`. */
  readonly errorCorrection?: QRErrorCorrection;
}

/** Options of `App.makeQRCanvas`. */
export interface QRCanvasOptions {
  /** What the code says; default `App.sessionURL`, the link that joins this session. */
  readonly text?: string;
  /** Canvas width in pixels; default 128. */
  readonly width?: number;
  /** Canvas height in pixels; default `width`. */
  readonly height?: number;
  /** Colour of dark modules (any CSS colour); default `"#000"`. */
  readonly colorDark?: string;
  /** Colour of light modules and of the quiet zone; default `"#fff"`. */
  readonly colorLight?: string;
  /** Error-correction level; default `"M"`. */
  readonly errorCorrection?: QRErrorCorrection;
  /** Light border around the code, in modules; default 4 (what the QR standard asks for). */
  readonly margin?: number;
}

/** Byte-mode capacity of the largest QR code (version 40) per level, for the error message. */
const MAX_BYTES: Record<QRErrorCorrection, number> = { L: 2953, M: 2331, Q: 1663, H: 1273 };

/**
 * The modules of the smallest QR code that holds `text` (UTF-8, byte mode): `matrix[row][col]` is
 * `true` for a dark module. The size is `17 + 4 × version` modules square. Pure: no DOM, so it
 * runs (and is tested) in Node.
 *
 * @throws UsageError if `text` is longer than the largest QR code can hold at that level.
 * @example
 * ```ts
 * qrMatrix("hello").length; // 21: version 1
 * ```
 */
export function qrMatrix(text: string, options: QRMatrixOptions = {}): boolean[][] {
  const level = options.errorCorrection ?? "M";
  const bytes = new TextEncoder().encode(text);
  // qrcode-generator's byte mode keeps the low byte of each char code; handing it one char per
  // UTF-8 byte encodes any text correctly without touching its global stringToBytes hook.
  let latin1 = "";
  for (const b of bytes) latin1 += String.fromCharCode(b);
  const code = qrcode(0, level);
  code.addData(latin1, "Byte");
  try {
    code.make();
  } catch (cause) {
    throw new UsageError(
      `Text of ${bytes.length} bytes is too long for a QR code (at most ${MAX_BYTES[level]} bytes at level ${level}); shorten it or use a lower errorCorrection.`,
      { cause },
    );
  }
  const size = code.getModuleCount();
  const matrix: boolean[][] = [];
  for (let row = 0; row < size; row++) {
    const line: boolean[] = [];
    for (let col = 0; col < size; col++) line.push(code.isDark(row, col));
    matrix.push(line);
  }
  return matrix;
}

/**
 * Paints a QR matrix centred on a canvas, with whole-pixel modules where they fit (crisp edges)
 * and at least `margin` light modules around it.
 */
export function paintQR(
  ctx: CanvasRenderingContext2D,
  matrix: readonly (readonly boolean[])[],
  width: number,
  height: number,
  colors: { dark: string; light: string; margin: number },
): void {
  const size = matrix.length;
  const span = size + 2 * Math.max(0, colors.margin);
  const exact = Math.min(width, height) / span;
  const cell = exact >= 1 ? Math.floor(exact) : exact;
  const left = (width - size * cell) / 2;
  const top = (height - size * cell) / 2;
  ctx.fillStyle = colors.light;
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = colors.dark;
  matrix.forEach((line, row) => {
    line.forEach((dark, col) => {
      if (dark) ctx.fillRect(left + col * cell, top + row * cell, cell, cell);
    });
  });
}

/**
 * A `<canvas class="lockstep-qr">` showing the QR code of `text`; `null` outside a browser or
 * when the canvas cannot draw.
 */
export function renderQRCanvas(doc: Document, text: string, options: QRCanvasOptions = {}): HTMLCanvasElement | null {
  const matrix = qrMatrix(text, options.errorCorrection === undefined ? {} : { errorCorrection: options.errorCorrection });
  ensureStyles(doc);
  const width = Math.max(1, Math.round(options.width ?? 128));
  const height = Math.max(1, Math.round(options.height ?? width));
  const canvas = element(doc, "canvas", "lockstep-qr");
  canvas.width = width;
  canvas.height = height;
  // The text is often a join link carrying the password (#pw=): keep it out of tooltips and the
  // accessibility tree, where screenshots and screen readers would show it.
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "QR code");
  const ctx = canvas.getContext("2d");
  if (!ctx) return null;
  paintQR(ctx, matrix, width, height, {
    dark: options.colorDark ?? "#000",
    light: options.colorLight ?? "#fff",
    margin: options.margin ?? 4,
  });
  return canvas;
}
