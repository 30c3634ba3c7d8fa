/**
 * `?reflector=` in the page's URL points an app at another reflector without a rebuild, as in
 * Croquet; a value that is not a ws:// or wss:// URL is ignored with a warning.
 */
import { Model, Session, View } from "@lockstep/client";
import { createMemoryReflector, ManualClock } from "@lockstep/test-support";

class Counter extends Model {
  count = 0;
}
Counter.register("UrlReflectorCounter");

const withLocation = async (search: string, body: () => Promise<void>): Promise<void> => {
  const g = globalThis as { location?: unknown };
  g.location = { search, hash: "" };
  try {
    await body();
  } finally {
    delete g.location;
  }
};

async function joinedUrl(reflector: string | undefined): Promise<string> {
  const clock = new ManualClock();
  const mem = await createMemoryReflector({ clock });
  const urls: string[] = [];
  const session = await Session.join({
    appId: "test.url-reflector",
    name: "room",
    password: "pw",
    model: Counter,
    view: View,
    ...(reflector && { reflector }),
    socket: (url) => {
      urls.push(url);
      return mem.open({ url: mem.url }).client;
    },
    timers: clock,
    step: "manual",
    autoSleep: false,
  });
  await session.leave();
  await mem.close();
  return urls[0]!;
}

test("the URL's reflector= wins over the join option", async () => {
  await withLocation("?reflector=wss://reflector.test:8443/", async () => {
    expect(await joinedUrl("ws://127.0.0.1:9/")).toBe("wss://reflector.test:8443/");
  });
});

test("without it, the join option (or the default) is used", async () => {
  await withLocation("?q=room", async () => {
    expect(await joinedUrl("ws://127.0.0.1:9/")).toBe("ws://127.0.0.1:9/");
    expect(await joinedUrl(undefined)).toBe("ws://127.0.0.1:8787/");
  });
});

test("a reflector= that is not a WebSocket URL is ignored, with a warning", async () => {
  const warn = jest.spyOn(console, "warn").mockImplementation(() => {});
  try {
    await withLocation("?reflector=javascript:alert(1)", async () => {
      expect(await joinedUrl("ws://127.0.0.1:9/")).toBe("ws://127.0.0.1:9/");
    });
    expect(warn.mock.calls.some((c) => String(c[0]).includes("ignoring the URL's reflector="))).toBe(true);
  } finally {
    warn.mockRestore();
  }
});
