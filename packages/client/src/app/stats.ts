import type { SessionStatsSource } from "../session/ui";
import { element, ensureStyles } from "./dom";

/** Columns of history the graph keeps (one per frame). */
const HISTORY = 120;
/** Graph size in canvas pixels. */
const WIDTH = HISTORY;
const HEIGHT = 48;
/** One frame at 60 Hz, in ms: the graph's unit for frame times. */
const FRAME_MS = 1000 / 60;
/** Frame-time bars grow up from here (px from the top); a 60 Hz frame is 12 px tall. */
const FRAME_BASE = 30;
const PX_PER_FRAME = 12;
/** Network and backlog bars grow down from the frame base: one second of delay is 18 px. */
const PX_PER_SECOND = 18;

/** The colours of the graph, also listed in the widget's tooltip. */
const COLORS = { frame: "#80868b", network: "#9aa0a6", backlog: "#d93025" } as const;

/** One frame's numbers. */
export interface FrameSample {
  /** Time since the previous frame, in ms. */
  readonly frameMs: number;
  readonly users: number;
  readonly backlogMs: number;
  readonly starvationMs: number;
}

/** The two lines of text above the graph: users and frame rate; then latency trouble, if any. */
export function statsText(samples: readonly FrameSample[]): [string, string] {
  const last = samples[samples.length - 1];
  if (!last) return ["no session", ""];
  const frames = samples.slice(-60);
  const avg = frames.reduce((sum, s) => sum + s.frameMs, 0) / frames.length;
  const fps = avg > 0 ? Math.round(1000 / avg) : 0;
  const users = `${last.users} user${last.users === 1 ? "" : "s"}, ${fps} fps`;
  if (last.backlogMs >= 100) return [users, `backlog ${(last.backlogMs / 1000).toFixed(1)} s`];
  if (last.starvationMs >= 1000) return [users, `no news for ${(last.starvationMs / 1000).toFixed(1)} s`];
  return [users, "in sync"];
}

/**
 * The stats widget (Croquet's `croquet_stats`): users and frame rate, and a scrolling graph of
 * the last {@link HISTORY} frames — frame time up from the baseline (one 60 Hz frame per grid
 * line), network silence (grey) and backlog (red) down from it. It samples its session and draws
 * once per animation frame, and only while it is on the page: off the page (or outside a browser)
 * it costs nothing. Without a 2D canvas context it shows the text alone.
 */
export class StatsWidget {
  /** `<div class="lockstep-stats">`: the text lines and the graph. */
  readonly element: HTMLElement;
  readonly #lines: [HTMLElement, HTMLElement];
  readonly #canvas: HTMLCanvasElement;
  readonly #samples: FrameSample[] = [];
  #source: SessionStatsSource | undefined;
  #last = 0;
  #frame = 0;
  readonly #raf: ((cb: (t: number) => void) => number) | undefined;
  readonly #cancel: ((handle: number) => void) | undefined;

  constructor(doc: Document) {
    ensureStyles(doc);
    const root = element(doc, "div", "lockstep-stats");
    root.title = `Frame time (${COLORS.frame}), network silence (${COLORS.network}), backlog (${COLORS.backlog})`;
    this.#lines = [element(doc, "div", "lockstep-stats-line"), element(doc, "div", "lockstep-stats-line")];
    this.#canvas = element(doc, "canvas", "lockstep-stats-graph");
    this.#canvas.width = WIDTH;
    this.#canvas.height = HEIGHT;
    root.append(...this.#lines, this.#canvas);
    this.element = root;
    const win = doc.defaultView as (Window & typeof globalThis) | null;
    this.#raf = win?.requestAnimationFrame?.bind(win);
    this.#cancel = win?.cancelAnimationFrame?.bind(win);
    this.#draw();
  }

  /** What to show: a session's numbers, or none (the session ended). Starts sampling if on the page. */
  show(source: SessionStatsSource | undefined): void {
    this.#source = source;
    this.#samples.length = 0;
    this.#last = 0;
    this.#draw();
    this.#schedule();
  }

  /** The samples so far (oldest first), for tests and curious apps. */
  get samples(): readonly FrameSample[] {
    return this.#samples;
  }

  /** Records one frame at local time `now` (ms) and redraws. Called every animation frame while shown. */
  sample(now: number): void {
    const source = this.#source;
    if (!source) return;
    if (this.#last !== 0) {
      this.#samples.push({ frameMs: now - this.#last, users: source.users(), backlogMs: source.backlog(), starvationMs: source.starvation() });
      if (this.#samples.length > HISTORY) this.#samples.shift();
    }
    this.#last = now;
    this.#draw();
  }

  /** Stops sampling (the widget left the page or its dock was replaced). */
  stop(): void {
    if (this.#frame !== 0) this.#cancel?.(this.#frame);
    this.#frame = 0;
  }

  #schedule(): void {
    const raf = this.#raf;
    if (!raf || this.#frame !== 0 || !this.#source) return;
    this.#frame = raf((t) => {
      this.#frame = 0;
      // Off the page: stop until shown again (the dock re-attaches and calls show).
      if (!this.element.isConnected) return;
      this.sample(t);
      this.#schedule();
    });
  }

  #draw(): void {
    const [first, second] = statsText(this.#samples);
    this.#lines[0].textContent = first;
    this.#lines[1].textContent = second;
    let ctx: CanvasRenderingContext2D | null = null;
    try {
      ctx = this.#canvas.getContext("2d");
    } catch {
      ctx = null;
    }
    if (!ctx) return;
    ctx.clearRect(0, 0, WIDTH, HEIGHT);
    ctx.fillStyle = "rgba(0, 0, 0, 0.08)";
    for (let y = FRAME_BASE; y > 0; y -= PX_PER_FRAME) ctx.fillRect(0, y, WIDTH, 1);
    const offset = WIDTH - this.#samples.length;
    this.#samples.forEach((s, i) => {
      const x = offset + i;
      const up = Math.min(FRAME_BASE, (s.frameMs / FRAME_MS) * PX_PER_FRAME);
      ctx.fillStyle = COLORS.frame;
      ctx.fillRect(x, FRAME_BASE - up, 1, up);
      const down = (ms: number): number => Math.min(HEIGHT - FRAME_BASE, (ms / 1000) * PX_PER_SECOND);
      ctx.fillStyle = COLORS.network;
      ctx.fillRect(x, FRAME_BASE + 1, 1, down(s.starvationMs));
      ctx.fillStyle = COLORS.backlog;
      ctx.fillRect(x, FRAME_BASE + 1, 1, down(s.backlogMs));
    });
  }
}
