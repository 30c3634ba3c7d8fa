/**
 * Several reflector URLs through the public API: `?reflector=` in the page's URL with a list, and
 * the `reflector` option as an array. The first join tries them in order (see reflectors.test.ts
 * for how a list is read, and cluster.link.test.ts for how attempts move along it).
 */
import { JoinError, Model, Session, View } from "@lockstep/client";
import { createMemoryReflector, ManualClock, type MemoryReflector } from "@lockstep/test-support";

class Counter extends Model {
  count = 0;
}
Counter.register("UrlReflectorsCounter");

let clock: ManualClock;
let mem: MemoryReflector;
beforeEach(async () => {
  clock = new ManualClock();
  mem = await createMemoryReflector({ clock });
});
afterEach(() => mem.close());

/** Joins with `reflector` (as the option's raw value); sockets to a URL with "down" in it are refused. Returns the URLs tried. */
async function urlsTried(reflector: unknown): Promise<string[]> {
  const urls: string[] = [];
  const session = await Session.join({
    appId: "test.url-reflectors",
    name: "room",
    password: "pw",
    model: Counter,
    view: View,
    // An array is typed by JoinOptions only once session.ts takes `string | readonly string[]`.
    ...(reflector === undefined ? {} : ({ reflector } as object)),
    socket: (url) => {
      urls.push(url);
      if (url.includes("down")) throw new Error("ECONNREFUSED (test)");
      return mem.open({ url: mem.url }).client;
    },
    timers: clock,
    step: "manual",
    autoSleep: false,
  });
  await session.leave();
  return urls;
}

test("?reflector= with several URLs (commas) wins over the option and is tried in order", async () => {
  const g = globalThis as { location?: unknown };
  g.location = { search: "?reflector=ws://down.test:8787/,ws://b.test:8787/", hash: "" };
  try {
    expect(await urlsTried("ws://option.test/")).toEqual(["ws://down.test:8787/", "ws://b.test:8787/"]);
  } finally {
    delete g.location;
  }
});

test("the option as an array, or one string with commas or whitespace between the URLs", async () => {
  expect(await urlsTried(["ws://down-1.test/", "ws://down-2.test/", "ws://c.test/"])).toEqual(["ws://down-1.test/", "ws://down-2.test/", "ws://c.test/"]);
  expect(await urlsTried("ws://down.test/ \n ws://d.test/")).toEqual(["ws://down.test/", "ws://d.test/"]);
});

test("an option that names no WebSocket URL fails the join at once with a JoinError saying what to give", async () => {
  const error = jest.spyOn(console, "error").mockImplementation(() => {});
  try {
    const failed = await urlsTried("http://127.0.0.1:8787/").catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(JoinError);
    expect((failed as Error).message).toMatch(/is an HTTP URL: a reflector is reached over WebSocket, ws:\/\/127\.0\.0\.1:8787\//);
  } finally {
    error.mockRestore();
  }
});
