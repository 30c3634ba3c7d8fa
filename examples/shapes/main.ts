import { App, Session, View } from "@lockstep/client";
import { ShapesModel, type Shape } from "./model";

const SVG_NS = "http://www.w3.org/2000/svg";
const { WIDTH, HEIGHT } = ShapesModel;
/** At most ~30 pointer/move events a second leave this client, whatever the mouse's rate. */
const SEND_INTERVAL_MS = 33;
/** Time constant of the easing towards the model's positions: remote moves arrive ~30 times a second. */
const SMOOTHING_MS = 60;

/** An element drawn at a smoothed position. */
interface Sprite {
  readonly el: SVGGElement;
  x: number;
  y: number;
  transform: string;
}

/** The local user's drag: the shape follows the pointer at once, before the model confirms the grab. */
interface Drag {
  readonly id: string;
  readonly pointerId: number;
  /** Offset from the pointer to the shape's center, so the shape does not jump under the pointer. */
  readonly dx: number;
  readonly dy: number;
  x: number;
  y: number;
  /** The model has made this view the owner. */
  confirmed: boolean;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
}

function setAttr(el: Element, name: string, value: string): void {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

/**
 * The board (`#board`): an SVG of 800×500 board units scaled to fit. Each shape is a
 * `g.shape[data-shape-id]` (with the model's position in `data-x`/`data-y` and its dragger in
 * `data-owner`); each other user's pointer a `g.cursor[data-view-id]`. Shapes and cursors ease
 * towards the model's positions every frame; a shape this user drags follows the pointer at once.
 * The view may be rebuilt after a rejoin: the constructor replaces the board's content and
 * `detach` removes every listener it added.
 */
class ShapesView extends View {
  readonly #model: ShapesModel;
  readonly #svg = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "surface" });
  readonly #shapeLayer = svg("g", { class: "shapes" });
  readonly #cursorLayer = svg("g", { class: "cursors" });
  readonly #shapes = new Map<string, Sprite>();
  readonly #cursors = new Map<string, Sprite>();
  readonly #listeners = new AbortController();
  #drag: Drag | undefined;
  #pointer: { x: number; y: number } | undefined;
  #pointerDirty = false;
  #lastSent = -Infinity;
  #lastFrame: number | undefined;
  /** Stacking order last applied to the DOM. */
  #order = "";
  #status = "";

  constructor(model: ShapesModel) {
    super(model);
    this.#model = model;
    this.#svg.append(this.#shapeLayer, this.#cursorLayer);
    document.getElementById("board")!.replaceChildren(this.#svg);
    const on = <K extends keyof SVGElementEventMap>(type: K, fn: (e: SVGElementEventMap[K]) => void): void =>
      this.#svg.addEventListener(type, fn, { signal: this.#listeners.signal });
    on("pointerdown", (e) => this.#pointerDown(e));
    on("pointermove", (e) => this.#pointerMove(e));
    on("pointerup", (e) => this.#endDrag(e.pointerId));
    on("pointercancel", (e) => this.#endDrag(e.pointerId));
    on("lostpointercapture", (e) => this.#endDrag(e.pointerId));
    on("pointerleave", () => this.#pointerLeave());
    this.#render(Infinity);
  }

  /** Board units of a pointer event (exact however the SVG is scaled). */
  #toBoard(e: PointerEvent): { x: number; y: number } {
    const ctm = this.#svg.getScreenCTM();
    if (!ctm) return { x: 0, y: 0 };
    const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(ctm.inverse());
    return { x: p.x, y: p.y };
  }

  #pointerDown(e: PointerEvent): void {
    const el = (e.target as Element).closest<SVGGElement>(".shape");
    const id = el?.dataset.shapeId;
    const shape = id === undefined ? undefined : this.#model.shapes.get(id);
    const sprite = id === undefined ? undefined : this.#shapes.get(id);
    if (this.#drag || !shape || !sprite || e.button !== 0) return;
    if (shape.owner !== null && shape.owner !== this.viewId) return; // someone else is dragging it
    e.preventDefault();
    const p = this.#toBoard(e);
    this.#drag = { id: shape.id, pointerId: e.pointerId, dx: sprite.x - p.x, dy: sprite.y - p.y, x: sprite.x, y: sprite.y, confirmed: false };
    this.#svg.setPointerCapture(e.pointerId);
    this.publish("shapes", "grab", { viewId: this.viewId, id: shape.id });
    this.#pointer = p;
    this.#pointerDirty = true;
  }

  #pointerMove(e: PointerEvent): void {
    const p = this.#toBoard(e);
    this.#pointer = p;
    this.#pointerDirty = true;
    const drag = this.#drag;
    if (drag && e.pointerId === drag.pointerId) {
      const r = (this.#model.shapes.get(drag.id)?.size ?? 0) / 2;
      drag.x = Math.min(WIDTH - r, Math.max(r, p.x + drag.dx));
      drag.y = Math.min(HEIGHT - r, Math.max(r, p.y + drag.dy));
    }
  }

  #endDrag(pointerId: number): void {
    const drag = this.#drag;
    if (!drag || drag.pointerId !== pointerId) return;
    this.#drag = undefined;
    if (this.#svg.hasPointerCapture(pointerId)) this.#svg.releasePointerCapture(pointerId);
    // Not throttled: the final position must arrive exactly.
    this.publish("shapes", "drop", { viewId: this.viewId, id: drag.id, x: drag.x, y: drag.y });
  }

  #pointerLeave(): void {
    if (this.#drag || !this.#pointer) return;
    this.#pointer = undefined;
    this.#pointerDirty = false;
    this.publish("shapes", "pointer-out", { viewId: this.viewId });
  }

  /** Drops a local drag the model gave to someone else (they grabbed it first) or took away. */
  #checkDrag(): void {
    const drag = this.#drag;
    if (!drag) return;
    const owner = this.#model.shapes.get(drag.id)?.owner;
    if (owner === this.viewId) {
      drag.confirmed = true;
    } else if (owner === undefined || owner !== null || drag.confirmed) {
      this.#drag = undefined;
      if (this.#svg.hasPointerCapture(drag.pointerId)) this.#svg.releasePointerCapture(drag.pointerId);
    }
  }

  override update(time: number): void {
    const dt = this.#lastFrame === undefined ? Infinity : Math.max(0, time - this.#lastFrame);
    this.#lastFrame = time;
    this.#checkDrag();
    if (this.#pointerDirty && this.#pointer && time - this.#lastSent >= SEND_INTERVAL_MS) {
      this.#pointerDirty = false;
      this.#lastSent = time;
      this.publish("shapes", "pointer", { viewId: this.viewId, ...this.#pointer });
      const drag = this.#drag;
      if (drag) this.publish("shapes", "move", { viewId: this.viewId, id: drag.id, x: drag.x, y: drag.y });
    }
    this.#render(dt);
  }

  #render(dt: number): void {
    const k = 1 - Math.exp(-dt / SMOOTHING_MS);
    const model = this.#model;
    for (const shape of model.shapes.values()) {
      const sprite = this.#shapes.get(shape.id) ?? this.#newShape(shape);
      const drag = this.#drag?.id === shape.id ? this.#drag : undefined;
      if (drag) {
        sprite.x = drag.x;
        sprite.y = drag.y;
      } else {
        ease(sprite, shape.x, shape.y, k);
      }
      place(sprite);
      const el = sprite.el;
      setAttr(el, "data-x", String(shape.x));
      setAttr(el, "data-y", String(shape.y));
      setAttr(el, "data-owner", shape.owner ?? "");
      el.classList.toggle("grabbed", shape.owner !== null);
      el.classList.toggle("mine", drag !== undefined || shape.owner === this.viewId);
      el.classList.toggle("locked", shape.owner !== null && shape.owner !== this.viewId);
      setAttr(el.firstElementChild!, "stroke", shape.owner === null ? "none" : (model.viewColors.get(shape.owner) ?? "#333"));
    }
    // The last grabbed on top; the one being dragged here above all.
    const order = [...model.shapes.values()].sort((a, b) => this.#stackKey(a) - this.#stackKey(b)).map((s) => s.id);
    const key = order.join(" ");
    if (key !== this.#order) {
      this.#order = key;
      for (const id of order) this.#shapeLayer.append(this.#shapes.get(id)!.el);
    }
    for (const [viewId, cursor] of model.cursors) {
      if (viewId === this.viewId) continue; // the real pointer is right there
      const sprite = this.#cursors.get(viewId) ?? this.#newCursor(viewId, cursor.x, cursor.y);
      ease(sprite, cursor.x, cursor.y, k);
      place(sprite);
      setAttr(sprite.el, "data-x", String(cursor.x));
      setAttr(sprite.el, "data-y", String(cursor.y));
      setAttr(sprite.el, "fill", model.viewColors.get(viewId) ?? "#333");
    }
    for (const [viewId, sprite] of this.#cursors) {
      if (model.cursors.has(viewId)) continue;
      sprite.el.remove();
      this.#cursors.delete(viewId);
    }
    const users = model.viewColors.size;
    const status = `${users} ${users === 1 ? "user" : "users"} here`;
    if (status !== this.#status) document.getElementById("status")!.textContent = this.#status = status;
  }

  #stackKey(shape: Shape): number {
    return this.#drag?.id === shape.id ? Infinity : shape.z;
  }

  #newShape(shape: Shape): Sprite {
    const el = svg("g", { class: "shape", "data-shape-id": shape.id });
    const s = shape.size;
    const body = shape.kind === "circle" ? svg("circle", { r: s / 2 }) : svg("rect", { x: -s / 2, y: -s / 2, width: s, height: s, rx: 8 });
    body.setAttribute("fill", shape.color);
    body.setAttribute("stroke-width", "4");
    el.append(body);
    this.#shapeLayer.append(el);
    const sprite = { el, x: shape.x, y: shape.y, transform: "" };
    this.#shapes.set(shape.id, sprite);
    return sprite;
  }

  #newCursor(viewId: string, x: number, y: number): Sprite {
    const el = svg("g", { class: "cursor", "data-view-id": viewId });
    el.append(svg("path", { d: "M0 0 L0 18 L5 13.5 L8.5 21 L11.5 19.5 L8 12.5 L14 12 Z", stroke: "#fff", "stroke-width": 1.5 }));
    this.#cursorLayer.append(el);
    const sprite = { el, x, y, transform: "" };
    this.#cursors.set(viewId, sprite);
    return sprite;
  }

  override detach(): void {
    this.#listeners.abort();
    this.#drag = undefined;
    super.detach();
  }
}

/** Exponential smoothing: a fixed fraction of the way per unit of time, whatever the frame rate. */
function ease(sprite: Sprite, x: number, y: number, k: number): void {
  sprite.x += (x - sprite.x) * k;
  sprite.y += (y - sprite.y) * k;
  if (Math.abs(x - sprite.x) < 0.05 && Math.abs(y - sprite.y) < 0.05) {
    sprite.x = x;
    sprite.y = y;
  }
}

function place(sprite: Sprite): void {
  const transform = `translate(${sprite.x.toFixed(1)} ${sprite.y.toFixed(1)})`;
  if (transform === sprite.transform) return;
  sprite.transform = transform;
  sprite.el.setAttribute("transform", transform);
}

App.makeWidgetDock(); // badge + QR code of the join link
const session = await Session.join({
  appId: "dev.lockstep.shapes",
  name: App.autoSession(),
  password: App.autoPassword(),
  model: ShapesModel,
  view: ShapesView,
  reflector: new URLSearchParams(location.search).get("reflector") ?? `ws://${location.hostname}:8787/`,
});
Object.assign(window, { session }); // handy in the devtools console (and used by the browser tests)
