#!/usr/bin/env node
// The repo's structural lint (`npm run lint`, run by the test command):
//   1. no import cycle in any package, type-only imports counted (dpdm: it resolves TypeScript
//      imports, `import type` included, which a regex over the sources would get wrong);
//   2. the client's layers import only downward: app → session → view → kernel → serializer;
//   3. no source file over 500 lines, and only a handful of files directly in packages/client/src.
// Exits 1 listing every violation.
import { parseCircular, parseDependencyTree } from "dpdm";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const MAX_LINES = 500;
const MAX_CLIENT_ROOT_FILES = 5;
/** Entry points of every package: each is walked with all it imports. */
const ENTRIES = [
  "packages/protocol/src/index.ts",
  "packages/client/src/index.ts",
  "packages/client/src/app/index.ts",
  "packages/test-support/src/index.ts",
  "packages/react/src/index.ts",
  "reflector/src/index.ts",
  "reflector/src/cli.ts",
];
/** The client's layers, highest first: a file may import its own layer and the ones after it. */
const LAYERS = ["app", "data", "session", "view", "kernel", "serializer"];
const CLIENT_SRC = "packages/client/src/";
/** Files directly in the client's src: the public entry (index), `Session` (wires session and app) and the error classes (below every layer). */
const CLIENT_ROOT_RANK = { "index.ts": -1, "session.ts": -1, "errors.ts": LAYERS.length };

const problems = [];

// 1. Cycles.
const tree = await parseDependencyTree(ENTRIES, {
  context: root,
  cwd: root,
  tsconfig: join(root, "tsconfig.json"),
  transform: false, // keep type-only imports: a type cycle is still a cycle between files
  include: /\.(ts|tsx|mts)$/,
  exclude: /node_modules|\/dist\//,
  skipDynamicImports: false,
});
for (const cycle of parseCircular(tree)) problems.push(`import cycle: ${[...cycle, cycle[0]].join(" -> ")}`);

// 2. Layers.
function rankOf(file) {
  if (!file.startsWith(CLIENT_SRC)) return undefined;
  const rest = file.slice(CLIENT_SRC.length);
  const top = rest.split("/")[0];
  if (!rest.includes("/")) return CLIENT_ROOT_RANK[rest] ?? -1;
  const rank = LAYERS.indexOf(top);
  return rank === -1 ? undefined : rank;
}
for (const [file, deps] of Object.entries(tree)) {
  const from = rankOf(file);
  if (from === undefined || !deps) continue;
  for (const dep of deps) {
    const to = dep.id === null ? undefined : rankOf(dep.id);
    if (to !== undefined && to < from) {
      problems.push(`layering: ${file} (${layerName(from)}) imports ${dep.id} (${layerName(to)}); imports go ${LAYERS.join(" → ")} only`);
    }
  }
}
function layerName(rank) {
  return rank < 0 ? "entry" : rank >= LAYERS.length ? "errors" : LAYERS[rank];
}

// 3. Sizes.
function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist") continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (/\.(ts|mts|mjs|tsx)$/.test(name)) out.push(path);
  }
  return out;
}
const sourceDirs = [...readdirSync(join(root, "packages")).map((p) => join(root, "packages", p, "src")), join(root, "reflector", "src")];
for (const dir of sourceDirs) {
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) continue;
  for (const file of walk(dir)) {
    const lines = readFileSync(file, "utf8").split("\n").length - 1;
    if (lines > MAX_LINES) problems.push(`size: ${relative(root, file).split(sep).join("/")} has ${lines} lines (at most ${MAX_LINES}: split it by what it holds)`);
  }
}
const clientRoot = readdirSync(join(root, CLIENT_SRC)).filter((name) => statSync(join(root, CLIENT_SRC, name)).isFile());
if (clientRoot.length > MAX_CLIENT_ROOT_FILES) {
  problems.push(`layout: ${clientRoot.length} files directly in ${CLIENT_SRC} (${clientRoot.join(", ")}); at most ${MAX_CLIENT_ROOT_FILES}, the rest belong in a layer folder`);
}

const files = Object.keys(tree).length;
if (problems.length > 0) {
  for (const p of problems) console.error(`lint: ${p}`);
  console.error(`lint: ${problems.length} problem(s) in ${files} files`);
  process.exit(1);
}
console.log(`lint ok: ${files} files, no import cycle (type imports counted), client layers ${LAYERS.join(" → ")}, no file over ${MAX_LINES} lines`);
