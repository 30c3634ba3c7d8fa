#!/usr/bin/env node
// The dev server behind `npm start`: a reflector with its embedded default storage plus an HTTP
// server for the examples, each bundled with esbuild (rebuilt on change with --watch). Loopback
// only. The browser tests start it too, on free ports (--port 0 --reflector-port 0).
import { context } from "esbuild";
import { startReflector } from "@lockstep/reflector";
import { createServer } from "node:http";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const examplesDir = join(root, "examples");
const usage = `usage: node scripts/dev.mjs [options]
  --host H            address to listen on (default 127.0.0.1)
  --port N            HTTP port of the examples (default 8080; 0 = any free port)
  --reflector-port N  WebSocket port of the reflector (default 8787; 0 = any free port)
  --data-dir DIR      where the reflector keeps sessions (default .data/reflector)
  --watch             rebuild an example when its code or the library changes`;

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8080" },
    "reflector-port": { type: "string", default: "8787" },
    "data-dir": { type: "string", default: join(root, ".data", "reflector") },
    watch: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log(usage);
  process.exit(0);
}

/** An example's browser entry: main.ts, or main.tsx for React examples (undefined: none). */
const entryOf = (dir) => ["main.ts", "main.tsx"].map((name) => join(dir, name)).find((path) => existsSync(path));

/**
 * Examples are folders of examples/ with a main.ts or main.tsx (browser entry) and an index.html,
 * or such folders one level further down (examples/notes/v1): "hello", "notes/v1".
 */
function listExamples() {
  const found = [];
  const isApp = (dir) => entryOf(dir) !== undefined && existsSync(join(dir, "index.html"));
  for (const name of readdirSync(examplesDir).sort()) {
    const dir = join(examplesDir, name);
    if (!statSync(dir).isDirectory()) continue;
    if (isApp(dir)) found.push(name);
    else for (const sub of readdirSync(dir).sort()) if (statSync(join(dir, sub)).isDirectory() && isApp(join(dir, sub))) found.push(`${name}/${sub}`);
  }
  return found;
}

/** The first line of the example's README (or its parent's), without the "# ". */
function exampleTitle(name) {
  for (const dir of [name, name.split("/")[0]]) {
    const readme = join(examplesDir, dir, "README.md");
    if (existsSync(readme)) return (readFileSync(readme, "utf8").split("\n")[0] ?? name).replace(/^#\s*/, "");
  }
  return name;
}

const escapeHtml = (text) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const examples = listExamples();
const builds = [];
for (const name of examples) {
  const ctx = await context({
    entryPoints: [entryOf(join(examplesDir, name))],
    outfile: join(examplesDir, name, "dist", "main.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    external: ["ws"],
    jsx: "automatic", // React examples: JSX without importing React
    // Bundle the libraries from source, so --watch picks up their changes too.
    alias: {
      "@lockstep/client": join(root, "packages/client/src/index.ts"),
      "@lockstep/react": join(root, "packages/react/src/index.ts"),
      "@lockstep/protocol": join(root, "packages/protocol/src/index.ts"),
    },
    logLevel: "warning",
    plugins: args.watch ? [rebuildLog(name)] : [],
  });
  await ctx.rebuild();
  if (args.watch) await ctx.watch();
  builds.push(ctx);
}

function rebuildLog(name) {
  let first = true;
  return {
    name: "rebuild-log",
    setup(build) {
      build.onEnd((result) => {
        if (!first && result.errors.length === 0) console.log(`rebuilt ${name}`);
        first = false;
      });
    },
  };
}

// The embedded default storage: sessions survive restarts of the dev server (delete .data/ to reset).
const reflector = await startReflector({ host: args.host, port: Number(args["reflector-port"]), dataDir: args["data-dir"] });
// Examples connect to ws://<page host>:8787/ unless the page URL says ?reflector=…
const reflectorQuery = Number(new URL(reflector.url).port) === 8787 ? "" : `?reflector=${encodeURIComponent(reflector.url)}`;

const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".map": "application/json", ".css": "text/css", ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png" };

function indexPage() {
  const items = examples
    .map((name) => `<li><a href="/${name}/${reflectorQuery}">${escapeHtml(name)}</a> — ${escapeHtml(exampleTitle(name).replace(/^[\w-]+:\s*/, ""))}</li>`)
    .join("\n");
  return `<!doctype html><meta charset="utf-8"><title>Lockstep examples</title>
<style>body{font:16px system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#223}li{margin:.6rem 0}code{background:#eef;padding:0 .3em}</style>
<h1>Lockstep examples</h1>
<p>Open an example, then open its URL (it now names a session: <code>?q=…#pw=…</code>) in a second window: both are in one session.
Add <code>&amp;debug=session</code> to see the session log in the browser console.</p>
<ul>${items}</ul>
<p>Reflector: <code>${escapeHtml(reflector.url)}</code></p>`;
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": types[".html"], "cache-control": "no-store" }).end(indexPage());
      return;
    }
    let path = normalize(join(examplesDir, decodeURIComponent(url.pathname)));
    if (!path.startsWith(examplesDir + sep)) {
      res.writeHead(403).end("forbidden");
      return;
    }
    if (existsSync(path) && statSync(path).isDirectory()) {
      if (!url.pathname.endsWith("/")) {
        res.writeHead(301, { location: `${url.pathname}/${url.search}` }).end();
        return;
      }
      path = join(path, "index.html");
    }
    const body = await readFile(path);
    res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream", "cache-control": "no-store" }).end(body);
  } catch {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
  }
});
await new Promise((resolve) => server.listen(Number(args.port), args.host, resolve));
const httpUrl = `http://${args.host}:${server.address().port}/`;
console.log(`Lockstep examples: ${httpUrl}  (reflector ${reflector.url}${args.watch ? ", rebuilding on change" : ""})`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await Promise.all(builds.map((b) => b.dispose()));
  await reflector.close();
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
