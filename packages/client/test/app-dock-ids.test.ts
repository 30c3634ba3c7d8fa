/**
 * @jest-environment jsdom
 */
/**
 * The App widgets under the element ids Croquet and Multisynq apps look up and style
 * (`croquet_dock`/`multisynq_dock`, `croquet_badge`, `croquet_qrcode`, `croquet_stats`,
 * `croquet_spinnerOverlay`, `croquet_loader`), the stats widget, Croquet's `App.root`/`App.badge`/
 * `App.qrcode`/`App.stats` settings, and the `nodock`/`noqr`/`nostats`/`nomessages` URL switches.
 */
import "./jsdom-globals";
import { App } from "../src/app/app";
import { StatsWidget, statsText } from "../src/app/stats";
import { urlSwitch } from "../src/app/url-switches";
import { createBrowserUi } from "../src/app/browser-ui";
import type { SessionStatsSource } from "../src/session/ui";

/** jsdom has no 2D canvas: a stand-in that records what is drawn (enough for the QR code and the graph). */
function fakeContext(): CanvasRenderingContext2D {
  const rects: number[][] = [];
  return { fillStyle: "", fillRect: (...r: number[]) => void rects.push(r), clearRect: () => (rects.length = 0), rects } as unknown as CanvasRenderingContext2D;
}

const SESSION = "S".repeat(43);
let stats: { users: number; backlog: number; starvation: number };
const source: SessionStatsSource = { users: () => stats.users, backlog: () => stats.backlog, starvation: () => stats.starvation };

/** Whether an id names the element holding the one with the other id (Multisynq's around Croquet's). */
function nested(outer: string, inner: string): boolean {
  const el = document.getElementById(inner);
  return el !== null && el.parentElement === document.getElementById(outer);
}

function setUrl(query: string): void {
  window.history.replaceState(null, "", `/app/${query}`);
}

beforeAll(() => {
  const contexts = new WeakMap<HTMLCanvasElement, CanvasRenderingContext2D>();
  HTMLCanvasElement.prototype.getContext = function (this: HTMLCanvasElement) {
    if (!contexts.has(this)) contexts.set(this, fakeContext());
    return contexts.get(this)!;
  } as unknown as typeof HTMLCanvasElement.prototype.getContext;
});

beforeEach(() => {
  document.body.replaceChildren();
  setUrl("?q=room#pw=secret");
  stats = { users: 2, backlog: 0, starvation: 0 };
  App.root = null;
  App.badge = true;
  App.qrcode = true;
  App.stats = false;
  App.messages = true;
  App.makeWidgetDock({}); // a fresh dock per test (replaces the last one)
  createBrowserUi()!.ended(SESSION);
});

describe("dock element ids", () => {
  test("the dock, badge and QR code have Croquet's ids, each inside its Multisynq twin; the look's classes stay", () => {
    const dock = App.makeWidgetDock()!;
    expect(dock.id).toBe("croquet_dock");
    expect(dock.classList.contains("lockstep-dock")).toBe(true);
    expect(nested("multisynq_dock", "croquet_dock")).toBe(true);
    expect(document.getElementById("multisynq_dock")!.parentElement).toBe(document.body);
    App.makeSessionWidgets(SESSION);
    expect(nested("multisynq_badge", "croquet_badge")).toBe(true);
    expect(document.getElementById("croquet_badge")!.querySelector(".lockstep-badge")).not.toBeNull();
    expect(nested("multisynq_qrcode", "croquet_qrcode")).toBe(true);
    expect(document.getElementById("croquet_qrcode")!.querySelector("canvas.lockstep-qr")).not.toBeNull();
    // No stats unless asked for: the dock keeps its current look.
    expect(document.getElementById("croquet_stats")).toBeNull();
    // The Multisynq twins generate no box: the dock's layout is as before.
    expect(document.getElementById("multisynq_dock")!.className).toBe("lockstep-compat");
    expect(document.getElementById("lockstep-styles")!.textContent).toContain(".lockstep-compat { display: contents; }");
  });

  test("the spinner overlay is #croquet_spinnerOverlay inside #multisynq_spinnerOverlay, with #croquet_loader; hidden means gone", () => {
    App.showSyncWait(true, 0.5);
    const overlay = document.getElementById("croquet_spinnerOverlay")!;
    expect(overlay.classList.contains("lockstep-sync")).toBe(true);
    expect(nested("multisynq_spinnerOverlay", "croquet_spinnerOverlay")).toBe(true);
    expect(nested("multisynq_loader", "croquet_loader")).toBe(true);
    expect(overlay.textContent).toBe("Catching up… 50%");
    App.showSyncWait(true, 0.75);
    expect(document.querySelectorAll("#croquet_spinnerOverlay")).toHaveLength(1);
    App.showSyncWait(false);
    expect(document.getElementById("croquet_spinnerOverlay")).toBeNull();
    expect(document.getElementById("multisynq_spinnerOverlay")).toBeNull();
  });

  test("an app that hides #croquet_dock or #multisynq_dock hides the dock", () => {
    App.makeWidgetDock();
    document.getElementById("multisynq_dock")!.style.display = "none";
    expect(getComputedStyle(document.getElementById("multisynq_dock")!).display).toBe("none");
  });
});

describe("the stats widget", () => {
  test("makeWidgetDock({ stats: true }) shows #croquet_stats with users and frame rate once a session tells its numbers", () => {
    App.makeWidgetDock({ stats: true });
    const ui = createBrowserUi()!;
    ui.joined({ sessionId: SESSION, persistentId: "P", name: "room", viewId: "V" });
    expect(document.getElementById("croquet_stats")).toBeNull(); // no numbers yet
    ui.stats!(SESSION, source);
    expect(nested("multisynq_stats", "croquet_stats")).toBe(true);
    expect(document.querySelector("#croquet_stats .lockstep-stats canvas.lockstep-stats-graph")).not.toBeNull();
    ui.ended(SESSION);
    expect(document.getElementById("croquet_stats")).toBeNull();
  });

  test("App.stats = true puts it in any dock; an element (or its id) gets one of its own", () => {
    App.stats = true;
    App.makeWidgetDock();
    const ui = createBrowserUi()!;
    ui.stats!(SESSION, source);
    expect(document.getElementById("croquet_stats")).not.toBeNull();
    const mine = document.createElement("div");
    mine.id = "my-stats";
    document.body.appendChild(mine);
    App.stats = "my-stats";
    ui.stats!(SESSION, source);
    expect(mine.querySelector(".lockstep-stats")).not.toBeNull();
    expect(document.getElementById("croquet_stats")).toBeNull(); // not in the dock any more
  });

  test("samples frames: frame time, users, backlog and network silence, in its text and graph", () => {
    const widget = new StatsWidget(document);
    document.body.appendChild(widget.element);
    widget.show(source);
    widget.sample(1000);
    widget.sample(1016);
    widget.sample(1033);
    expect(widget.samples).toEqual([
      { frameMs: 16, users: 2, backlogMs: 0, starvationMs: 0 },
      { frameMs: 17, users: 2, backlogMs: 0, starvationMs: 0 },
    ]);
    expect(widget.element.textContent).toBe("2 users, 61 fpsin sync");
    stats = { users: 1, backlog: 2500, starvation: 0 };
    widget.sample(1050);
    expect(widget.element.textContent).toBe("1 user, 60 fpsbacklog 2.5 s");
    stats = { users: 1, backlog: 0, starvation: 3000 };
    widget.sample(1066);
    expect(statsText(widget.samples)[1]).toBe("no news for 3.0 s");
    for (let t = 1100; t < 1100 + 200 * 16; t += 16) widget.sample(t);
    expect(widget.samples.length).toBe(120); // bounded history
    widget.stop();
  });
});

describe("App settings and URL switches", () => {
  test("?nodock: makeWidgetDock makes none", () => {
    setUrl("?q=room&nodock#pw=secret");
    expect(urlSwitch("nodock")).toBe(true);
    expect(App.makeWidgetDock()).toBeNull();
    expect(document.getElementById("croquet_dock")).toBeNull();
    setUrl("?q=room&nodock=false");
    expect(urlSwitch("nodock")).toBe(false);
  });

  test("?noqr: no QR code in the dock; ?nostats: no stats (also when given in the fragment)", () => {
    setUrl("?q=room&noqr#pw=secret&nostats");
    App.makeWidgetDock({ stats: true });
    const ui = createBrowserUi()!;
    ui.stats!(SESSION, source);
    expect(document.getElementById("croquet_badge")).not.toBeNull();
    expect(document.getElementById("croquet_qrcode")).toBeNull();
    expect(document.getElementById("croquet_stats")).toBeNull();
  });

  test("?nomessages: statuses and warnings make no toasts; errors still do", () => {
    setUrl("?q=room&nomessages");
    App.showMessage("hello", { level: "status" });
    expect(document.querySelector(".lockstep-toast")).toBeNull();
    App.showMessage("broken", { level: "error" });
    expect(document.querySelector(".lockstep-toast-error")).not.toBeNull();
  });

  test("App.badge and App.qrcode: false leaves them out of the dock; an element id gets them instead", () => {
    App.badge = false;
    App.qrcode = false;
    App.makeWidgetDock();
    App.makeSessionWidgets(SESSION);
    expect(document.getElementById("croquet_badge")).toBeNull();
    expect(document.getElementById("croquet_qrcode")).toBeNull();
    const badge = document.createElement("span");
    badge.id = "my-badge";
    const qr = document.createElement("div");
    qr.id = "my-qr";
    document.body.append(badge, qr);
    App.badge = "my-badge";
    App.qrcode = qr;
    App.makeSessionWidgets(SESSION);
    expect(badge.querySelector(".lockstep-badge")).not.toBeNull();
    expect(qr.querySelector("canvas")).not.toBeNull();
  });

  test("App.root: an element id holds the widgets; false shows none at all", () => {
    const root = document.createElement("main");
    root.id = "app-root";
    document.body.appendChild(root);
    App.root = "app-root";
    expect(App.root).toBe(root);
    App.makeWidgetDock();
    App.showSyncWait(true);
    expect(root.querySelector("#croquet_dock")).not.toBeNull();
    expect(root.querySelector("#croquet_spinnerOverlay")).not.toBeNull();
    App.showSyncWait(false);
    App.root = false;
    expect(App.root).toBe(false);
    expect(App.makeWidgetDock()).toBeNull();
    App.showSyncWait(true);
    App.showMessage("nowhere", { level: "error" });
    expect(document.getElementById("croquet_spinnerOverlay")).toBeNull();
    expect(document.querySelector(".lockstep-toast")).toBeNull();
  });
});
