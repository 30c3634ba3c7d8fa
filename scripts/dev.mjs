#!/usr/bin/env node
// The dev server behind `npm start`: a reflector with its default storage plus an HTTP server for
// the examples, each bundled with esbuild (rebuilt on change with --watch). Loopback only.
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

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8080" },
    "reflector-port": { type: "string", default: "8787" },
    watch: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log("usage: node scripts/dev.mjs [--host 127.0.0.1] [--port 8080] [--reflector-port 8787] [--watch]");
  process.exit(0);
}

/** Examples are folders of examples/ with a main.ts (browser entry) and an index.html. */
function listExamples() {
  return readdirSync(examplesDir)
    .filter((name) => existsSync(join(examplesDir, name, "main.ts")) && existsSync(join(examplesDir, name, "index.html")))
    .sort();
}

function exampleTitle(name) {
  const readme = join(examplesDir, name, "README.md");
  if (!existsSync(readme)) return name;
  const first = readFileSync(readme, "utf8").split("\n")[0] ?? name;
  return first.replace(/^#\s*/, "");
}

const examples = listExamples();
const builds = [];
for (const name of examples) {
  const ctx = await context({
    entryPoints: [join(examplesDir, name, "main.ts")],
    outfile: join(examplesDir, name, "dist", "main.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    external: ["ws"],
    // Bundle the libraries from source, so --watch picks up their changes too.
    alias: {
      "@lockstep/client": join(root, "packages/client/src/index.ts"),
      "@lockstep/protocol": join(root, "packages/protocol/src/index.ts"),
    },
    logLevel: "warning",
  });
  await ctx.rebuild();
  if (args.watch) await ctx.watch();
  builds.push(ctx);
}

// The embedded default storage: sessions survive restarts of the dev server (delete .data/ to reset).
const reflector = await startReflector({ host: args.host, port: Number(args["reflector-port"]), dataDir: join(root, ".data", "reflector") });

const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".map": "application/json", ".css": "text/css", ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png" };

function indexPage() {
  const items = examples.map((name) => `<li><a href="/${name}/">${name}</a>: ${exampleTitle(name).replace(/</g, "&lt;")}</li>`).join("\n");
  return `<!doctype html><meta charset="utf-8"><title>Lockstep examples</title>
<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}li{margin:.5rem 0}</style>
<h1>Lockstep examples</h1><p>Open an example in two windows: they share one session.</p><ul>${items}</ul>
<p>Reflector: <code>${reflector.url}</code></p>`;
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": types[".html"] }).end(indexPage());
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
