import { App } from "../src/app/app";

/** A stand-in for the browser's location and history, as App reads and writes them. */
function fakeBrowser(href: string) {
  const g = globalThis as { location?: unknown; history?: unknown };
  const location = new URL(href);
  const state = { href: location.href, search: location.search, hash: location.hash };
  g.location = state;
  g.history = {
    replaceState(_data: unknown, _unused: string, url: string) {
      const next = new URL(url);
      state.href = next.href;
      state.search = next.search;
      state.hash = next.hash;
    },
  };
  return { state, restore: () => (delete g.location, delete g.history) };
}

describe("App.autoSession", () => {
  test("uses ?q= when present", async () => {
    const b = fakeBrowser("http://127.0.0.1:8080/hello/?q=room7");
    try {
      await expect(App.autoSession()).resolves.toBe("room7");
      expect(b.state.href).toBe("http://127.0.0.1:8080/hello/?q=room7");
    } finally {
      b.restore();
    }
  });

  test("otherwise makes a random name and writes it into the URL", async () => {
    const b = fakeBrowser("http://127.0.0.1:8080/hello/");
    try {
      const name = await App.autoSession();
      expect(name).toMatch(/^[a-z2-9]{10}$/);
      expect(new URL(b.state.href).searchParams.get("q")).toBe(name);
      await expect(App.autoSession()).resolves.toBe(name);
    } finally {
      b.restore();
    }
  });
});

describe("App.autoPassword", () => {
  test("uses #pw= when present and keeps it out of the query (fragments never reach a server)", async () => {
    const b = fakeBrowser("http://127.0.0.1:8080/hello/?q=x#pw=s3cret");
    try {
      await expect(App.autoPassword()).resolves.toBe("s3cret");
    } finally {
      b.restore();
    }
  });

  test("otherwise makes a random one, writes it into the fragment only, and reuses it", async () => {
    const b = fakeBrowser("http://127.0.0.1:8080/hello/?q=x");
    try {
      const pw = await App.autoPassword();
      expect(pw).toMatch(/^[A-Za-z0-9_-]{22}$/);
      const url = new URL(b.state.href);
      expect(new URLSearchParams(url.hash.slice(1)).get("pw")).toBe(pw);
      expect(url.search).toBe("?q=x");
      await expect(App.autoPassword()).resolves.toBe(pw);
      expect(App.sessionURL).toBe(b.state.href);
    } finally {
      b.restore();
    }
  });

  test("outside a browser, fresh random passwords", async () => {
    const [a, b] = await Promise.all([App.autoPassword(), App.autoPassword()]);
    expect(a).not.toBe(b);
  });
});
