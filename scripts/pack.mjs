#!/usr/bin/env node
// Builds every publishable package and packs each into one folder, as the tarballs `npm publish`
// would upload:
//
//   node scripts/pack.mjs [--out DIR]     (default .packs/; prints one tarball path a line)
//
// `pnpm pack` (not `npm pack`) because it rewrites the `workspace:` ranges between our packages
// into real ones (`workspace:^` → `^0.1.0`). Each tarball is then checked: no `workspace:` left,
// and every file its `exports`, `main`, `types` and `bin` name is inside. The project's LICENSE
// goes into every package for the time of the pack.
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({ options: { out: { type: "string", default: join(root, ".packs") }, help: { type: "boolean", default: false } } });
if (args.help) {
  console.log("usage: node scripts/pack.mjs [--out DIR]   build and pack every publishable package into DIR (default .packs/)");
  process.exit(0);
}
const out = resolve(args.out);

/** The packages `npm publish` would publish, in dependency order. */
const PUBLISHED = ["packages/protocol", "packages/client", "reflector", "packages/react", "packages/create-lockstep"];

// A full build (declarations included), skipped package by package when dist is already current.
// Its report goes to stderr: stdout is the tarballs' paths only.
const built = await run(process.execPath, [join(root, "scripts", "build.mjs"), "--if-changed"], { cwd: root }).catch((error) => {
  process.stderr.write(error.stdout ?? "");
  process.stderr.write(error.stderr ?? "");
  throw new Error("pack: the build failed");
});
process.stderr.write(built.stdout);

mkdirSync(out, { recursive: true });
// Tarballs of earlier packs go (a version bump would leave two of a package); other files stay.
for (const name of readdirSync(out)) if (/^(lockstep-[a-z-]+|create-lockstep)-\d.*\.tgz$/.test(name)) rmSync(join(out, name));

/** Packs one package; returns its tarball's path. */
async function pack(dir) {
  const license = join(dir, "LICENSE");
  const borrowed = !existsSync(license) && existsSync(join(root, "LICENSE"));
  if (borrowed) copyFileSync(join(root, "LICENSE"), license);
  try {
    const { stdout } = await run("bash", [join(root, "scripts", "pnpm.sh"), "pack", "--pack-destination", out], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
    const tarball = stdout.split("\n").map((l) => l.trim()).find((l) => l.endsWith(".tgz") && l.startsWith(out));
    if (!tarball) throw new Error(`pack: no tarball in pnpm's output for ${dir}:\n${stdout}`);
    return tarball;
  } finally {
    if (borrowed) rmSync(license, { force: true });
  }
}

/** Every file a manifest promises (exports targets, main, types, bins), as paths in the tarball. */
function promisedFiles(pkg) {
  const targets = [];
  const walk = (value) => {
    if (typeof value === "string") targets.push(value);
    else if (value && typeof value === "object") for (const v of Object.values(value)) walk(v);
  };
  walk(pkg.exports);
  walk(pkg.bin);
  for (const field of ["main", "types"]) if (pkg[field]) targets.push(pkg[field]);
  return [...new Set(targets.map((t) => `package/${t.replace(/^\.\//, "")}`))];
}

/** Throws unless the tarball's manifest is publishable and its promised files are inside. */
async function check(tarball) {
  const { stdout: manifest } = await run("tar", ["-xzOf", tarball, "package/package.json"], { maxBuffer: 1024 * 1024 });
  if (manifest.includes("workspace:")) throw new Error(`pack: ${tarball} still has a workspace: range:\n${manifest}`);
  const { stdout: listing } = await run("tar", ["-tzf", tarball], { maxBuffer: 16 * 1024 * 1024 });
  const files = new Set(listing.split("\n"));
  const missing = promisedFiles(JSON.parse(manifest)).filter((f) => !files.has(f));
  if (missing.length > 0) throw new Error(`pack: ${tarball} lacks ${missing.join(", ")}`);
}

const dirs = PUBLISHED.filter((dir) => {
  // @lockstep/react is written by another change: packed once the build made it.
  if (dir === "packages/react" && !existsSync(join(root, dir, "dist", ".build-stamp"))) {
    console.error(`pack: ${dir} skipped (not built yet)`);
    return false;
  }
  return true;
});
const packChecked = async (dir) => {
  const tarball = await pack(join(root, dir));
  await check(tarball);
  return tarball;
};
// The first pack alone (without a global pnpm, scripts/pnpm.sh fetches pnpm once), then the rest at once.
const tarballs = [await packChecked(dirs[0])];
tarballs.push(...(await Promise.all(dirs.slice(1).map(packChecked))));
for (const tarball of tarballs) console.log(tarball);
