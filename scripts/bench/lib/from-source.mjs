// Imports repo TypeScript that no package exports (internals a bench measures) by bundling it from
// source with esbuild: @lockstep/protocol from its source too, node builtins left external.
import { build } from "esbuild";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The repository's root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/**
 * Bundles and imports `entry`: a path relative to the repository's root, or `{ contents }`, a
 * TypeScript module written inline (its imports relative to the root).
 */
export async function importFromSource(entry) {
  const dir = mkdtempSync(join(tmpdir(), "lockstep-bench-src-"));
  const outfile = join(dir, "bundle.mjs");
  try {
    await build({
      ...(typeof entry === "string" ? { entryPoints: [join(ROOT, entry)] } : { stdin: { contents: entry.contents, resolveDir: ROOT, loader: "ts" } }),
      outfile,
      bundle: true,
      format: "esm",
      platform: "node",
      target: "es2022",
      alias: { "@lockstep/protocol": join(ROOT, "packages", "protocol", "src", "index.ts") },
      // Bundled CommonJS dependencies (tweetnacl) require() node builtins, which ESM lacks.
      banner: { js: 'import { createRequire as __benchRequire } from "node:module"; const require = __benchRequire(import.meta.url);' },
      logLevel: "warning",
    });
    return await import(pathToFileURL(outfile).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
