/*
 * Migration from the filesystem store's former layout: a file per key, a directory per key segment
 * (names as fs-names.ts says). On open, every such file is imported into the log, then deleted.
 *
 * Crash-safe in this order: (1) every value is put into the log and those puts have resolved
 * (durable); (2) the files are unlinked and each directory that changed is synced, deepest first,
 * empty directories removed; (3) only then is the store handed out. A crash in (1) or (2) leaves
 * legacy files whose values the log already holds, or not yet: the next open imports them again,
 * which writes the same values (nothing else wrote meanwhile: the store was not handed out). Temp
 * files of puts the old layout never finished are deleted, never imported.
 */
import { readFile, readdir, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { StorageError } from "./errors";
import { decodeDirName, decodeFileName, isTempFileName } from "./fs-names";
import { codeOf, type LogIo } from "./fs-log-io";
import { mapLimit } from "./keyed-queue";

/** Files read at once while importing. */
const READ_CONCURRENCY = 16;

interface LegacyDir {
  readonly path: string;
  readonly values: { key: string; path: string }[];
  readonly temps: string[];
  readonly dirs: LegacyDir[];
}

/**
 * Imports every legacy key under `root` with `put`, then removes the legacy files.
 * @returns how many keys were imported (0 for a directory without legacy files).
 */
export async function migrateLegacy(root: string, io: LogIo, put: (key: string, value: Uint8Array) => Promise<void>): Promise<number> {
  const tree = await scan(root, "");
  if (tree === undefined) return 0;
  const values: { key: string; path: string }[] = [];
  const collect = (dir: LegacyDir): void => {
    values.push(...dir.values);
    dir.dirs.forEach(collect);
  };
  collect(tree);
  await mapLimit(values, READ_CONCURRENCY, async ({ key, path }) => {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (cause) {
      throw new StorageError(`cannot read ${path} to move it into the storage log (${codeOf(cause)}); check its permissions`, { cause, key });
    }
    await put(key, bytes);
  });
  await remove(tree, io, true);
  return values.length;
}

/** The legacy files under `path` (whose key prefix is `base`), or `undefined` if there are none. */
async function scan(path: string, base: string): Promise<LegacyDir | undefined> {
  let entries;
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (cause) {
    throw new StorageError(`cannot scan ${path} for files of the former storage layout (${codeOf(cause)}); check its permissions`, { cause });
  }
  const dir: LegacyDir = { path, values: [], temps: [], dirs: [] };
  for (const entry of entries) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) {
      // Only names the old layout made: the log's own `@log` (and anything foreign) is left alone.
      const segment = decodeDirName(entry.name);
      if (segment === undefined) continue;
      const sub = await scan(child, `${base}${segment}/`);
      if (sub !== undefined) dir.dirs.push(sub);
    } else if (entry.isFile()) {
      if (isTempFileName(entry.name)) dir.temps.push(child);
      else {
        const segment = decodeFileName(entry.name);
        if (segment !== undefined) dir.values.push({ key: base + segment, path: child });
      }
    }
  }
  return dir.values.length + dir.temps.length + dir.dirs.length === 0 ? undefined : dir;
}

/** Unlinks the files of `dir`, deepest first, syncing each directory and removing it once empty. */
async function remove(dir: LegacyDir, io: LogIo, isRoot: boolean): Promise<void> {
  for (const sub of dir.dirs) await remove(sub, io, false);
  for (const path of [...dir.values.map((v) => v.path), ...dir.temps]) {
    try {
      await unlink(path);
    } catch (cause) {
      if (codeOf(cause) !== "ENOENT") throw new StorageError(`cannot delete ${path}, already moved into the storage log (${codeOf(cause)}); check its permissions`, { cause });
    }
  }
  try {
    await io.syncDir(dir.path);
  } catch (cause) {
    throw new StorageError(`cannot sync ${dir.path} after moving its files into the storage log (${codeOf(cause)}); check the disk`, { cause });
  }
  if (isRoot) return;
  // Files the old layout did not make (a README, .DS_Store) keep their directory; the parent's sync makes the removal durable.
  if ((await readdir(dir.path).catch(() => ["?"])).length === 0) await rmdir(dir.path).catch(() => undefined);
}
