// The Croquet/Multisynq compatibility suite (issue 17): apps written against Croquet's documented
// API (e2e/compat/apps), built with only their import aliased to @lockstep/client or with the
// `Croquet`/`Multisynq` global shimmed from the script-tag bundle, run in two Chromium pages and a
// late joiner (the Node apps in two processes). Each app must work, keep its replicas identical
// at every stream entry the clients share, and print no console error. COMPAT_TRACE=1 prints
// how long each step of a browser app took and how many entries were compared.
import type { Browser, Page } from "playwright-core";
import { buildApps, makeTemp, removeTemp, serveDir, startReflectorProcess, type ReflectorProcess } from "./compat/bed";
import { installNodeApp, startNodeClient, type NodeClient } from "./compat/node-apps";
import { closeAll, compareReplicas, openApp, openPage, startRecording, syncPoint, type AppUser } from "./compat/replicas";
import { launchBrowser } from "./harness";

let browser: Browser;
let reflector: ReflectorProcess;
let site: { url: string; close(): Promise<void> };
let outDir: string;

beforeAll(async () => {
  outDir = makeTemp("lockstep-compat-");
  // each assigned as soon as it is up, so afterAll stops it even if another one failed to start
  await Promise.all([launchBrowser().then((b) => (browser = b)), startReflectorProcess().then((r) => (reflector = r)), buildApps(outDir)]);
  site = await serveDir(outDir);
});

afterAll(async () => {
  await browser?.close();
  await site?.close();
  await reflector?.stop();
  if (outDir) removeTemp(outDir);
});

let sessions = 0;
/** A page URL of `app` in a new session: Croquet's `?q=` (name) and `#pw=` (password), and its `?reflector=`. */
function appUrl(app: string, query = ""): string {
  sessions += 1;
  const name = `${app}-${Date.now().toString(36)}-${sessions}`;
  return `${site.url}${app}/?q=${name}&reflector=${encodeURIComponent(reflector.url)}${query}#pw=compat-${sessions}`;
}

interface Scenario {
  /** With two users joined and recording: drive input and check what both show. */
  together(a: Page, b: Page): Promise<void>;
  /** Once the late joiner is in: check what it shows. */
  late?(c: Page, a: Page): Promise<void>;
  /** More URL parameters. */
  query?: string;
}

/** Two users, then a late joiner; replicas compared at every entry they share; no console errors. */
async function runBrowserApp(app: string, scenario: Scenario): Promise<void> {
  const url = appUrl(app, scenario.query);
  const t0 = Date.now();
  const mark = (what: string): void => void (process.env.COMPAT_TRACE && process.stdout.write(`${app} ${what} ${Date.now() - t0} ms\n`));
  const users: AppUser[] = [];
  try {
    users.push(await openApp(browser, url, reflector.url));
    users.push(await openApp(browser, url, reflector.url));
    mark("two joined");
    const [a, b] = users as [AppUser, AppUser];
    await Promise.all(users.map((u) => startRecording(u.page)));
    // a page that throws fails the test at once, with its error, instead of at a wait's timeout
    const crashed = (): Promise<never> => Promise.race(users.map((u) => u.crashed));
    await Promise.race([scenario.together(a.page, b.page), crashed()]);
    mark("together done");
    const c = await openApp(browser, url, reflector.url);
    users.push(c);
    await startRecording(c.page);
    mark("late joined");
    await Promise.race([scenario.late?.(c.page, a.page), crashed()]);
    mark("late done");
    const [ha, hb, hc] = await syncPoint(users);
    const pair = compareReplicas([ha!, hb!], ["first", "second"]);
    const late = compareReplicas([ha!, hc!], ["first", "late joiner"]);
    mark(`sync point (entries compared: ${pair} and ${late})`);
    expect(pair).toBeGreaterThan(0);
    expect(late).toBeGreaterThan(0);
    expect(users.flatMap((u, i) => u.errors.map((e) => `user ${i + 1}: ${e}`))).toEqual([]);
  } finally {
    await closeAll(users);
  }
}

const text = (page: Page, selector: string): Promise<string> => page.locator(selector).innerText();
const modelValue = <T>(page: Page, read: string): Promise<T> => page.evaluate((expr) => new Function("model", `return (${expr})`)((window as unknown as { session: { model: unknown } }).session.model), read) as Promise<T>;

test("hello world (script-tag Croquet global): joins without name or password, VERSION, synced, a reset seen by all", async () => {
  await runBrowserApp("hello", {
    async together(a, b) {
      await b.waitForFunction(() => Number(document.getElementById("countDisplay")!.textContent) >= 2);
      expect(await text(a, "#version")).toMatch(/^library \d+\.\d+/);
      await a.waitForFunction(() => document.getElementById("status")!.textContent!.startsWith("in sync"));
      await a.click("#countDisplay");
      await b.waitForFunction(() => Number(document.getElementById("countDisplay")!.textContent) <= 1);
    },
    async late(c, a) {
      const shown = Number(await text(c, "#countDisplay"));
      expect(Math.abs(shown - (await modelValue<number>(a, "model.count")))).toBeLessThanOrEqual(1);
      await a.waitForFunction(() => Number(document.getElementById("countDisplay")!.textContent) >= 2);
      await c.click("#countDisplay");
      await a.waitForFunction(() => Number(document.getElementById("countDisplay")!.textContent) <= 1);
    },
  });
});

test("simple chat (Multisynq global): tps 0, arrow handlers in subscribe, persistSession(object), view-join names", async () => {
  await runBrowserApp("chat", {
    async together(a, b) {
      await a.fill("#textIn", "hello from the first page");
      await a.press("#textIn", "Enter");
      await b.waitForFunction(() => document.getElementById("textOut")!.textContent!.includes("hello from the first page"));
      await b.fill("#textIn", "and hello back");
      await b.click("#sendButton");
      await a.waitForFunction(() => document.getElementById("textOut")!.textContent!.includes("and hello back"));
      expect(await text(a, "#viewCount")).toMatch(/^2 here/);
    },
    async late(c, a) {
      const history = await text(c, "#textOut");
      expect(history).toContain("hello from the first page");
      expect(history).toContain("and hello back");
      await c.waitForFunction(() => document.getElementById("viewCount")!.textContent!.startsWith("3 here"));
      await c.fill("#textIn", "late, but here");
      await c.press("#textIn", "Enter");
      await a.waitForFunction(() => document.getElementById("textOut")!.textContent!.includes("late, but here"));
    },
  });
});

/** Clicks the animation's field away from every ball: a click that lands on a moving ball removes it instead of adding one. */
async function clickFreeSpot(page: Page): Promise<void> {
  const spot = await page.evaluate(() => {
    const field = document.getElementById("field")!.getBoundingClientRect();
    const balls = Array.from(document.querySelectorAll(".ball"), (e) => e.getBoundingClientRect());
    for (let y = field.top + 40; y < field.bottom - 40; y += 20) {
      for (let x = field.left + 40; x < field.right - 40; x += 20) {
        if (balls.every((r) => Math.hypot(r.left + r.width / 2 - x, r.top + r.height / 2 - y) > 80)) return { x, y };
      }
    }
    throw new Error("no free spot on the field");
  });
  await page.mouse.click(spot.x, spot.y);
}

test("simple animation (import @croquet/croquet): child models stepped by future(), tps 100 clamped, add and remove by click", async () => {
  await runBrowserApp("animation", {
    async together(a, b) {
      await a.waitForFunction(() => document.querySelectorAll(".ball").length === 8);
      const x0 = await modelValue<number>(b, "model.balls[0].x");
      await b.waitForFunction((x) => (window as any).session.model.balls[0].x !== x, x0);
      await clickFreeSpot(a);
      await b.waitForFunction(() => document.querySelectorAll(".ball").length === 9);
      await b.evaluate(() => (document.querySelector(".ball") as HTMLElement).click());
      await a.waitForFunction(() => document.querySelectorAll(".ball").length === 8);
    },
    async late(c, a) {
      expect(await c.locator(".ball").count()).toBe(8);
      await clickFreeSpot(c);
      await a.waitForFunction(() => document.querySelectorAll(".ball").length === 9);
    },
  });
});

test("view smoothing (import @croquet/croquet): tps \"10x3\", optionsFromUrl, an eased view per frame, Messenger guarded", async () => {
  await runBrowserApp("smoothing", {
    query: "&speed=2",
    async together(a, b) {
      expect(await modelValue<number>(a, "model.speed")).toBe(2);
      await b.waitForFunction(() => (window as any).session.model.avatars.size === 2);
      await a.mouse.click(700, 500);
      const own = await a.evaluate(() => (window as any).session.viewId as string);
      await b.waitForFunction((id) => (window as any).session.model.avatars.get(id)?.lastGoto?.x === 700, own);
      await a.waitForFunction(() => document.getElementById("info")!.textContent === "2 avatars · speed 2");
    },
    async late(c, a) {
      await c.waitForFunction(() => document.getElementById("info")!.textContent === "3 avatars · speed 2");
      await c.mouse.click(50, 60);
      const own = await c.evaluate(() => (window as any).session.viewId as string);
      await a.waitForFunction((id) => (window as any).session.model.avatars.get(id)?.lastGoto?.x === 50, own);
    },
  });
});

test("view smoothing in an iframe: the container steers it through the Messenger", async () => {
  const host = await openPage(browser, appUrl("smoothing-host", "&speed=2"), reflector.url);
  try {
    const viewId = await Promise.race([host.page.waitForSelector("body[data-sent]").then((b) => b.getAttribute("data-sent")), host.crashed]);
    const app = host.page.frames().find((f) => f.url().includes("/smoothing/"))!;
    await Promise.race([app.waitForFunction((id) => (window as any).session.model.avatars.get(id)?.lastGoto?.x === 321, viewId), host.crashed]);
    expect(host.errors).toEqual([]);
  } finally {
    await closeAll([host]);
  }
});

test("hello in TypeScript (import @croquet/croquet): typed model and view", async () => {
  await runBrowserApp("ts-hello", {
    async together(a, b) {
      await a.click("#plus");
      await a.click("#plus");
      await b.click("#plus");
      await a.waitForFunction(() => document.getElementById("clicks")!.textContent === "3");
      await b.waitForFunction(() => document.getElementById("clicks")!.textContent === "3");
      expect(await text(a, "#who")).toBe("you clicked 2 times");
    },
    async late(c, a) {
      expect(await text(c, "#clicks")).toBe("3");
      await c.click("#plus");
      await a.waitForFunction(() => document.getElementById("clicks")!.textContent === "4");
    },
  });
});

test("shared files (Data API): store in one page, fetch in the other and in a late joiner, handles kept by the model", async () => {
  await runBrowserApp("data", {
    async together(a, b) {
      await a.fill("#content", "bytes that travel encrypted");
      await a.click("#upload");
      await b.waitForSelector("#files li.loaded");
      expect(await text(b, "#files li.loaded")).toBe("note-1.txt: bytes that travel encrypted");
      expect(await b.getAttribute("#files li.loaded", "data-verified")).toBe("true");
    },
    async late(c) {
      await c.waitForSelector("#files li.loaded");
      expect(await text(c, "#files li.loaded")).toBe("note-1.txt: bytes that travel encrypted");
    },
  });
});

test("a game (import @croquet/croquet): many models, future(), random, Constants with functions, isExecuting, realm.vm.controller every frame", async () => {
  await runBrowserApp("game", {
    async together(a, b) {
      await b.waitForFunction(() => (window as any).session.model.ships.size === 2);
      await a.keyboard.down("ArrowLeft");
      await a.keyboard.down("ArrowUp");
      const own = await a.evaluate(() => (window as any).session.viewId as string);
      await b.waitForFunction((id) => (window as any).session.model.ships.get(id)?.thrust === true, own);
      await a.keyboard.up("ArrowUp");
      await a.keyboard.up("ArrowLeft");
      await a.keyboard.press("Space");
      await b.waitForFunction((id) => (window as any).session.model.shots.some((s: { owner: string }) => s.owner === id), own);
      // the HUD is drawn every frame from realm.vm.controller: a TypeError there would stop it
      await a.waitForFunction(() => /users \d+ · backlog -?\d+ ms · starvation -?\d+ ms/.test(document.getElementById("hud")!.textContent!));
      expect(await modelValue<number>(a, "model.rocks.length")).toBeGreaterThan(0);
    },
    async late(c, a) {
      await c.waitForFunction(() => (window as any).session.model.ships.size === 3);
      await c.waitForFunction(() => /^wave \d+ · rocks \d+/.test(document.getElementById("hud")!.textContent!));
      const own = await c.evaluate(() => (window as any).session.viewId as string);
      await c.keyboard.press("Space");
      await a.waitForFunction((id) => (window as any).session.model.shots.some((s: { owner: string }) => s.owner === id), own);
    },
  });
});

/** Two Node clients of one session: each says hello `pings` times; both count all; replicas equal at every shared entry. */
async function runNodeApp(app: string, file: string): Promise<void> {
  const dir = makeTemp(`lockstep-compat-${app}-`);
  const clients: NodeClient[] = [];
  try {
    const script = installNodeApp(dir, app, file);
    const args = [`${app}-${Date.now().toString(36)}`, "node-secret", reflector.url, "3"];
    clients.push(startNodeClient(script, args));
    await clients[0]!.waitFor(/^joined /);
    clients.push(startNodeClient(script, args));
    await Promise.all(clients.map((c) => c.waitFor(/^hellos 6$/)));
    // both record while both are in: wait for a stretch of entries in common (ticks are entries)
    const [first, second] = clients as [NodeClient, NodeClient];
    await second.waitUntil("10 entries recorded by both clients", () => ([...second.hashes.keys()].filter((s) => first.hashes.has(s)).length >= 10 ? true : undefined));
    expect(compareReplicas([first.hashes, second.hashes], ["first", "second"])).toBeGreaterThanOrEqual(10);
    expect(clients.map((c) => c.running)).toEqual([true, true]);
    expect(clients.flatMap((c) => c.errors)).toEqual([]);
  } finally {
    await Promise.all(clients.map((c) => c.stop()));
    removeTemp(dir);
  }
}

test("hello in Node as an ES module (import * as Croquet from \"@croquet/croquet\")", async () => {
  await runNodeApp("node-esm", "main.mjs");
});

test("hello in Node from CommonJS (require(\"@croquet/croquet\"), startSession)", async () => {
  await runNodeApp("node-cjs", "main.cjs");
});
