#!/usr/bin/env node
// Builds every package: ESM bundles with esbuild, declarations with tsc (typescript@5, pinned),
// and the browser builds of the client. Order matters: declarations of a package are read by
// the packages that depend on it.
//
//   node scripts/build.mjs [--js-only] [--if-changed]
//     --js-only     no declarations (what `npm start` needs: the dev server runs JavaScript only)
//     --if-changed  skip a package whose dist is newer than its sources (and than this script)
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
const { values: args } = parseArgs({ options: { "js-only": { type: "boolean", default: false }, "if-changed": { type: "boolean", default: false } } });
const withTypes = !args["js-only"];

function manifestOf(dir) {
  return JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
}
/**
 * What stays an import in a package's ESM build: its runtime and peer dependencies (its consumers
 * install them), subpaths included (`react/jsx-runtime`).
 */
function externalsOf(dir) {
  const pkg = manifestOf(dir);
  const names = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})];
  return names.flatMap((name) => [name, `${name}/*`]);
}

/**
 * The client's browser builds resolve `ws` to this module instead of the package: the client only
 * imports `ws` where there is no global WebSocket (Node), so a browser never reaches it, and
 * bundlers that pick the `browser` condition never see the `ws` package at all.
 */
const noWs = {
  name: "no-ws",
  setup(b) {
    b.onResolve({ filter: /^ws$/ }, () => ({ path: "no-ws", namespace: "no-ws" }));
    b.onLoad({ filter: /.*/, namespace: "no-ws" }, () => ({
      contents: `export const WebSocket = undefined; throw new Error("@lockstep/client: this environment has no WebSocket");`,
      loader: "js",
    }));
  },
};

/*
 * `cjs`: the package's CommonJS build for `require()` (dist/cjs/, a folder of `"type": "commonjs"`
 * with its own copy of the declarations, so that TypeScript types a `require` as CommonJS too).
 * `inline`: dependencies that ship only ESM, bundled into the CommonJS build so that it needs no
 * `require(esm)`. `shims`: subpath entries that are the main CommonJS bundle again (esbuild cannot
 * split CommonJS; one bundle keeps one App and one Session registry, as the ESM chunks do).
 */
const packages = [
  { dir: "packages/protocol", entries: ["src/index.ts"], platform: "neutral", cjs: {} },
  // Two entries (the API and the `/app` subpath) share their code in chunks: one App, one Session.
  { dir: "packages/client", entries: ["src/index.ts", "src/app/index.ts"], platform: "neutral", browser: true, splitting: true, cjs: { shims: { "app/index.js": "../index.js" } } },
  { dir: "reflector", entries: ["src/index.ts", "src/cli.ts"], platform: "node", cjs: { inline: ["jose"] } },
  // Built once its entry and its tsconfig.build.json exist.
  { dir: "packages/react", entries: ["src/index.ts"], platform: "neutral", jsx: true, optional: true, cjs: {} },
];

/** Copies every .d.ts of `from` (but the `skip` folders) to the same place under `to`. */
function copyDeclarations(from, to, skip) {
  for (const name of readdirSync(from)) {
    const source = join(from, name);
    if (statSync(source).isDirectory()) {
      if (!skip.includes(name)) copyDeclarations(source, join(to, name), []);
    } else if (name.endsWith(".d.ts")) {
      mkdirSync(to, { recursive: true });
      copyFileSync(source, join(to, name));
    }
  }
}

/** Newest modification time of the files under `path` (a file or a folder). */
function newestIn(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a deleted file shows as a newer folder
  for (const name of readdirSync(path)) if (name !== "node_modules") newest = Math.max(newest, newestIn(join(path, name)));
  return newest;
}

/**
 * dist/.build-stamp says what the last build of a package made (`{ types }`); its time is when.
 * A package is up to date when the stamp is newer than its sources, its manifest, its tsconfig and
 * this script, covers the declarations if they are asked for, and no package it depends on was
 * rebuilt in this run (the browser bundles inline the protocol's build).
 */
function upToDate(dir, rebuilt) {
  const stampPath = join(dir, "dist", ".build-stamp");
  const stat = statSync(stampPath, { throwIfNoEntry: false });
  if (!stat) return false;
  const stamp = JSON.parse(readFileSync(stampPath, "utf8"));
  if (withTypes && !stamp.types) return false;
  const pkg = manifestOf(dir);
  const deps = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})];
  if (deps.some((name) => rebuilt.has(name))) return false;
  const inputs = [join(dir, "src"), join(dir, "package.json"), join(dir, "tsconfig.build.json"), fileURLToPath(import.meta.url), join(root, "tsconfig.base.json")];
  return inputs.every((input) => newestIn(input) < stat.mtimeMs);
}

const started = Date.now();
const rebuilt = new Set();
let skipped = 0;
for (const pkg of packages) {
  const dir = join(root, pkg.dir);
  if (pkg.optional && !(existsSync(join(dir, pkg.entries[0])) && existsSync(join(dir, "tsconfig.build.json")))) {
    console.log(`build: ${pkg.dir} skipped (no ${pkg.entries[0]} and tsconfig.build.json yet)`);
    continue;
  }
  if (args["if-changed"] && upToDate(dir, rebuilt)) {
    skipped++;
    continue;
  }
  rebuilt.add(manifestOf(dir).name);
  rmSync(join(dir, "dist"), { recursive: true, force: true });
  const common = {
    bundle: true,
    target: "es2022",
    sourcemap: true,
    logLevel: "warning",
    ...(pkg.jsx ? { jsx: "automatic" } : {}),
  };
  const esm = {
    ...common,
    entryPoints: pkg.entries.map((e) => join(dir, e)),
    outdir: join(dir, "dist"),
    outbase: join(dir, "src"),
    splitting: pkg.splitting === true,
    chunkNames: "chunks/[name]-[hash]",
    format: "esm",
    platform: pkg.platform,
    external: externalsOf(dir),
  };
  await build(esm);
  if (pkg.browser) {
    // What bundlers get under the `browser` condition: the same modules, `ws` left out.
    await build({ ...esm, outdir: join(dir, "dist/browser"), platform: "browser", external: externalsOf(dir).filter((e) => !/^ws(\/\*)?$/.test(e)), plugins: [noWs] });
    // Self-contained bundles (every dependency inside) for a page without a bundler.
    const standalone = { ...common, entryPoints: [join(dir, "src/index.ts")], platform: "browser", minify: true, plugins: [noWs] };
    await build({ ...standalone, format: "esm", outfile: join(dir, "dist/lockstep.browser.js") });
    await build({ ...standalone, format: "iife", globalName: "Lockstep", outfile: join(dir, "dist/lockstep.iife.js") });
  }
  if (pkg.cjs) {
    const inline = pkg.cjs.inline ?? [];
    const cjsDir = join(dir, "dist/cjs");
    await build({
      ...common,
      entryPoints: [join(dir, "src/index.ts")],
      outfile: join(cjsDir, "index.js"),
      format: "cjs",
      // A require()d build runs in Node: browsers get the ESM build through the `browser` condition.
      platform: "node",
      external: externalsOf(dir).filter((e) => !inline.some((name) => e === name || e === `${name}/*`)),
    });
    writeFileSync(join(cjsDir, "package.json"), JSON.stringify({ type: "commonjs" }) + "\n");
    for (const [shim, target] of Object.entries(pkg.cjs.shims ?? {})) {
      mkdirSync(dirname(join(cjsDir, shim)), { recursive: true });
      writeFileSync(join(cjsDir, shim), `"use strict";\nmodule.exports = require(${JSON.stringify(target)});\n`);
    }
  }
  if (withTypes) execFileSync(process.execPath, [tsc, "-p", join(dir, "tsconfig.build.json")], { stdio: "inherit" });
  if (withTypes && pkg.cjs) copyDeclarations(join(dir, "dist"), join(dir, "dist/cjs"), ["cjs", "browser", "chunks"]);
  writeFileSync(join(dir, "dist", ".build-stamp"), JSON.stringify({ types: withTypes }) + "\n");
}
const what = withTypes ? "" : " (JavaScript only)";
const upToDateNote = skipped > 0 ? `, ${skipped} up to date` : "";
console.log(`built ${rebuilt.size} packages${what} in ${((Date.now() - started) / 1000).toFixed(1)}s${upToDateNote}`);
