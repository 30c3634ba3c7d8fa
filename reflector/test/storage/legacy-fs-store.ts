/*
 * The filesystem store as it was before the log (a file per key: temp write, fsync, rename, dir
 * fsync), kept as it was for two things: tests of the migration write data directories with it,
 * and scripts/bench/storage.mjs measures it as the baseline the log store replaced.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, readdir, rename, rmdir, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { checkKey, checkPrefix, type BlobStore } from "../../src/storage/blob-store";
import { StorageError } from "../../src/storage/errors";
import { decodeDirName, decodeFileName, encodeSegment, isTempFileName, tempFileName, valueFileName } from "../../src/storage/fs-names";

/** How often a put retries when a concurrent delete pruned the directory it was writing into. */
const PUT_ATTEMPTS = 5;
/** Windows cannot open directories to fsync them; there, renames are as durable as NTFS makes them. */
const CAN_SYNC_DIRS = process.platform !== "win32";

/** The former filesystem store in `dir`: each key segment a directory, the last one a file (fs-names.ts). */
export async function createLegacyFsStore(dir: string): Promise<BlobStore> {
  const root = resolve(dir);
  try {
    await mkdir(root, { recursive: true });
  } catch (cause) {
    throw new StorageError(`cannot create the storage directory ${root} (${codeOf(cause)}); check the path and its permissions`, { cause });
  }
  await removeTempFiles(root);
  return new FsStore(root);
}

async function removeTempFiles(dirPath: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(dirPath, { withFileTypes: true });
  } catch (cause) {
    if (isMissing(cause)) return;
    throw new StorageError(`cannot scan the storage directory ${dirPath} (${codeOf(cause)}); check its permissions`, { cause });
  }
  for (const entry of entries) {
    const path = join(dirPath, entry.name);
    if (entry.isDirectory()) await removeTempFiles(path);
    else if (entry.isFile() && isTempFileName(entry.name)) {
      try {
        await unlink(path);
      } catch (cause) {
        if (!isMissing(cause)) throw new StorageError(`cannot remove the leftover temp file ${path} (${codeOf(cause)}); check its permissions`, { cause });
      }
    }
  }
}

class FsStore implements BlobStore {
  readonly #root: string;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(root: string) {
    this.#root = root;
  }

  get location(): string {
    return this.#root;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#track(async () => {
      const { file } = this.#paths(key);
      try {
        const buffer = await readFile(file);
        return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      } catch (cause) {
        if (isMissing(cause)) return undefined;
        throw ioError("read", key, file, cause);
      }
    });
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.#track(async () => {
      const { dir, file } = this.#paths(key);
      if (!(value instanceof Uint8Array)) throw new StorageError(`put ${JSON.stringify(key)}: value must be a Uint8Array`, { key });
      for (let attempt = 1; ; attempt++) {
        const temp = join(dir, tempFileName(valueFileName(lastSegment(key)), randomBytes(8).toString("hex")));
        try {
          const created = await mkdir(dir, { recursive: true });
          if (created !== undefined) await syncNewDirs(created, dir);
          await writeDurably(temp, value);
          await rename(temp, file);
          await syncDir(dir);
          return;
        } catch (cause) {
          await unlink(temp).catch(() => undefined);
          // A concurrent delete may prune the directory between mkdir and the write: try again.
          if (codeOf(cause) === "ENOENT" && attempt < PUT_ATTEMPTS) continue;
          throw ioError("write", key, file, cause);
        }
      }
    });
  }

  delete(key: string): Promise<void> {
    return this.#track(async () => {
      const { dir, file } = this.#paths(key);
      try {
        await unlink(file);
      } catch (cause) {
        if (isMissing(cause)) return;
        throw ioError("delete", key, file, cause);
      }
      try {
        await syncDir(dir);
      } catch (cause) {
        // A concurrent delete in the same directory pruned it once empty: the entry is gone with it.
        if (isMissing(cause)) return;
        throw ioError("delete", key, file, cause);
      }
      await this.#prune(dir);
    });
  }

  list(prefix: string): Promise<string[]> {
    return this.#track(async () => {
      const { dirs, partial } = checkPrefix(prefix);
      const keys: string[] = [];
      const base = dirs.length === 0 ? "" : dirs.join("/") + "/";
      await this.#walk(join(this.#root, ...dirs.map(encodeSegment)), base, partial, keys);
      return keys.sort();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
  }

  #track<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new StorageError(`the storage directory ${this.#root} was closed; open it again`));
    const promise = operation();
    this.#inFlight.add(promise);
    const forget = (): void => void this.#inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  #paths(key: string): { dir: string; file: string } {
    checkKey(key);
    const segments = key.split("/");
    const dir = join(this.#root, ...segments.slice(0, -1).map(encodeSegment));
    return { dir, file: join(dir, valueFileName(lastSegment(key))) };
  }

  /** Collects keys under `dirPath` (whose key prefix is `base`) that start with `base + partial`. */
  async #walk(dirPath: string, base: string, partial: string, out: string[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dirPath, { withFileTypes: true });
    } catch (cause) {
      // Missing: nothing stored under this prefix (or a concurrent delete just pruned it).
      if (isMissing(cause)) return;
      throw new StorageError(`cannot list ${JSON.stringify(base + partial)} in ${dirPath} (${codeOf(cause)}); check its permissions`, { cause });
    }
    for (const entry of entries) {
      if (entry.isDirectory()) {
        const segment = decodeDirName(entry.name);
        if (segment !== undefined && segment.startsWith(partial)) await this.#walk(join(dirPath, entry.name), `${base}${segment}/`, "", out);
      } else if (entry.isFile()) {
        const segment = decodeFileName(entry.name);
        if (segment !== undefined && segment.startsWith(partial)) out.push(base + segment);
      }
    }
  }

  /** Removes directories a delete left empty, up to the root; stops at the first that is not empty. */
  async #prune(dir: string): Promise<void> {
    for (let d = dir; d !== this.#root && d.startsWith(this.#root); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return;
      }
    }
  }
}

function lastSegment(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
}

async function writeDurably(path: string, value: Uint8Array): Promise<void> {
  const handle = await open(path, "wx");
  try {
    await handle.writeFile(value);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDir(path: string): Promise<void> {
  if (!CAN_SYNC_DIRS) return;
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes the entries of directories that `mkdir -p` just created (from `first` down to `dir`) durable. */
async function syncNewDirs(first: string, dir: string): Promise<void> {
  for (let d = dir; ; d = dirname(d)) {
    await syncDir(dirname(d));
    if (d === first || dirname(d) === d) return;
  }
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : String(error);
}

function isMissing(error: unknown): boolean {
  const code = codeOf(error);
  return code === "ENOENT" || code === "ENOTDIR";
}

function ioError(verb: string, key: string, path: string, cause: unknown): StorageError {
  const code = codeOf(cause);
  const hint =
    code === "ENOSPC"
      ? "free disk space"
      : code === "EACCES" || code === "EPERM"
        ? "fix the permissions of the storage directory (the reflector's user must be able to write it)"
        : code === "EROFS"
          ? "the file system is mounted read-only: remount it read-write or use another directory"
          : "check the storage directory and the disk";
  return new StorageError(`cannot ${verb} ${JSON.stringify(key)} at ${path} (${code}); ${hint}, then retry`, { cause, key });
}
