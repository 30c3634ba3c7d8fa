/**
 * The starter as a newcomer meets it, outside this repository: every package packed
 * (scripts/pack.mjs), a new app written by the packed create-lockstep into an empty folder of the
 * temp dir, `npm install`ed from the tarballs (registry for the rest), type-checked strictly,
 * built, bundled for the browser by esbuild with no externals. Two Chromium pages change the
 * shared board and see each other's changes, replicas identical: on `npm run dev` (the installed
 * reflector and Vite; Ctrl-C, SIGINT to the group, must stop both), then on the built site
 * (`vite preview`, a reflector from node_modules/.bin).
 * Logs the time from the empty folder to two synced windows. A second project installs every
 * package (React bindings and the reflector too) and type-checks against all of them, and loads
 * the IIFE bundle with a plain script tag.
 */
import { build } from "esbuild";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { joinUser, launchBrowser, screenshots, stateHashes, type User } from "./harness";
import { freePort, groupGone, killGroup, refused, startServer, step, userEnv, type Server, type StepOutput } from "./starter-steps";

const repo = join(__dirname, "..");
const work = mkdtempSync(join(tmpdir(), "lockstep-starter-"));
const packs = join(work, "packs");
const app = join(work, "my-app");
let browser: Browser | undefined;
let dev: Server | undefined;
let reflector: Server | undefined;
let preview: Server | undefined;
let packStep: StepOutput | undefined;
/** The tarball of each package, by name: "@lockstep/client" → ".../lockstep-client-0.1.0.tgz". */
const tarballs = new Map<string, string>();
const PACKAGES = ["@lockstep/protocol", "@lockstep/client", "@lockstep/reflector", "@lockstep/react", "create-lockstep"];

beforeAll(async () => {
  const launching = launchBrowser();
  try {
    packStep = await step(process.execPath, [join(repo, "scripts", "pack.mjs"), "--out", packs], { cwd: repo, timeoutMs: 180_000 });
  } finally {
    browser = await launching; // closed in afterAll, also when packing failed
  }
  const files = readdirSync(packs);
  for (const name of PACKAGES) {
    const file = files.find((f) => f.startsWith(`${name.replace("@", "").replace("/", "-")}-`) && f.endsWith(".tgz"));
    if (file) tarballs.set(name, join(packs, file));
  }
}, 240_000);

afterAll(async () => {
  await browser?.close();
  for (const server of [dev, reflector, preview]) {
    if (!server) continue;
    killGroup(server.child, "SIGKILL");
    await server.exited;
  }
  rmSync(work, { recursive: true, force: true });
});

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const text = (user: User, selector: string): Promise<string | null> => user.page.textContent(selector);

/** `npm …` in the new app, as its user would type it. */
const npm = (args: string[], timeoutMs: number) => step("npm", args, { cwd: app, timeoutMs });

/**
 * The newcomer's first minutes: the first window names a new session in its address (?q=…#pw=…),
 * the second opens that address; each changes the board and sees the other's change.
 */
async function twoWindows(url: string): Promise<[User, User]> {
  const a = await joinUser(browser!, url);
  const shared = a.page.url();
  expect(shared).toMatch(/[?&]q=[^&#]+.*#pw=/);
  const b = await joinUser(browser!, shared);
  await a.page.click("#plus");
  await a.page.click("#plus");
  await a.page.fill("#new-item", "bring snacks");
  await a.page.press("#new-item", "Enter");
  await b.page.waitForFunction(() => document.getElementById("count")!.textContent === "2" && document.querySelector("#items li span")?.textContent === "bring snacks");
  await b.page.click("#minus");
  await a.page.waitForFunction(() => document.getElementById("count")!.textContent === "1");
  return [a, b];
}

/** Both windows show two windows, their replicas are identical, and neither page threw. */
async function expectSynced(name: string, a: User, b: User): Promise<void> {
  expect(await text(b, "#here")).toBe("2 windows");
  const [ha, hb] = await stateHashes([a, b]);
  expect(ha).toBe(hb);
  await screenshots(name, [a, b]);
  expect([...a.errors, ...b.errors]).toEqual([]);
}

/** Every input file of an esbuild browser bundle of the app's entry, no externals. */
async function browserBundleInputs(): Promise<string[]> {
  const result = await build({
    absWorkingDir: app,
    entryPoints: ["src/main.ts"],
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  return Object.keys(result.metafile.inputs);
}

test("create-lockstep: from an empty folder to two synced windows, with the packed packages", async () => {
  expect([...tarballs.keys()]).toEqual(PACKAGES);
  const starter = tarballs.get("create-lockstep")!;

  // The newcomer's three commands, from an empty folder. npx gets a cache of its own for the
  // starter (a local tarball: nothing to download), so the user's cache keeps no temp path.
  const empty = Date.now();
  const created = await step("npx", ["--yes", "--package", starter, "create-lockstep", "my-app", "--packs", packs], {
    cwd: work,
    timeoutMs: 60_000,
    env: userEnv({ npm_config_cache: join(work, "npx-cache") }),
  });
  expect(created.stdout).toMatch(/cd my-app\s+npm install\s+npm run dev/);
  // A folder that is not empty is refused.
  await expect(step("npx", ["--yes", "--package", starter, "create-lockstep", "my-app"], { cwd: work, timeoutMs: 60_000, env: userEnv({ npm_config_cache: join(work, "npx-cache") }) })).rejects.toThrow(/not an empty folder/);
  const install = await npm(["install", "--no-audit", "--no-fund", "--prefer-offline"], 240_000);
  for (const dep of ["@lockstep/client", "@lockstep/protocol", "@lockstep/reflector"]) {
    const { version } = JSON.parse(readFileSync(join(app, "node_modules", dep, "package.json"), "utf8")) as { version: string };
    expect(version).toBe("0.1.0");
  }
  dev = startServer("npm", ["run", "dev", "--", "--port", "0", "--reflector-port", "0"], { cwd: app });
  const [, appUrl, reflectorUrl] = await dev.waitFor(/^Lockstep app: (http:\S+)\s+\(reflector (wss?:\/\/[^\s)]+)\)/, 60_000);
  const [a, b] = await twoWindows(appUrl!);
  const synced = Date.now();
  console.log(
    `create-lockstep: empty folder → two synced windows in ${seconds(synced - empty)} ` +
      `(create ${seconds(created.ms)}, npm install ${seconds(install.ms)}, dev server + two joins and edits ${seconds(synced - empty - created.ms - install.ms)}); ` +
      `packing every package took ${seconds(packStep!.ms)} before`,
  );
  await expectSynced("starter-dev", a, b);
  await Promise.all([a.context.close(), b.context.close()]);

  // Ctrl-C: the terminal signals the whole process group; both servers must be gone after it.
  killGroup(dev.child, "SIGINT");
  await dev.exited;
  await groupGone(dev.child, 15_000);
  expect(await refused(appUrl!)).toBe(true);
  expect(await refused(reflectorUrl!)).toBe(true);
  dev = undefined;

  // Strict type-check (skipLibCheck off: our declarations must stand on their own) and the build.
  const tsconfig = JSON.parse(readFileSync(join(app, "tsconfig.json"), "utf8")) as { compilerOptions: Record<string, unknown> };
  expect(tsconfig.compilerOptions).toMatchObject({ strict: true, skipLibCheck: false });
  await npm(["run", "typecheck"], 90_000);
  await npm(["run", "build"], 120_000);
  expect(existsSync(join(app, "dist", "index.html"))).toBe(true);
  // Neither Vite's bundle nor esbuild's (platform browser, no externals) has the `ws` package in it.
  const assets = join(app, "dist", "assets");
  for (const file of readdirSync(assets).filter((f) => f.endsWith(".js"))) {
    expect(readFileSync(join(assets, file), "utf8")).not.toMatch(/WebSocketServer|does not work in the browser|from\s*"ws"|import\("ws"\)/);
  }
  // The built site, served by `vite preview`, with a reflector from the app's node_modules/.bin.
  reflector = startServer(join(app, "node_modules", ".bin", "lockstep-reflector"), ["--host", "127.0.0.1", "--port", "0", "--memory"], { cwd: app });
  const [builtReflector] = await reflector.waitFor(/\bws:\/\/[^\s"',)]+/, 30_000);
  const port = await freePort();
  preview = startServer("npm", ["run", "preview", "--", "--host", "127.0.0.1", "--port", String(port), "--strictPort"], { cwd: app });
  const [siteUrl] = await preview.waitFor(/\bhttp:\/\/127\.0\.0\.1:\d+\/?/, 30_000);
  const [c, d] = await twoWindows(`${siteUrl}?reflector=${encodeURIComponent(builtReflector)}`);
  await expectSynced("starter-build", c, d);

  const inputs = await browserBundleInputs();
  expect(inputs.some((path) => path.includes("node_modules/@lockstep/client/dist/browser/"))).toBe(true);
  expect(inputs.filter((path) => /node_modules\/ws\//.test(path))).toEqual([]);
}, 420_000);

test("every package installs from its tarball and type-checks strictly in a consumer, as ESM and as CommonJS; require() runs without require(esm); the IIFE bundle runs from a script tag", async () => {
  const consumer = join(work, "consumer");
  mkdirSync(join(consumer, "src"), { recursive: true });
  const file = (name: string): string => `file:${tarballs.get(name)!}`;
  const pkg = {
    name: "consumer",
    private: true,
    type: "module",
    dependencies: {
      "@lockstep/protocol": file("@lockstep/protocol"),
      "@lockstep/client": file("@lockstep/client"),
      "@lockstep/reflector": file("@lockstep/reflector"),
      "@lockstep/react": file("@lockstep/react"),
      react: "^19.2.0",
      "@types/react": "^19.2.0",
      typescript: "~5.9.3",
    },
  };
  writeFileSync(join(consumer, "package.json"), JSON.stringify(pkg, null, 2));
  // No ambient types but what the packages bring themselves (@types/node comes with @types/pg).
  const compilerOptions = { target: "ES2022", module: "ESNext", moduleResolution: "Bundler", lib: ["ES2022", "DOM"], types: [], strict: true, skipLibCheck: false, noEmit: true };
  writeFileSync(join(consumer, "tsconfig.json"), JSON.stringify({ compilerOptions, include: ["src"] }, null, 2));
  writeFileSync(
    join(consumer, "src", "index.ts"),
    [
      `import { CloseCode } from "@lockstep/protocol";`,
      `import { Model, Session, View, type LockstepSession } from "@lockstep/client";`,
      `import { App } from "@lockstep/client/app";`,
      `import * as bundle from "@lockstep/client/browser";`,
      `import * as react from "@lockstep/react";`,
      `import { startReflector } from "@lockstep/reflector";`,
      `export const used: unknown[] = [CloseCode, Model, Session, View, App, bundle, react, startReflector];`,
      `export type Joined = LockstepSession;`,
      "",
    ].join("\n"),
  );
  await step("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], { cwd: consumer, timeoutMs: 240_000 });
  await step(process.execPath, [join(consumer, "node_modules", "typescript", "bin", "tsc"), "-p", consumer], { cwd: consumer, timeoutMs: 90_000 });

  // CommonJS: require() types as CommonJS under node16 resolution (the `require` condition's own
  // declarations), and runs without Node's require(esm): two clients of a reflector, all required.
  mkdirSync(join(consumer, "cjs"), { recursive: true });
  const cjsOptions = { ...compilerOptions, module: "Node16", moduleResolution: "Node16", types: ["node"] };
  writeFileSync(join(consumer, "tsconfig.cjs.json"), JSON.stringify({ compilerOptions: cjsOptions, include: ["cjs"] }, null, 2));
  writeFileSync(
    join(consumer, "cjs", "check.cts"),
    [
      `import lockstep = require("@lockstep/client");`,
      `import app = require("@lockstep/client/app");`,
      `import reflector = require("@lockstep/reflector");`,
      `import protocol = require("@lockstep/protocol");`,
      `import react = require("@lockstep/react");`,
      `export const used: unknown[] = [lockstep.Model, lockstep.Session, app.App, reflector.startReflector, protocol.CloseCode, react.LockstepProvider];`,
      "",
    ].join("\n"),
  );
  await step(process.execPath, [join(consumer, "node_modules", "typescript", "bin", "tsc"), "-p", join(consumer, "tsconfig.cjs.json")], { cwd: consumer, timeoutMs: 90_000 });
  writeFileSync(
    join(consumer, "cjs", "run.cjs"),
    [
      `const { Model, View, Session } = require("@lockstep/client");`,
      `const { startReflector, silentLogger } = require("@lockstep/reflector");`,
      `class Tally extends Model { init() { this.n = 0; this.subscribe("tally", "add", this.add); } add(k) { this.n += k; } }`,
      `Tally.register("Tally");`,
      `(async () => {`,
      `  const r = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });`,
      `  const join = () => Session.join({ appId: "com.example.cjs", name: "room", password: "pw", model: Tally, view: View, reflector: r.url });`,
      `  const [a, b] = [await join(), await join()];`,
      `  for (let i = 1; i <= 10; i++) a.view.publish("tally", "add", i);`,
      `  const until = (f) => new Promise((resolve, reject) => { const t0 = Date.now(); const poll = () => (f() ? resolve() : Date.now() - t0 > 10000 ? reject(new Error("timed out")) : setTimeout(poll, 10)); poll(); });`,
      `  await until(() => a.model.n === 55 && b.model.n === 55);`,
      `  const [ha, hb] = [await a.stateHash(), await b.stateHash()];`,
      `  if (ha !== hb) throw new Error("replicas differ: " + ha + " vs " + hb);`,
      `  await Promise.all([a.leave(), b.leave()]);`,
      `  await r.close();`,
      `  console.log("cjs ok " + ha);`,
      `})().catch((error) => { console.error(error); process.exit(1); });`,
      "",
    ].join("\n"),
  );
  const ran = await step(process.execPath, ["--no-experimental-require-module", join(consumer, "cjs", "run.cjs")], { cwd: consumer, timeoutMs: 60_000 });
  expect(ran.stdout).toMatch(/^cjs ok [\w-]{20,}$/m);

  // A page without a bundler: <script src=".../dist/lockstep.iife.js"> defines the global Lockstep.
  const page = await browser!.newPage();
  try {
    await page.setContent("<!doctype html><title>iife</title>");
    await page.addScriptTag({ path: join(consumer, "node_modules", "@lockstep", "client", "dist", "lockstep.iife.js") });
    const api = await page.evaluate(() => {
      const g = (window as unknown as { Lockstep?: Record<string, unknown> }).Lockstep;
      return g ? ["Model", "View", "Session", "App"].map((name) => typeof g[name]) : [];
    });
    expect(api).toEqual(["function", "function", "function", "object"]);
  } finally {
    await page.close();
  }
}, 300_000);
