// Replica checks for the compatibility suite: every client records a hash of its serialized VM
// after every stream entry; the suite then compares the hashes at every entry two clients both
// processed. The apps expose their joined session as `window.session` (as the examples do); the
// recorder uses the Lockstep extensions `afterEntry` and `stateBytes` of that session.
import type { Browser, BrowserContext, ConsoleMessage, Page } from "playwright-core";
import { redirectDefaultReflector } from "./bed";

/** seq → hash of the VM's serialized state right after that entry. */
export type EntryHashes = Map<number, string>;

/** One client of an app: a page in a browser context of its own (another person's browser). */
export interface AppUser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Console errors and uncaught page errors, as text. */
  readonly errors: string[];
  /** Every console line, for failure messages. */
  readonly console: string[];
  /** Rejects with the page's first uncaught error (never resolves): race a wait against it to fail fast. */
  readonly crashed: Promise<never>;
}

/** Opens `url` for a new user, its default-reflector connections carried to `reflectorUrl`, and waits for `window.session`. */
export async function openApp(browser: Browser, url: string, reflectorUrl: string): Promise<AppUser> {
  const user = await openPage(browser, url, reflectorUrl);
  try {
    await Promise.race([user.crashed, user.page.waitForFunction(() => (window as unknown as { session?: { view?: unknown } }).session?.view !== undefined, undefined, { timeout: 30_000 })]);
  } catch (error) {
    throw new Error(`${url} did not join\nconsole:\n${user.console.join("\n")}\nerrors:\n${user.errors.join("\n")}`, { cause: error });
  }
  return user;
}

/** Opens `url` for a new user (console errors and page errors collected, frames included) without waiting for anything. */
export async function openPage(browser: Browser, url: string, reflectorUrl: string): Promise<AppUser> {
  const context = await browser.newContext({ viewport: { width: 900, height: 650 } });
  await redirectDefaultReflector(context, reflectorUrl);
  const page = await context.newPage();
  const errors: string[] = [];
  const lines: string[] = [];
  page.on("console", (msg: ConsoleMessage) => {
    lines.push(`${msg.type()}: ${msg.text()}`);
    if (msg.type() === "error") errors.push(`console.error: ${msg.text()}`);
  });
  let crash: (error: Error) => void = () => undefined;
  const crashed = new Promise<never>((_, reject) => (crash = reject));
  crashed.catch(() => undefined); // observed by whoever races it
  page.on("pageerror", (error) => {
    errors.push(`pageerror: ${error.stack ?? error.message}`);
    crash(new Error(`the page threw: ${error.stack ?? error.message}`));
  });
  const user = { context, page, errors, console: lines, crashed };
  await page.goto(url);
  return user;
}

interface RecordingSession {
  afterEntry(cb: (seq: number) => void): () => void;
  stateBytes(): Uint8Array;
  view: { publish(scope: string, event: string, data?: unknown): void };
}
declare const window: { session: RecordingSession; __compatHashes?: Record<number, string>; __compatStop?: () => void };

/** Starts recording a hash of the VM after each entry in the page (a fast non-cryptographic one: collisions do not matter here). */
export async function startRecording(page: Page): Promise<void> {
  await page.evaluate(() => {
    const hashes: Record<number, string> = {};
    window.__compatStop?.();
    window.__compatHashes = hashes;
    // Two 32-bit FNV-1a lanes over the bytes: cheap enough to run after every entry.
    const hash = (bytes: Uint8Array): string => {
      let a = 0x811c9dc5;
      let b = 0x01000193 ^ bytes.length;
      for (let i = 0; i < bytes.length; i++) {
        a = Math.imul(a ^ bytes[i]!, 0x01000193);
        b = Math.imul(b ^ bytes[i]!, 0x5bd1e995) ^ (b >>> 15);
      }
      return `${(a >>> 0).toString(16)}${(b >>> 0).toString(16)}:${bytes.length}`;
    };
    window.__compatStop = window.session.afterEntry((seq) => {
      hashes[seq] = hash(window.session.stateBytes());
    });
  });
}

/** The page's recorded hashes so far. */
export async function recorded(page: Page): Promise<EntryHashes> {
  const obj = await page.evaluate(() => ({ ...window.__compatHashes }));
  return new Map(Object.entries(obj).map(([k, v]) => [Number(k), v]));
}

/**
 * Publishes an event no model handles from every user's view, waits until every user processed
 * an entry after all of them were published, and returns each user's recorded hashes.
 */
export async function syncPoint(users: readonly AppUser[]): Promise<EntryHashes[]> {
  // the highest seq any page has processed before the publish: the event's entry comes after it
  const lasts = await Promise.all(users.map((u) => recorded(u.page).then((h) => Math.max(0, ...h.keys()))));
  const after = Math.max(...lasts);
  // one from every user: entries sent by each of them, after every recorder started
  for (const { page } of users) await page.evaluate((m) => window.session.view.publish("compat-suite", "sync-point", m), `${Date.now()}-${Math.random()}`);
  await Promise.all(users.map((u) => u.page.waitForFunction(([s, n]) => Object.keys(window.__compatHashes ?? {}).filter((k) => Number(k) > s).length >= n, [after, users.length] as const)));
  return Promise.all(users.map((u) => recorded(u.page)));
}

/**
 * Compares the replicas at every entry all of them recorded: returns the number of entries
 * compared, and throws naming the first seq where two replicas differ.
 */
export function compareReplicas(all: readonly EntryHashes[], labels: readonly string[] = all.map((_, i) => `client ${i + 1}`)): number {
  const common = [...all[0]!.keys()].filter((seq) => all.every((h) => h.has(seq))).sort((a, b) => a - b);
  if (common.length === 0) throw new Error(`the clients recorded no entry in common (${all.map((h) => h.size).join(", ")} entries)`);
  for (const seq of common) {
    const first = all[0]!.get(seq);
    const other = all.findIndex((h) => h.get(seq) !== first);
    if (other !== -1) throw new Error(`replicas differ at seq ${seq}: ${labels[0]} ${first}, ${labels[other]} ${all[other]!.get(seq)}`);
  }
  return common.length;
}

/** Closes every user's context (its pages and sockets). */
export async function closeAll(users: readonly AppUser[]): Promise<void> {
  await Promise.all(users.map((u) => u.context.close()));
}
