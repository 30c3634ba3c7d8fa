// The compatibility suite's test bed: the apps of e2e/compat/apps built the way a Croquet user
// would build them with only the import aliased, served over HTTP on a free loopback port, and a
// reflector of our own (memory storage) that the pages reach without naming it.
import { spawn } from "node:child_process";
import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { createInterface } from "node:readline";
import type { BrowserContext } from "playwright-core";

export const appsDir = join(__dirname, "apps");
const root = join(__dirname, "..", "..");
/** The script-tag build of the client (global `Lockstep`), which the script-tag apps load. */
export const iifeBundle = join(root, "packages", "client", "dist", "lockstep.iife.js");

/**
 * Builds every browser app (a folder with an index.html) into `outDir/<name>/`: a `main.js` or
 * `main.ts` that imports `@croquet/croquet` is bundled by esbuild with that import aliased to
 * `@lockstep/client` (nothing else changes); a script-tag app's `main.js` is copied as written.
 * The IIFE bundle goes to `outDir/lockstep.iife.js`, where the apps' pages load it from.
 */
export async function buildApps(outDir: string): Promise<string[]> {
  if (!existsSync(iifeBundle)) throw new Error(`${iifeBundle} is missing: run \`node scripts/build.mjs\` first`);
  copyFileSync(iifeBundle, join(outDir, "lockstep.iife.js"));
  const built: string[] = [];
  for (const name of readdirSync(appsDir).sort()) {
    const dir = join(appsDir, name);
    if (!existsSync(join(dir, "index.html"))) continue; // the Node apps
    const entry = ["main.ts", "main.js"].map((f) => join(dir, f)).find((f) => existsSync(f));
    if (!entry) throw new Error(`${dir} has an index.html but no main.js or main.ts`);
    mkdirSync(join(outDir, name), { recursive: true });
    copyFileSync(join(dir, "index.html"), join(outDir, name, "index.html"));
    if (/from\s+["']@croquet\/croquet["']/.test(readFileSync(entry, "utf8"))) {
      await build({
        entryPoints: [entry],
        outfile: join(outDir, name, "main.js"),
        bundle: true,
        format: "esm",
        platform: "browser",
        target: "es2022",
        alias: { "@croquet/croquet": "@lockstep/client" },
        // the package as users get it (its `browser` export, from dist), not the repo's
        // tsconfig paths to its sources
        tsconfigRaw: "{}",
        logLevel: "error",
      });
    } else {
      copyFileSync(entry, join(outDir, name, "main.js"));
    }
    built.push(name);
  }
  return built;
}

const types: Record<string, string> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8" };

/** A static file server for `dir` on 127.0.0.1 (any free port). */
export async function serveDir(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    // Browsers ask for a favicon; a 404 would be a console error in every page.
    if (path === "/favicon.ico") return void res.writeHead(204).end();
    let file = normalize(join(dir, decodeURIComponent(path)));
    if (!file.startsWith(dir + sep)) return void res.writeHead(403).end();
    if (file.endsWith(sep)) file = join(file, "index.html");
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" }).end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A temp folder under os.tmpdir(); removed with {@link removeTemp}. */
export function makeTemp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeTemp(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Where a Croquet app connects when neither the URL nor the app names a reflector. */
const DEFAULT_REFLECTOR = "ws://127.0.0.1:8787/";

/**
 * Croquet apps never name a reflector, so a page connects to the client's default
 * (ws://127.0.0.1:8787/), while the suite's reflector listens on a free port. This init script,
 * run in every page of `context` before the app's code, points sockets opened to the default
 * address at the suite's reflector instead, so apps need no option for it. It does nothing once
 * the client honours Croquet's `?reflector=` URL parameter (which the suite's URLs carry): the
 * pages then connect to the suite's reflector themselves.
 */
export async function redirectDefaultReflector(context: BrowserContext, reflectorUrl: string): Promise<void> {
  await context.addInitScript(
    ([from, to]) => {
      const Native = window.WebSocket;
      window.WebSocket = class extends Native {
        constructor(url: string | URL, protocols?: string | string[]) {
          const href = String(url);
          super(href.startsWith(from) ? to + href.slice(from.length) : href, protocols);
        }
      };
    },
    [DEFAULT_REFLECTOR, reflectorUrl] as const,
  );
}

/** A reflector of the suite's own, in a child process. */
export interface ReflectorProcess {
  /** e.g. ws://127.0.0.1:41234/ */
  readonly url: string;
  /** SIGTERM (this process only) and wait for it to exit. */
  stop(): Promise<void>;
}

// `startReflector` from the reflector's dist, with memory storage on a free loopback port. A child
// process rather than in jest: the dist is ESM with ESM-only dependencies, and the reflector's
// work stays off the test runner's thread.
const REFLECTOR_SCRIPT = `
import { startReflector, createMemoryStore, silentLogger } from "@lockstep/reflector";
const reflector = await startReflector({ host: "127.0.0.1", port: 0, logger: silentLogger, storage: createMemoryStore() });
process.on("SIGTERM", () => reflector.close().then(() => process.exit(0)));
// bounded by the test run: gone with its parent (stdin closes) even if the parent never stops it
process.stdin.on("close", () => process.exit(0)).resume();
console.log("reflector " + reflector.url);
`;

/** Starts the suite's reflector and waits for its URL. */
export async function startReflectorProcess(): Promise<ReflectorProcess> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", REFLECTOR_SCRIPT], { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = /^reflector (ws:\S+)$/.exec(line);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`the reflector exited early (${code}): ${stderr}`)));
  });
  return {
    url,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
