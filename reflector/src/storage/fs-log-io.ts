import { closeSync, constants, openSync, writev, writevSync } from "node:fs";
import { mkdir, open, readdir, unlink, type FileHandle } from "node:fs/promises";
import { StorageError } from "./errors";

/**
 * The file operations the log store makes, behind an interface so tests can count syncs and make
 * a write or a sync fail (internal: not exported from the package).
 */
export interface LogIo {
  /** Opens a segment for reading and writing; `create` fails if it exists. */
  open(path: string, create: boolean): Promise<LogFile>;
  readdir(path: string): Promise<string[]>;
  mkdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Makes a directory's entries (created, removed files) durable. */
  syncDir(path: string): Promise<void>;
}

/** An open segment file. */
export interface LogFile {
  readonly path: string;
  /** Opened with O_DSYNC: a write returns once its bytes are durable, as if fdatasync followed it. */
  readonly syncsOnWrite: boolean;
  /** Reads into `buffers`, in order, from `position`; resolves with the count read (short at the end of the file). */
  read(buffers: readonly Uint8Array[], position: number): Promise<number>;
  /** Writes `buffers` at `position` (positional; one call may write less: it resolves with the count). */
  writev(buffers: readonly Buffer[], position: number): Promise<number>;
  /** As writev, synchronously, on the calling thread (fs-log-inline.ts); absent where not offered. */
  writevSync?(buffers: readonly Buffer[], position: number): number;
  /**
   * Writes `length` zeros at `position` through the page cache, on the calling thread: it returns
   * without waiting for the disk, even on an O_DSYNC file (fs-log-prealloc.ts); absent where not offered.
   */
  zeroSync?(position: number, length: number): void;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

/** Windows cannot open directories to fsync them; there, new entries are as durable as NTFS makes them. */
const CAN_SYNC_DIRS = process.platform !== "win32";

/**
 * O_DSYNC where the platform has it: the flush's one write is then durable when it returns, which
 * saves the separate fdatasync (a second trip through the thread pool and the event loop).
 */
const O_DSYNC = process.platform === "win32" ? undefined : constants.O_DSYNC;

/** The real file system; `dsync: false` makes every write need an explicit datasync (for tests that count or fail them). */
export function nodeLogIo(options: { readonly dsync?: boolean } = {}): LogIo {
  const dsync = options.dsync !== false && O_DSYNC !== undefined ? O_DSYNC : 0;
  return {
    async open(path, create) {
      const flags = constants.O_RDWR | (create ? constants.O_CREAT | constants.O_EXCL : 0) | dsync;
      return new NodeLogFile(path, await open(path, flags, 0o644), dsync !== 0);
    },
    readdir: (path) => readdir(path),
    mkdir: async (path) => void (await mkdir(path, { recursive: true })),
    unlink: (path) => unlink(path),
    syncDir,
  };
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

/** Zeros for {@link LogFile.zeroSync}, written as many iovecs as a range needs. */
const ZEROS = Buffer.alloc(64 * 1024);

class NodeLogFile implements LogFile {
  /** A second descriptor of the file without O_DSYNC, for zeroSync (opened on first use). */
  #cached: number | undefined;

  constructor(
    readonly path: string,
    readonly handle: FileHandle,
    readonly syncsOnWrite: boolean,
  ) {}

  async read(buffers: readonly Uint8Array[], position: number): Promise<number> {
    if (buffers.length === 1) return (await this.handle.read(buffers[0] as Uint8Array, 0, (buffers[0] as Uint8Array).length, position)).bytesRead;
    return (await this.handle.readv(buffers as Uint8Array[], position)).bytesRead;
  }

  /**
   * The callback API on the handle's descriptor, not `FileHandle.writev`: every flush makes this
   * call, and the promise API's extra layers cost about a third more of the main thread's CPU per
   * write (40 against 26 µs of user time per O_DSYNC write on ext4, measured), and some latency.
   */
  writev(buffers: readonly Buffer[], position: number): Promise<number> {
    return new Promise((resolve, reject) => writev(this.handle.fd, buffers as Buffer[], position, (error, written) => (error ? reject(error) : resolve(written))));
  }

  writevSync(buffers: readonly Buffer[], position: number): number {
    return writevSync(this.handle.fd, buffers as Buffer[], position);
  }

  zeroSync(position: number, length: number): void {
    // Through the page cache, so the loop pays a copy, not a disk round trip. No ordering hazard:
    // a flush writing near or over this range meets the same cached pages.
    if (!this.syncsOnWrite) this.#cached = this.handle.fd;
    else this.#cached ??= openSync(this.path, constants.O_RDWR);
    const parts: Buffer[] = [];
    for (let left = length; left > 0; left -= ZEROS.length) parts.push(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
    const fd = this.#cached;
    writeFullySync({ writevSync: (buffers, at) => writevSync(fd, buffers as Buffer[], at), path: this.path }, parts, position);
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    if (this.#cached !== undefined && this.#cached !== this.handle.fd) closeSync(this.#cached);
    this.#cached = undefined;
    return this.handle.close();
  }
}

/** Fills `buffers` from `position` (short reads are continued; the end of the file is an error). */
export async function readFully(file: LogFile, buffers: readonly Uint8Array[], position: number): Promise<void> {
  let rest = buffers.filter((b) => b.length > 0);
  let at = position;
  while (rest.length > 0) {
    const n = await file.read(rest, at);
    if (n <= 0) throw Object.assign(new Error(`${file.path} ends at ${at}, before the record read from ${position}`), { code: "ESHORT" });
    at += n;
    rest = advance(rest, n);
  }
}

/** Writes every byte of `buffers` at `position`, continuing after short writes. */
export async function writeFully(file: LogFile, buffers: readonly Buffer[], position: number): Promise<void> {
  let rest = buffers.filter((b) => b.length > 0);
  let at = position;
  while (rest.length > 0) {
    let n = await file.writev(rest, at);
    if (n <= 0) throw Object.assign(new Error(`a write to ${file.path} at ${at} made no progress`), { code: "EIO" });
    at += n;
    rest = advance(rest, n);
  }
}

/** {@link writeFully} with the file's synchronous writev (the caller checked it has one). */
export function writeFullySync(file: Pick<LogFile, "writevSync" | "path">, buffers: readonly Buffer[], position: number): void {
  let rest = buffers.filter((b) => b.length > 0);
  let at = position;
  while (rest.length > 0) {
    const n = (file.writevSync as NonNullable<LogFile["writevSync"]>)(rest, at);
    if (n <= 0) throw Object.assign(new Error(`a write to ${file.path} at ${at} made no progress`), { code: "EIO" });
    at += n;
    rest = advance(rest, n);
  }
}

/** What is left of `buffers` once the first `n` bytes are done. */
function advance<T extends Uint8Array>(buffers: readonly T[], n: number): T[] {
  const next: T[] = [];
  for (const b of buffers) {
    if (n >= b.length) n -= b.length;
    else {
      next.push(n === 0 ? b : (b.subarray(n) as T));
      n = 0;
    }
  }
  return next;
}

/** The errno code of an error (`ENOSPC`), or the error as text. */
export function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : String(error);
}

/** A StorageError for a failed read or write of `key`, saying what to do about the errno. */
export function ioError(verb: string, key: string, path: string, cause: unknown): StorageError {
  const code = codeOf(cause);
  const hint =
    code === "ENOSPC" || code === "EDQUOT"
      ? "free disk space"
      : code === "EACCES" || code === "EPERM"
        ? "fix the permissions of the storage directory (the reflector's user must be able to write it)"
        : code === "EROFS"
          ? "the file system is mounted read-only: remount it read-write or use another directory"
          : "check the storage directory and the disk";
  return new StorageError(`cannot ${verb} ${JSON.stringify(key)} at ${path} (${code}); ${hint}, then retry`, { cause, key });
}
