import { randomBytes } from "node:crypto";
import { link, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { StorageError } from "./errors";
import { codeOf } from "./fs-log-io";

/**
 * One process per data directory: a lock file holding who owns it (pid, host, the process's start
 * time, a random token). Node has no `flock`, so ownership is checked by hand:
 *
 * - taking it is atomic: the content is written to a private file that is then hard-linked to the
 *   lock's name (`link` fails if the name exists), so a lock is never seen half-written (where hard
 *   links are not supported, an exclusive create and a write);
 * - a lock whose process is gone is stale and broken: same host, and the pid no longer runs or now
 *   belongs to a process that started at another time (pid reuse, e.g. pid 1 in a container that
 *   restarted). A lock of another host is never taken over: its owner cannot be checked from here;
 * - breaking is a rename to a private name followed by a check that what was renamed is the stale
 *   lock that was judged; if another process replaced it meanwhile, it is put back and this one
 *   gives up, so two processes racing over a stale lock cannot both win.
 */
export interface DirLock {
  /** Removes the lock file if it is still this process's. */
  release(): Promise<void>;
}

interface Owner {
  readonly pid: number;
  readonly host: string;
  /** The process's start time as the kernel tells it (Linux: clock ticks after boot), or "". */
  readonly start: string;
  readonly token: string;
  readonly since: string;
}

/** Locks of this process (the same pid and start time could be a stale lock of a former process). */
const HELD = Symbol.for("@lockstep/reflector.fs-locks");
const held = ((globalThis as { [HELD]?: Set<string> })[HELD] ??= new Set<string>());

/** A lock file still empty this soon after its creation is being written by its owner: not stale. */
const FRESH_MS = 10_000;

/**
 * Takes the lock file at `path` for the data directory `dir`.
 * @throws {StorageError} if another live process holds it (naming it and what to do), or an
 *   error with an errno `code` if the file cannot be created (the caller words that one).
 */
export async function lockDir(path: string, dir: string): Promise<DirLock> {
  const me: Owner = { pid: process.pid, host: hostname(), start: await startOf(process.pid), token: randomBytes(8).toString("hex"), since: new Date().toISOString() };
  const text = JSON.stringify(me);
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await create(path, text, me.token)) {
      held.add(path);
      return {
        async release() {
          held.delete(path);
          const now = await readFile(path, "utf8").catch(() => undefined);
          if (now === text) await unlink(path).catch(() => undefined);
        },
      };
    }
    const current = await readFile(path, "utf8").catch((e: unknown) => (codeOf(e) === "ENOENT" ? undefined : Promise.reject(e)));
    if (current === undefined) continue; // released meanwhile: try again
    const owner = parseOwner(current);
    const verdict = owner === undefined ? await unparsable(path) : await liveness(owner, path);
    if (verdict !== undefined) {
      throw new StorageError(
        `the storage directory ${dir} is in use by ${verdict}; one process at a time may use a data directory: stop the other one first (or give this one another directory). If no such process runs, delete ${path} and retry`,
      );
    }
    await breakStale(path, current, me.token);
  }
  throw new StorageError(`cannot lock the storage directory ${dir}: other processes keep taking and releasing ${path}; start one reflector at a time`);
}

async function create(path: string, text: string, token: string): Promise<boolean> {
  const mine = `${path}.${token}`;
  await writeFile(mine, text, { flag: "wx" });
  try {
    await link(mine, path);
    return true;
  } catch (error) {
    if (codeOf(error) === "EEXIST") return false;
    if (!["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV"].includes(codeOf(error))) throw error;
  } finally {
    await unlink(mine).catch(() => undefined);
  }
  // No hard links on this file system: an exclusive create, then the content.
  try {
    await writeFile(path, text, { flag: "wx" });
    return true;
  } catch (error) {
    if (codeOf(error) === "EEXIST") return false;
    throw error;
  }
}

/** `undefined` if the owner is gone (stale), else who holds the lock, for the message. */
async function liveness(owner: Owner, path: string): Promise<string | undefined> {
  const who = `process ${owner.pid} on host ${owner.host} (since ${owner.since})`;
  if (owner.host !== hostname()) return `${who}, a reflector on another machine`;
  if (owner.pid === process.pid) {
    if (held.has(path) || (owner.start !== "" && owner.start === (await startOf(process.pid)))) return `this process (a store opened on it and not closed yet)`;
    return undefined;
  }
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if (codeOf(error) === "ESRCH") return undefined;
    // EPERM: it runs, as another user.
  }
  const start = await startOf(owner.pid);
  if (owner.start !== "" && start !== "" && start !== owner.start) return undefined; // the pid was reused
  return who;
}

/** An empty or garbled lock: being written right now if fresh, else left by a crash mid-write. */
async function unparsable(path: string): Promise<string | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (info !== undefined && Date.now() - info.mtimeMs < FRESH_MS) return "another process that is taking the lock right now";
  return undefined;
}

async function breakStale(path: string, judged: string, token: string): Promise<void> {
  const aside = `${path}.stale-${token}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (codeOf(error) === "ENOENT") return; // someone else broke it: try again
    throw error;
  }
  const moved = await readFile(aside, "utf8").catch(() => undefined);
  if (moved !== judged) {
    // Another process broke the stale lock and took the directory between our read and our rename.
    await link(aside, path).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
    throw new StorageError(`another process took the lock ${path} while this one was breaking a stale one; start one reflector at a time`);
  }
  await unlink(aside).catch(() => undefined);
}

function parseOwner(text: string): Owner | undefined {
  try {
    const o = JSON.parse(text) as Partial<Owner>;
    if (typeof o.pid === "number" && typeof o.host === "string" && typeof o.start === "string" && typeof o.token === "string") {
      return { pid: o.pid, host: o.host, start: o.start, token: o.token, since: typeof o.since === "string" ? o.since : "?" };
    }
  } catch {
    // garbled
  }
  return undefined;
}

/** The start time of process `pid` (Linux: field 22 of /proc/<pid>/stat), or "" where unknown. */
async function startOf(pid: number): Promise<string> {
  if (process.platform !== "linux") return "";
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[19] ?? "";
}
