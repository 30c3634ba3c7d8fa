import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LOG_DIR } from "../../src/storage/fs-store";
import { nodeLogIo, type LogFile, type LogIo } from "../../src/storage/fs-log-io";
import { SEGMENT_HEADER_BYTES, parseBatch } from "../../src/storage/fs-log-format";

/** What the filesystem store's tests share: temp dirs, a file layer that counts and fails on demand, log images. */

export const newDir = (label = "fs"): Promise<string> => mkdtemp(join(tmpdir(), `lockstep-${label}-`));
export const removeDir = (dir: string): Promise<void> => rm(dir, { recursive: true, force: true });
/** One turn of the event loop (setImmediate). */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The file operations a {@link TestIo} can make fail. */
export type FaultPoint = "writev" | "datasync" | "truncate" | "open" | "syncDir" | "zero";

/** An errno-style error, as Node's fs raises them. */
export const errno = (code: string): Error => Object.assign(new Error(`${code}: injected by the test`), { code });

/**
 * The real file layer, plus counters and injected failures: `fail("datasync", "EIO", 2)` makes the
 * next two datasyncs fail with EIO. A failed writev writes half of its bytes first, as a disk that
 * fills up mid-write would.
 */
export class TestIo implements LogIo {
  readonly counts: Record<FaultPoint, number> = { writev: 0, datasync: 0, truncate: 0, open: 0, syncDir: 0, zero: 0 };
  readonly #faults = new Map<FaultPoint, { code: string; left: number }>();
  /** Per file: the end of what was written, and what of it a datasync made durable. */
  readonly extents = new Map<string, { written: number; synced: number }>();
  /** The buffers of every writev, in order (for tests of what is copied). */
  readonly writes: (readonly Buffer[])[] = [];

  /** How many bytes from the start of `path` were durable at its last datasync. */
  synced(path: string): number {
    return this.extents.get(path)?.synced ?? 0;
  }

  readonly #gates = new Map<string, { reached: () => void; opened: Promise<void>; done: () => void; when?: (buffers: readonly Buffer[]) => boolean }>();

  /**
   * Holds the next `read`, `datasync` or `writev` (of a file whose path ends with `file`; a writev
   * whose buffers pass `when`) until `release()`: `reached` resolves when one is being held, `done`
   * once it has run after the release. For tests that need ops to meet in one flush.
   */
  hold(point: "read" | "datasync" | "writev", file = "", when?: (buffers: readonly Buffer[]) => boolean): { reached: Promise<void>; release(): void; done: Promise<void> } {
    let reached!: () => void;
    let release!: () => void;
    let done!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const opened = new Promise<void>((resolve) => (release = resolve));
    const donePromise = new Promise<void>((resolve) => (done = resolve));
    this.#gates.set(point, { reached, opened, done, when });
    this.#holdFile = file;
    return { reached: reachedPromise, release, done: donePromise };
  }

  #holdFile = "";

  /** Waits at the gate of `point`, if one is set for `path`; resolves with what to call once the operation ran. */
  async pass(point: "read" | "datasync" | "writev", path: string, buffers: readonly Buffer[] = []): Promise<() => void> {
    const gate = this.#gates.get(point);
    if (gate === undefined || !path.endsWith(this.#holdFile) || gate.when?.(buffers) === false) return () => undefined;
    this.#gates.delete(point);
    gate.reached();
    await gate.opened;
    return gate.done;
  }

  fail(point: FaultPoint, code: string, times = 1): void {
    this.#faults.set(point, { code, left: times });
  }

  /** Throws the injected failure of `point`, if one is armed. */
  check(point: FaultPoint): void {
    this.counts[point]++;
    const fault = this.#faults.get(point);
    if (fault === undefined || fault.left <= 0) return;
    fault.left--;
    throw errno(fault.code);
  }

  /**
   * Without O_DSYNC by default: every write needs its datasync, which the tests count and fail.
   * `dsync: true` opens files with O_DSYNC as the store does, so small flushes are written inline
   * (fs-log-inline.ts), through `writevSync`: counted in `inlineWrites` (and `counts.writev`),
   * failed by `fail("writev", …)`, made slow by `inlineDelayMs`.
   */
  constructor(options: { readonly dsync?: boolean } = {}) {
    this.#inner = nodeLogIo({ dsync: options.dsync === true });
  }

  readonly #inner: LogIo;
  inlineWrites = 0;
  /** How long each inline write takes at least (a disk that stalls). */
  inlineDelayMs = 0;

  async open(path: string, create: boolean): Promise<LogFile> {
    this.check("open");
    return new TestFile(await this.#inner.open(path, create), this);
  }

  readdir = (path: string): Promise<string[]> => this.#inner.readdir(path);
  mkdir = (path: string): Promise<void> => this.#inner.mkdir(path);
  unlink = (path: string): Promise<void> => this.#inner.unlink(path);

  async syncDir(path: string): Promise<void> {
    this.check("syncDir");
    await this.#inner.syncDir(path);
  }
}

class TestFile implements LogFile {
  constructor(
    readonly inner: LogFile,
    readonly io: TestIo,
  ) {}

  get path(): string {
    return this.inner.path;
  }

  get syncsOnWrite(): boolean {
    return this.inner.syncsOnWrite;
  }

  async read(buffers: readonly Uint8Array[], position: number): Promise<number> {
    const done = await this.io.pass("read", this.path);
    const n = await this.inner.read(buffers, position);
    done();
    return n;
  }

  async writev(buffers: readonly Buffer[], position: number): Promise<number> {
    this.io.writes.push(buffers);
    // Held first, then failed if armed (as datasync).
    const done = await this.io.pass("writev", this.path, buffers);
    try {
      this.io.check("writev");
    } catch (error) {
      // Half of it reaches the file before the failure, as with a disk filling up.
      const all = Buffer.concat(buffers);
      await this.inner.writev([all.subarray(0, all.length >> 1)], position);
      throw error;
    }
    const n = await this.inner.writev(buffers, position);
    done();
    const extent = this.#extent();
    extent.written = Math.max(extent.written, position + n);
    return n;
  }

  get writevSync(): ((buffers: readonly Buffer[], position: number) => number) | undefined {
    const inner = this.inner.writevSync?.bind(this.inner);
    if (inner === undefined) return undefined;
    return (buffers, position) => {
      this.io.writes.push(buffers);
      this.io.inlineWrites++;
      try {
        this.io.check("writev");
      } catch (error) {
        const all = Buffer.concat(buffers);
        inner([all.subarray(0, all.length >> 1)], position);
        throw error;
      }
      for (const until = performance.now() + this.io.inlineDelayMs; performance.now() < until; );
      const n = inner(buffers, position);
      const extent = this.#extent();
      extent.written = Math.max(extent.written, position + n);
      // O_DSYNC: durable on return (and nothing else is in flight: the store writes inline only then).
      extent.synced = Math.max(extent.synced, position + n);
      return n;
    };
  }

  /** Zeroing ahead of the log (fs-log-prealloc.ts): counted in `counts.zero`, failed by `fail("zero", …)` after zeroing half the range. */
  get zeroSync(): ((position: number, length: number) => void) | undefined {
    const inner = this.inner.zeroSync?.bind(this.inner);
    if (inner === undefined) return undefined;
    return (position, length) => {
      try {
        this.io.check("zero");
      } catch (error) {
        inner(position, length >> 1);
        throw error;
      }
      inner(position, length);
    };
  }

  async datasync(): Promise<void> {
    // Held first, then failed if armed: a test may hold a sync, then make it fail.
    const done = await this.io.pass("datasync", this.path);
    this.io.check("datasync");
    const written = this.#extent().written;
    await this.inner.datasync();
    done();
    const extent = this.#extent();
    // Everything written before it started is durable; a sync that started earlier and ends later
    // (flushes in flight overlap) takes nothing back.
    extent.synced = Math.max(extent.synced, Math.min(written, extent.written));
  }

  async truncate(length: number): Promise<void> {
    this.io.check("truncate");
    await this.inner.truncate(length);
    const extent = this.#extent();
    extent.written = Math.min(extent.written, length);
    extent.synced = Math.min(extent.synced, length);
  }

  #extent(): { written: number; synced: number } {
    let extent = this.io.extents.get(this.path);
    if (extent === undefined) {
      extent = { written: 0, synced: 0 };
      this.io.extents.set(this.path, extent);
    }
    return extent;
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** [start, end, durable end] of every batch of a clean segment's bytes (zeros written ahead of the log end it). */
export function batches(buf: Buffer): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let p = SEGMENT_HEADER_BYTES; p < buf.length; ) {
    const batch = parseBatch(buf, p);
    if (typeof batch === "string") {
      if (buf.subarray(p).every((b) => b === 0)) break;
      throw new Error(`not a clean segment at ${p}: ${batch}`);
    }
    out.push([p, batch.end, batch.durableEnd]);
    p = batch.end;
  }
  return out;
}

/** A clean segment's bytes without the zeros the store wrote ahead of its log (fs-log-prealloc.ts). */
export function logBytes(buf: Buffer): Buffer {
  return buf.subarray(0, batches(buf).at(-1)?.[1] ?? SEGMENT_HEADER_BYTES);
}

/** The segment files of a data directory, oldest first. */
export async function segmentPaths(dir: string): Promise<string[]> {
  const logDir = join(dir, LOG_DIR);
  return (await readdir(logDir))
    .filter((n) => /^[0-9]{8}\.seg$/.test(n))
    .sort()
    .map((n) => join(logDir, n));
}

/** A data directory's log as bytes: segment file name → contents. */
export type LogImage = Map<string, Buffer>;

export async function readImage(dir: string): Promise<LogImage> {
  const image: LogImage = new Map();
  for (const path of await segmentPaths(dir)) image.set(path.slice(path.lastIndexOf("/") + 1), await readFile(path));
  return image;
}

/** Writes `image` as the log of a fresh data directory (any segment may be replaced by `edit`). */
export async function writeImage(dir: string, image: LogImage): Promise<void> {
  await mkdir(join(dir, LOG_DIR), { recursive: true });
  for (const [name, bytes] of image) await writeFile(join(dir, LOG_DIR, name), bytes);
}

/** Every key of `store` with its value, for comparing whole contents. */
export async function contents(store: { list(p: string): Promise<string[]>; get(k: string): Promise<Uint8Array | undefined> }): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await store.list("")) out.set(key, Buffer.from((await store.get(key)) ?? []).toString("hex"));
  return out;
}
