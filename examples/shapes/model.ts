import { Model } from "@lockstep/client";

/** A draggable shape. `x`, `y` are its center in board units (0…WIDTH, 0…HEIGHT). */
export interface Shape {
  id: string;
  kind: "circle" | "square";
  x: number;
  y: number;
  /** Diameter or side. */
  size: number;
  color: string;
  /** viewId of the user dragging it, or null. */
  owner: string | null;
  /** Stacking order: the last grabbed is on top. */
  z: number;
}

/** A user's pointer on the board. */
export interface Cursor {
  x: number;
  y: number;
}

/**
 * Shapes many users drag at once, and everyone's pointer. Views publish, in scope "shapes":
 * `grab { viewId, id }`, `move { viewId, id, x, y }`, `drop { viewId, id, x?, y? }`,
 * `pointer { viewId, x, y }` and `pointer-out { viewId }`. A grabbed shape belongs to its grabber
 * until dropped or until the grabber leaves; the model ignores anything malformed or not allowed
 * (any client can send anything), and keeps every coordinate on the board.
 *
 * Limits and helpers are static members on purpose: the class source is part of the session's
 * code hash, so changing one starts a new session instead of letting two code versions disagree.
 */
export class ShapesModel extends Model {
  static readonly WIDTH = 800;
  static readonly HEIGHT = 500;
  static readonly COUNT = 8;
  static readonly COLORS = ["#ef476f", "#ffd166", "#06d6a0", "#118ab2", "#8338ec", "#fb5607", "#3a86ff", "#8ac926"];
  static readonly CURSOR_COLORS = ["#d62828", "#2a9d8f", "#6a4c93", "#e76f51", "#1d3557", "#bc6c25", "#007f5f", "#b5179e"];

  shapes = new Map<string, Shape>();
  cursors = new Map<string, Cursor>();
  /** Present views and the color of their cursor. */
  viewColors = new Map<string, string>();
  topZ = 0;

  override init(): void {
    const { WIDTH, HEIGHT, COUNT, COLORS } = ShapesModel;
    for (let i = 0; i < COUNT; i++) {
      const size = 60 + Math.round(this.random() * 40);
      const id = `s${i}`;
      this.shapes.set(id, {
        id,
        kind: i % 2 === 0 ? "circle" : "square",
        x: Math.round(size / 2 + this.random() * (WIDTH - size)),
        y: Math.round(size / 2 + this.random() * (HEIGHT - size)),
        size,
        color: COLORS[i % COLORS.length]!,
        owner: null,
        z: ++this.topZ,
      });
    }
    this.subscribe(this.sessionId, "view-join", this.viewJoined);
    this.subscribe(this.sessionId, "view-exit", this.viewExited);
    this.subscribe("shapes", "grab", this.grab);
    this.subscribe("shapes", "move", this.move);
    this.subscribe("shapes", "drop", this.drop);
    this.subscribe("shapes", "pointer", this.pointer);
    this.subscribe("shapes", "pointer-out", this.pointerOut);
  }

  /** view-join data is the viewId, or `{ viewId, viewData }` when the view joined with viewData. */
  viewJoined(data: unknown): void {
    const viewId = typeof data === "string" ? data : ShapesModel.field(data, "viewId");
    if (typeof viewId !== "string" || this.viewColors.has(viewId)) return;
    const colors = ShapesModel.CURSOR_COLORS;
    this.viewColors.set(viewId, colors[Math.floor(this.random() * colors.length)]!);
  }

  viewExited(viewId: unknown): void {
    if (typeof viewId !== "string") return;
    this.viewColors.delete(viewId);
    this.cursors.delete(viewId);
    for (const shape of this.shapes.values()) if (shape.owner === viewId) shape.owner = null;
  }

  grab(data: unknown): void {
    const viewId = this.viewOf(data);
    const shape = this.shapeOf(data);
    if (viewId === undefined || !shape || (shape.owner !== null && shape.owner !== viewId)) return;
    shape.owner = viewId;
    if (shape.z !== this.topZ) shape.z = ++this.topZ;
  }

  move(data: unknown): void {
    const shape = this.ownedShape(data);
    const x = ShapesModel.number(data, "x");
    const y = ShapesModel.number(data, "y");
    if (!shape || x === undefined || y === undefined) return;
    this.place(shape, x, y);
  }

  drop(data: unknown): void {
    const shape = this.ownedShape(data);
    if (!shape) return;
    const x = ShapesModel.number(data, "x");
    const y = ShapesModel.number(data, "y");
    if (x !== undefined && y !== undefined) this.place(shape, x, y);
    shape.owner = null;
  }

  pointer(data: unknown): void {
    const viewId = this.viewOf(data);
    const x = ShapesModel.number(data, "x");
    const y = ShapesModel.number(data, "y");
    if (viewId === undefined || x === undefined || y === undefined) return;
    this.cursors.set(viewId, { x: ShapesModel.clamp(x, 0, ShapesModel.WIDTH), y: ShapesModel.clamp(y, 0, ShapesModel.HEIGHT) });
  }

  pointerOut(data: unknown): void {
    const viewId = this.viewOf(data);
    if (viewId !== undefined) this.cursors.delete(viewId);
  }

  /** Moves a shape, keeping all of it on the board. */
  place(shape: Shape, x: number, y: number): void {
    const r = shape.size / 2;
    shape.x = ShapesModel.clamp(x, r, ShapesModel.WIDTH - r);
    shape.y = ShapesModel.clamp(y, r, ShapesModel.HEIGHT - r);
  }

  /** The present view an event claims to come from. */
  viewOf(data: unknown): string | undefined {
    const viewId = ShapesModel.field(data, "viewId");
    return typeof viewId === "string" && this.viewColors.has(viewId) ? viewId : undefined;
  }

  shapeOf(data: unknown): Shape | undefined {
    const id = ShapesModel.field(data, "id");
    return typeof id === "string" ? this.shapes.get(id) : undefined;
  }

  /** The shape of the event, if the event's view is dragging it. */
  ownedShape(data: unknown): Shape | undefined {
    const viewId = this.viewOf(data);
    const shape = this.shapeOf(data);
    return viewId !== undefined && shape?.owner === viewId ? shape : undefined;
  }

  static field(data: unknown, key: string): unknown {
    return typeof data === "object" && data !== null ? (data as Record<string, unknown>)[key] : undefined;
  }

  static number(data: unknown, key: string): number | undefined {
    const n = ShapesModel.field(data, key);
    return typeof n === "number" && Number.isFinite(n) ? n : undefined;
  }

  /** Clamped to [min, max] and rounded to a tenth: plenty for pixels, and keeps the state small. */
  static clamp(n: number, min: number, max: number): number {
    return Math.round(Math.min(max, Math.max(min, n)) * 10) / 10;
  }
}
ShapesModel.register("ShapesModel");
