import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from "playwright-core";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { artifactsDir } = require("./artifacts.cjs") as { artifactsDir: string };

const root = join(__dirname, "..");

/** The flags this machine's closed network and sandbox need (see DEVELOPERS.md). */
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Launches Debian's Chromium (installed by scripts/chromium.sh) with a new, empty profile. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.LOCKSTEP_CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_FLAGS, headless: true });
}

/** `npm start`'s dev server (reflector + examples), as a process on free loopback ports. */
export interface DevServer {
  /** The index page, e.g. http://127.0.0.1:41723/ */
  readonly url: string;
  /** The reflector, e.g. ws://127.0.0.1:45043/ */
  readonly reflector: string;
  readonly dataDir: string;
  /** A page of an example in a session, e.g. `page("hello", "room", "pw")`. */
  exampleUrl(example: string, name: string, password: string, extra?: string): string;
  /** SIGTERM and wait for a clean exit. */
  stop(): Promise<void>;
}

/** Where a dev server keeps its reflector's storage, and the reflector's port (0: any free one). */
export interface DevServerOptions {
  readonly dataDir?: string;
  readonly reflectorPort?: number;
}

/** Starts `node scripts/dev.mjs` (which builds every example) and waits for its URL line. */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "lockstep-e2e-"));
  const child: ChildProcess = spawn(
    process.execPath,
    [join(root, "scripts", "dev.mjs"), "--port", "0", "--reflector-port", String(options.reflectorPort ?? 0), "--data-dir", dataDir],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const { url, reflector } = await new Promise<{ url: string; reflector: string }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = /^Lockstep examples: (http:\S+)\s+\(reflector (ws:\/\/[^\s,)]+)/.exec(line);
      if (m) resolve({ url: m[1]!, reflector: m[2]! });
    });
    void exited.then((code) => reject(new Error(`dev server exited early (${code}): ${stderr}`)));
  });
  return {
    url,
    reflector,
    dataDir,
    exampleUrl: (example, name, password, extra = "") =>
      `${url}${example}/?q=${encodeURIComponent(name)}&reflector=${encodeURIComponent(reflector)}${extra}#pw=${encodeURIComponent(password)}`,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** What a browser test file runs against: one browser and one dev server, shared by its tests. */
export interface TestBed {
  readonly browser: Browser;
  readonly server: DevServer;
  /** Stops the dev server; its storage stays for {@link TestBed.startServer}. */
  stopServer(): Promise<void>;
  /** Starts the dev server again on the same storage and reflector port, as a redeploy would. */
  startServer(): Promise<DevServer>;
}

/**
 * Launches a browser and a dev server before the file's tests and stops both (removing the
 * server's storage) after them. `serverOptions` is asked once, in `beforeAll`.
 */
export function useTestBed(serverOptions: () => DevServerOptions | Promise<DevServerOptions> = () => ({})): TestBed {
  let browser: Browser | undefined;
  let server: DevServer | undefined;
  let stopped = false;
  let restartWith: DevServerOptions = {};
  beforeAll(async () => {
    const options = await serverOptions();
    [browser, server] = await Promise.all([launchBrowser(), startDevServer(options)]);
    restartWith = { dataDir: server.dataDir, reflectorPort: Number(new URL(server.reflector).port) };
  });
  afterAll(async () => {
    await browser?.close();
    if (server && !stopped) await server.stop();
    if (server) removeDir(server.dataDir);
  });
  return {
    get browser() {
      if (!browser) throw new Error("the browser is launched in beforeAll");
      return browser;
    },
    get server() {
      if (!server) throw new Error("the dev server is started in beforeAll");
      return server;
    },
    async stopServer() {
      stopped = true;
      await server?.stop();
    },
    async startServer() {
      server = await startDevServer(restartWith);
      stopped = false;
      return server;
    },
  };
}

/** One user: a page in a browser context of its own (own storage, like another person's browser). */
export interface User {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Console lines the page printed, as "type: text". */
  readonly console: string[];
  /** Uncaught errors of the page. */
  readonly errors: Error[];
}

/** Opens `url` for a new user; does not wait for the session. */
export async function openUser(browser: Browser, url: string): Promise<User> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  const consoleLines: string[] = [];
  const errors: Error[] = [];
  page.on("console", (msg: ConsoleMessage) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (error) => errors.push(error));
  await page.goto(url);
  return { context, page, console: consoleLines, errors };
}

/** Waits until the page's app has joined (the examples put their session on `window.session`). */
export async function joined(page: Page): Promise<string> {
  const handle = await page.waitForFunction(() => (window as unknown as { session?: { viewId?: string } }).session?.viewId, undefined, { timeout: 30_000 });
  return (await handle.jsonValue()) as string;
}

/** Opens `url` for a new user and waits until its session is joined. */
export async function joinUser(browser: Browser, url: string): Promise<User> {
  const user = await openUser(browser, url);
  try {
    await joined(user.page);
  } catch (error) {
    throw new Error(`the page did not join: ${url}\nconsole:\n${user.console.join("\n")}\nerrors:\n${user.errors.map((e) => e.stack).join("\n")}`, { cause: error });
  }
  return user;
}

interface PageSession {
  afterEntry(cb: (seq: number) => void): () => void;
  stateBytes(): Uint8Array;
  view: { publish(scope: string, event: string, data?: unknown): void };
}
type Recorder = Map<number, Uint8Array>;
declare const window: { session: PageSession; __e2eStates?: Recorder; __e2eStop?: () => void };

/**
 * The replicas' state hashes at one common point of the stream: every page records its state
 * after each entry from now on, one page publishes an event no model handles (so there is an entry
 * after the recording started everywhere), and the hashes are taken at the first seq all recorded.
 */
export async function stateHashes(users: readonly User[]): Promise<string[]> {
  for (const { page } of users) {
    await page.evaluate(() => {
      const states: Recorder = new Map();
      window.__e2eStates = states;
      window.__e2eStop?.();
      window.__e2eStop = window.session.afterEntry((seq) => states.set(seq, window.session.stateBytes()));
    });
  }
  await users[0]!.page.evaluate(() => window.session.view.publish("e2e", "sync-point", Date.now()));
  const firsts = await Promise.all(
    users.map(async ({ page }) => {
      const handle = await page.waitForFunction(() => (window.__e2eStates!.size > 0 ? Math.min(...window.__e2eStates!.keys()) : 0));
      return (await handle.jsonValue()) as number;
    }),
  );
  const seq = Math.max(...firsts);
  return Promise.all(
    users.map(async ({ page }) => {
      await page.waitForFunction((s) => window.__e2eStates!.has(s), seq);
      return page.evaluate(async (s) => {
        const bytes = window.__e2eStates!.get(s)!;
        window.__e2eStop?.();
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
        return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
      }, seq);
    }),
  );
}

/** Saves a screenshot of each user's page as `<name>-user<N>.png` in the artifacts folder; returns the paths. */
export async function screenshots(name: string, users: readonly User[]): Promise<string[]> {
  mkdirSync(artifactsDir, { recursive: true });
  return Promise.all(
    users.map(async ({ page }, i) => {
      const path = join(artifactsDir, `${name}-user${i + 1}.png`);
      await page.screenshot({ path });
      return path;
    }),
  );
}

/** A fresh random session name, so tests never meet old state. */
export function sessionName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Removes a data directory made by {@link startDevServer}. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export { artifactsDir };
