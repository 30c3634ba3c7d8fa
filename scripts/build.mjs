#!/usr/bin/env node
// Builds every package: ESM bundles with esbuild, declarations with tsc (typescript@5, pinned),
// and the browser bundles of the client. Order matters: declarations of a package are read by
// the packages that depend on it.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
/** A package's runtime dependencies stay imports in its ESM build (its consumers install them). */
function dependenciesOf(dir) {
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  return Object.keys(pkg.dependencies ?? {});
}

const packages = [
  { dir: "packages/protocol", entries: ["src/index.ts"], platform: "neutral" },
  // Two entries (the API and the `/app` subpath) share their code in chunks: one App, one Session.
  { dir: "packages/client", entries: ["src/index.ts", "src/app/index.ts"], platform: "neutral", browser: true, splitting: true },
  { dir: "reflector", entries: ["src/index.ts", "src/cli.ts"], platform: "node" },
];

const started = Date.now();
for (const pkg of packages) {
  const dir = join(root, pkg.dir);
  rmSync(join(dir, "dist"), { recursive: true, force: true });
  await build({
    entryPoints: pkg.entries.map((e) => join(dir, e)),
    outdir: join(dir, "dist"),
    outbase: join(dir, "src"),
    splitting: pkg.splitting === true,
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    format: "esm",
    platform: pkg.platform,
    target: "es2022",
    external: dependenciesOf(dir),
    sourcemap: true,
    logLevel: "warning",
  });
  if (pkg.browser) {
    const common = {
      entryPoints: [join(dir, "src/index.ts")],
      bundle: true,
      platform: "browser",
      target: "es2022",
      external: ["ws"],
      minify: true,
      sourcemap: true,
      logLevel: "warning",
    };
    await build({ ...common, format: "esm", outfile: join(dir, "dist/lockstep.browser.js") });
    await build({ ...common, format: "iife", globalName: "Lockstep", outfile: join(dir, "dist/lockstep.iife.js") });
  }
  execFileSync(process.execPath, [tsc, "-p", join(dir, "tsconfig.build.json")], { stdio: "inherit" });
}
console.log(`built ${packages.length} packages in ${((Date.now() - started) / 1000).toFixed(1)}s`);
