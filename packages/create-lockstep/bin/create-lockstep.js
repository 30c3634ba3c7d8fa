#!/usr/bin/env node
// create-lockstep: writes a new Lockstep app (TypeScript, Vite, a shared model and its view, a
// reflector started by `npm run dev`) into a new folder. Plain Node, no dependencies:
//
//   npm create lockstep@latest my-app
//   npx create-lockstep my-app [--packs DIR]
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const templateDir = join(here, "..", "template");
const own = JSON.parse(readFileSync(join(here, "..", "package.json"), "utf8"));

const usage = `usage: create-lockstep <folder> [--packs DIR]

Writes a new Lockstep app into <folder> (which must be new or empty).
  --packs DIR   take @lockstep/* from the tarballs in DIR (made by scripts/pack.mjs of the
                Lockstep repository) instead of the registry
  --help        this text`;

/** Files npm would not pack under their real name, stored with a leading "_" in the template. */
const RENAMED = { _gitignore: ".gitignore" };

function fail(message) {
  console.error(`create-lockstep: ${message}`);
  process.exit(1);
}

let parsed;
try {
  parsed = parseArgs({ allowPositionals: true, options: { packs: { type: "string" }, help: { type: "boolean", default: false } } });
} catch (error) {
  fail(`${error.message}\n\n${usage}`);
}
const { values: args, positionals } = parsed;
if (args.help) {
  console.log(usage);
  process.exit(0);
}
if (positionals.length !== 1) fail(`name one folder for the new app\n\n${usage}`);

const target = resolve(positionals[0]);
if (existsSync(target) && (!statSync(target).isDirectory() || readdirSync(target).length > 0)) {
  fail(`${target} exists and is not an empty folder; pick a new name`);
}

/** A package name from the folder's name: lower case, npm's allowed characters only. */
const appName = basename(target).toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[._-]+|[-]+$/g, "") || "lockstep-app";
/** Clients with the same appId and session name meet; the app's name keeps apps apart. */
const appId = `app.${appName.replace(/[^A-Za-z0-9._-]/g, "-")}`;
const title = basename(target);

/** Where each @lockstep package comes from: the registry at this starter's version, or a tarball. */
function lockstepSpecs() {
  const names = ["@lockstep/protocol", "@lockstep/client", "@lockstep/reflector"];
  if (args.packs === undefined) return Object.fromEntries(names.map((n) => [n, `^${own.version}`]));
  const dir = resolve(args.packs);
  if (!existsSync(dir)) fail(`--packs: ${dir} does not exist`);
  const files = readdirSync(dir);
  return Object.fromEntries(
    names.map((name) => {
      const prefix = `${name.slice(1).replace("/", "-")}-`; // @lockstep/client → lockstep-client-0.1.0.tgz
      const tarball = files.filter((f) => f.startsWith(prefix) && f.endsWith(".tgz") && /^\d/.test(f.slice(prefix.length))).sort().at(-1);
      if (!tarball) fail(`--packs: no ${prefix}*.tgz in ${dir}`);
      return [name, `file:${join(dir, tarball)}`];
    }),
  );
}

function packageJson(text) {
  const pkg = JSON.parse(text);
  const specs = lockstepSpecs();
  pkg.name = appName;
  pkg.dependencies["@lockstep/client"] = specs["@lockstep/client"];
  pkg.devDependencies["@lockstep/reflector"] = specs["@lockstep/reflector"];
  // The client and the reflector depend on @lockstep/protocol; from tarballs it must come from one too.
  if (args.packs !== undefined) pkg.overrides = { "@lockstep/protocol": specs["@lockstep/protocol"] };
  return JSON.stringify(pkg, null, 2) + "\n";
}

/** Copies the template, filling in the app's name where the template says __APP_…__. */
function copy(from, to) {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    const source = join(from, name);
    const dest = join(to, RENAMED[name] ?? name);
    if (statSync(source).isDirectory()) {
      copy(source, dest);
    } else if (/\.(ts|html|md|json|mjs)$/.test(name)) {
      let text = readFileSync(source, "utf8").replaceAll("__APP_TITLE__", title).replaceAll("__APP_ID__", appId).replaceAll("__APP_NAME__", appName);
      if (relative(templateDir, source) === "package.json") text = packageJson(text);
      writeFileSync(dest, text);
    } else {
      copyFileSync(source, dest);
    }
  }
}

copy(templateDir, target);
const cd = relative(process.cwd(), target) || ".";
console.log(`Created ${title} in ${target}

Next:
  cd ${cd.includes(" ") ? JSON.stringify(cd) : cd}
  npm install
  npm run dev

Then open the printed URL in two windows.`);
