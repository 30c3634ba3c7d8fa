// Imports repo TypeScript that no package exports (the cluster store's audit) by bundling it from
// source with esbuild, like scripts/bench/lib/from-source.mjs, but with `pg` left to the
// reflector's own installed copy: bundling pg would pull in its optional native binding.
import { build } from "esbuild";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "./cluster.mjs";

const fromReflector = createRequire(join(ROOT, "reflector", "package.json"));

/** The `pg` module the reflector uses (CommonJS). */
export const pg = fromReflector("pg");

/** Bundles and imports `entry`, a TypeScript file relative to the repository's root. */
export async function importFromRepo(entry) {
  const dir = mkdtempSync(join(tmpdir(), "lockstep-cluster-src-"));
  const outfile = join(dir, "bundle.mjs");
  const pgUrl = pathToFileURL(fromReflector.resolve("pg")).href;
  try {
    await build({
      entryPoints: [join(ROOT, entry)],
      outfile,
      bundle: true,
      format: "esm",
      platform: "node",
      target: "es2022",
      alias: { "@lockstep/protocol": join(ROOT, "packages", "protocol", "src", "index.ts") },
      plugins: [{ name: "reflector-pg", setup: (b) => b.onResolve({ filter: /^pg$/ }, () => ({ path: pgUrl, external: true })) }],
      banner: { js: 'import { createRequire as __clusterRequire } from "node:module"; const require = __clusterRequire(import.meta.url);' },
      logLevel: "warning",
    });
    return await import(pathToFileURL(outfile).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
