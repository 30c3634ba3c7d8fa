import { App } from "../src/app/app";
import { createBrowserUi } from "../src/app/browser-ui";
import { browserDocument } from "../src/app/dom";

// Node has no `document`: every widget must be a silent no-op, so the client runs in Node.
describe("App widgets outside a browser", () => {
  test("there is no document", () => {
    expect(typeof (globalThis as { document?: unknown }).document).toBe("undefined");
    expect(browserDocument()).toBeUndefined();
  });

  test("createBrowserUi() returns undefined", () => {
    expect(createBrowserUi()).toBeUndefined();
  });

  test("defaults: widgets on, root null (no body)", () => {
    expect(App.sync).toBe(true);
    expect(App.messages).toBe(true);
    expect(App.badge).toBe(true);
    expect(App.root).toBeNull();
  });

  test("root can be set and reset to the default with null", () => {
    const fake = {} as HTMLElement;
    App.root = fake;
    try {
      expect(App.root).toBe(fake);
    } finally {
      App.root = null;
    }
    expect(App.root).toBeNull();
  });

  test("widget calls do nothing and do not throw", () => {
    const log = jest.spyOn(console, "log").mockImplementation(() => undefined);
    const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
    const error = jest.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      expect(() => App.showMessage("hello")).not.toThrow();
      expect(() => App.showMessage("bad", { level: "error", only: "once" })).not.toThrow();
      expect(() => App.showSyncWait(true, 0.5)).not.toThrow();
      expect(() => App.showSyncWait(false)).not.toThrow();
      expect(App.makeWidgetDock()).toBeNull();
      expect(App.makeWidgetDock({ badge: false, qrcode: true, debug: true, stats: true, alwaysPinned: true, iframe: true })).toBeNull();
      expect(() => App.makeSessionWidgets("abc")).not.toThrow();
      expect(App.makeQRCanvas()).toBeNull();
      expect(App.makeQRCanvas({ text: "hi", width: 64 })).toBeNull();
      // showMessage never logs: callers log what they need logged.
      expect(log).not.toHaveBeenCalled();
      expect(warn).not.toHaveBeenCalled();
      expect(error).not.toHaveBeenCalled();
    } finally {
      log.mockRestore();
      warn.mockRestore();
      error.mockRestore();
    }
  });
});
