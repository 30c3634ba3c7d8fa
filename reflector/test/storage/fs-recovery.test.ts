import { readFileSync, readdirSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SessionDamagedError, createFsStore, isDamaged } from "../../src/storage";
import { BATCH_HEADER_BYTES, RECORD_HEADER_BYTES } from "../../src/storage/fs-log-format";
import { LOG_DIR, openFsStore, type FsStore } from "../../src/storage/fs-store";
import { createRng, seedHint, testRng } from "@lockstep/test-support";
import { batches, contents, logBytes, newDir, readImage, removeDir, segmentPaths, writeImage, TestIo, type LogImage } from "./fs-test-io";

// Opening the log after crashes and damage: a torn tail is cut, damage elsewhere never loses the
// good records after it and is never served as good data (fs-log-recovery.ts says what is done).

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

/** The one segment of `dir`, its path and bytes. */
async function onlySegment(dir: string): Promise<{ path: string; buf: Buffer }> {
  const paths = await segmentPaths(dir);
  expect(paths).toHaveLength(1);
  return { path: paths[0]!, buf: logBytes(await readFile(paths[0]!)) };
}

function recordingLogger(): { events: { level: string; event: string; fields: Record<string, unknown> }[]; info(e: string, f?: object): void; warn(e: string, f?: object): void; error(e: string, f?: object): void } {
  const events: { level: string; event: string; fields: Record<string, unknown> }[] = [];
  const at = (level: string) => (event: string, fields: object = {}) => void events.push({ level, event, fields: fields as Record<string, unknown> });
  return { events, info: at("info"), warn: at("warn"), error: at("error") };
}

describe("fs store recovery", () => {
  let dir: string;
  let copy: string;

  beforeEach(async () => {
    dir = await newDir("fs-recovery");
    copy = await newDir("fs-recovery-copy");
  });

  afterEach(async () => {
    await removeDir(dir);
    await removeDir(copy);
  });

  /** Opens `image` as a fresh data directory (replacing the previous copy). */
  async function openImage(image: LogImage, options = {}): Promise<FsStore> {
    await removeDir(copy);
    await writeImage(copy, image);
    return createFsStore(copy, options);
  }

  test("a torn tail, cut at every byte of the last record: earlier records stay, the torn one is gone, and new writes survive", async () => {
    const rng = testRng("fs torn tail");
    const store = await createFsStore(dir);
    const values = Array.from({ length: 5 }, (_, i) => rng.bytes(40 + i));
    for (const [i, value] of values.entries()) await store.put(`k/${i}`, value); // one batch each
    await store.close();
    const { path, buf } = await onlySegment(dir);
    const name = path.slice(path.lastIndexOf("/") + 1);
    const [start, end] = batches(buf).at(-1)!;
    expect(end).toBe(buf.length);
    for (let cut = start; cut < end; cut++) {
      const torn = await openImage(new Map([[name, buf.subarray(0, cut)]]));
      expect(await torn.list("")).toEqual(["k/0", "k/1", "k/2", "k/3"]);
      for (let i = 0; i < 4; i++) expect(await torn.get(`k/${i}`)).toEqual(values[i]);
      expect(torn.opened.truncated).toEqual(cut === start ? undefined : { segment: join(copy, LOG_DIR, name), offset: start, bytes: cut - start });
      expect(torn.opened.damage).toEqual([]);
      await torn.put("after", bytes(cut & 0xff));
      await torn.close();
      const again = await createFsStore(copy);
      expect(await again.list("")).toEqual(["after", "k/0", "k/1", "k/2", "k/3"]);
      expect(await again.get("after")).toEqual(bytes(cut & 0xff));
      expect(again.opened.truncated).toBeUndefined();
      await again.close();
    }
  });

  /** Three batches: x=old | x=new, sessions/S/meta, y | z. Returns the segment and where things are. */
  async function threeBatches(): Promise<{ name: string; buf: Buffer; second: [number, number, number] }> {
    const store = await createFsStore(dir);
    await store.put("x", bytes(1, 1, 1));
    await Promise.all([store.put("x", bytes(2, 2, 2, 2)), store.put("sessions/S/meta", bytes(7, 7, 7, 7, 7)), store.put("y", bytes(3))]);
    await store.put("z", bytes(4));
    await store.close();
    const { path, buf } = await onlySegment(dir);
    const all = batches(buf);
    expect(all).toHaveLength(3);
    return { name: path.slice(path.lastIndexOf("/") + 1), buf, second: all[1]! };
  }

  test("a flipped byte in a value in the middle: later records survive, the key reads as damaged until written again", async () => {
    const { name, buf, second } = await threeBatches();
    // The second batch's second record is sessions/S/meta: flip a byte of its value.
    const metaRecord = second[0] + BATCH_HEADER_BYTES + RECORD_HEADER_BYTES + 1 + 4;
    const valueAt = metaRecord + RECORD_HEADER_BYTES + "sessions/S/meta".length + 2;
    const damaged = Buffer.from(buf);
    damaged[valueAt]! ^= 0x10;
    const logger = recordingLogger();
    const store = await openImage(new Map([[name, damaged]]), { logger });
    expect(await store.get("z")).toEqual(bytes(4));
    expect(await store.get("y")).toEqual(bytes(3));
    expect(await store.get("x")).toEqual(bytes(2, 2, 2, 2));
    expect(await store.list("")).toEqual(["sessions/S/meta", "x", "y", "z"]);
    const error = await store.get("sessions/S/meta").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionDamagedError);
    expect(isDamaged(error)).toBe(true);
    expect(error).toMatchObject({ key: "sessions/S/meta", sessionId: "S" });
    expect((error as Error).message).toMatch(/stored record "sessions\/S\/meta" is corrupt: .*offset \d+.*checksum does not match.*restore its keys/);
    expect(store.opened.damage).toEqual([
      { segment: join(copy, LOG_DIR, name), offset: second[0], unreadableBytes: 0, reason: "a batch's checksum does not match", salvagedRecords: 2, damagedKeys: ["sessions/S/meta"] },
    ]);
    expect(logger.events).toEqual([{ level: "error", event: "storage.log.damaged", fields: expect.objectContaining({ dir: copy, damagedKeys: ["sessions/S/meta"] }) }]);
    // Writing the key again repairs it, and the repair is what a reopen reads.
    await store.put("sessions/S/meta", bytes(8));
    expect(await store.get("sessions/S/meta")).toEqual(bytes(8));
    await store.close();
    const reopened = await createFsStore(copy);
    expect(await reopened.get("sessions/S/meta")).toEqual(bytes(8));
    expect(reopened.opened.damage).toMatchObject([{ offset: second[0], damagedKeys: [] }]);
    await reopened.delete("sessions/S/meta");
    await reopened.close();
  });

  test("a flipped byte in a record's header: later records survive; the key reads as its previous state and the bytes are reported", async () => {
    const { name, buf, second } = await threeBatches();
    const xRecord = second[0] + BATCH_HEADER_BYTES; // x=new, the batch's first record
    const damaged = Buffer.from(buf);
    damaged[xRecord + RECORD_HEADER_BYTES]! ^= 0x01; // its key: the header check covers it
    const store = await openImage(new Map([[name, damaged]]));
    expect(await contents(store)).toEqual(
      new Map([
        ["sessions/S/meta", "0707070707"],
        ["x", "010101"],
        ["y", "03"],
        ["z", "04"],
      ]),
    );
    expect(store.opened.damage).toEqual([
      {
        segment: join(copy, LOG_DIR, name),
        offset: second[0],
        unreadableBytes: RECORD_HEADER_BYTES + 1 + 4,
        reason: "a batch's checksum does not match",
        salvagedRecords: 2,
        damagedKeys: [],
      },
    ]);
    await store.close();
  });

  test("a flipped byte in a batch header: every record of the batch is kept, the header's bytes reported", async () => {
    const { name, buf, second } = await threeBatches();
    const damaged = Buffer.from(buf);
    damaged[second[0] + 9]! ^= 0xff; // the body length
    const store = await openImage(new Map([[name, damaged]]));
    expect(await contents(store)).toEqual(
      new Map([
        ["sessions/S/meta", "0707070707"],
        ["x", "02020202"],
        ["y", "03"],
        ["z", "04"],
      ]),
    );
    expect(store.opened.damage).toMatchObject([{ offset: second[0], unreadableBytes: BATCH_HEADER_BYTES, reason: "a batch header's checksum does not match", salvagedRecords: 3 }]);
    await store.close();
  });

  test("damage in a segment before the newest is reported, never cut; the newest segment takes the writes", async () => {
    const store = await createFsStore(dir, { segmentBytes: 1024, compactBelow: 0 });
    for (let i = 0; i < 30; i++) await store.put(`k/${String(i).padStart(2, "0")}`, new Uint8Array(60).fill(i));
    await store.close();
    const image = await readImage(dir);
    const [firstName, first] = [...image][0]!;
    expect(image.size).toBeGreaterThan(2);
    // Its last batch loses its end, as if the disk had dropped the tail of the file.
    const lost = batches(first).at(-1)!;
    image.set(firstName, first.subarray(0, lost[1] - 3));
    const damaged = await openImage(image, { segmentBytes: 1024, compactBelow: 0 });
    expect(damaged.opened.truncated).toBeUndefined();
    expect(damaged.opened.damage).toMatchObject([{ offset: lost[0], reason: "the file ends inside a batch" }]);
    expect((await damaged.list("")).length).toBe(29); // the record with the lost end is unreadable
    await damaged.put("new", bytes(1));
    await damaged.close();
    expect(readFileSync(join(copy, LOG_DIR, firstName)).length).toBe(lost[1] - 3);
  });

  test("damage in the very last batch reads as a torn write: that batch is cut (limitation: it cannot be told apart)", async () => {
    const { name, buf } = await threeBatches();
    const damaged = Buffer.from(buf);
    damaged[damaged.length - 1]! ^= 0x01; // z's value
    const store = await openImage(new Map([[name, damaged]]));
    expect(await store.list("")).toEqual(["sessions/S/meta", "x", "y"]);
    expect(store.opened.truncated).toMatchObject({ offset: batches(buf)[2]![0] });
    await store.close();
  });

  test("a segment larger than the scan window, with a batch larger than it: damage and a torn tail past the first megabytes are found at their offsets", async () => {
    const rng = testRng("fs large segment");
    const store = await createFsStore(dir);
    const values = new Map<string, Uint8Array>();
    // Compared as bytes: the matchers' deep equality takes seconds over megabytes.
    const reads = async (store: FsStore, key: string): Promise<boolean> => {
      const got = await store.get(key);
      return got !== undefined && Buffer.from(got).equals(values.get(key)!);
    };
    const put = async (key: string, value: Uint8Array): Promise<void> => {
      values.set(key, value);
      await store.put(key, value); // one batch each
    };
    for (let i = 0; i < 24; i++) await put(`a/${String(i).padStart(2, "0")}`, rng.bytes(64 * 1024));
    await put("big", rng.bytes(3 * 1024 * 1024 + 17)); // more than the 1 MiB window
    for (let i = 0; i < 24; i++) await put(`b/${String(i).padStart(2, "0")}`, rng.bytes(64 * 1024));
    await store.close();
    const { path, buf } = await onlySegment(dir);
    const name = path.slice(path.lastIndexOf("/") + 1);
    expect(buf.length).toBeGreaterThan(6 * 1024 * 1024);
    const all = batches(buf);

    // Clean: every value reads back as written.
    const clean = await openImage(new Map([[name, buf]]));
    expect(clean.opened).toMatchObject({ damage: [], truncated: undefined });
    for (const key of values.keys()) expect([key, await reads(clean, key)]).toEqual([key, true]);
    await clean.close();

    // A flipped value byte in b/05's batch (past the big one): reported there, the rest survives.
    const [b5Start] = all[24 + 1 + 5]!;
    const damaged = Buffer.from(buf);
    damaged[b5Start + BATCH_HEADER_BYTES + RECORD_HEADER_BYTES + "b/05".length + 100]! ^= 0x04;
    const hurt = await openImage(new Map([[name, damaged]]));
    expect(hurt.opened.truncated).toBeUndefined();
    expect(hurt.opened.damage).toEqual([
      { segment: join(copy, LOG_DIR, name), offset: b5Start, unreadableBytes: 0, reason: "a batch's checksum does not match", salvagedRecords: 0, damagedKeys: ["b/05"] },
    ]);
    await expect(hurt.get("b/05")).rejects.toThrow(SessionDamagedError);
    for (const key of values.keys()) if (key !== "b/05") expect([key, await reads(hurt, key)]).toEqual([key, true]);
    await hurt.close();

    // The last batch torn: cut back at its start, everything before it kept.
    const [lastStart, lastEnd] = all.at(-1)!;
    const torn = await openImage(new Map([[name, buf.subarray(0, lastEnd - 5)]]));
    expect(torn.opened.truncated).toEqual({ segment: join(copy, LOG_DIR, name), offset: lastStart, bytes: lastEnd - 5 - lastStart });
    expect(await torn.get("b/23")).toBeUndefined();
    expect(await reads(torn, "big")).toBe(true);
    expect(await reads(torn, "b/22")).toBe(true);
    await torn.close();
  });

  test("a segment created by a roll just before a crash (no header yet) is removed", async () => {
    const store = await createFsStore(dir);
    await store.put("k", bytes(1));
    await store.close();
    await writeFile(join(dir, LOG_DIR, "00000002.seg"), Buffer.from([0x4c, 0x53])); // a torn header
    const reopened = await createFsStore(dir);
    expect(reopened.opened.truncated).toMatchObject({ segment: join(dir, LOG_DIR, "00000002.seg"), offset: 0, bytes: 2 });
    expect(await reopened.get("k")).toEqual(bytes(1));
    await reopened.put("k2", bytes(2));
    await reopened.close();
    const again = await createFsStore(dir);
    expect(await again.list("")).toEqual(["k", "k2"]);
    await again.close();
  });

  test("bytes that change on disk after opening are never served: the get rejects as damaged", async () => {
    const store = await createFsStore(dir);
    await store.put("sessions/S/snapshot", new Uint8Array(100).fill(5));
    const { path, buf } = await onlySegment(dir);
    buf[buf.length - 50]! ^= 0x04;
    await writeFile(path, buf);
    await expect(store.get("sessions/S/snapshot")).rejects.toThrow(/stored record "sessions\/S\/snapshot" is corrupt: .*no longer checks/);
    await store.close();
  });
});

describe("fs store: crash images", () => {
  // Random ops from concurrent lanes (each lane owns its keys and runs its ops one at a time, like
  // a session), on tiny segments with compaction. At random moments the log's files are copied as
  // they are right then (ops in flight, compaction running): a crash image. Each image, opened,
  // must hold every op resolved before it was taken (or the op in flight of that key, which may
  // or may not have landed); and so must the image cut at random offsets past what was synced.
  test("every resolved op survives every crash image and every cut past its synced end", async () => {
    const rng = testRng("fs crash images");
    const dir = await newDir("fs-crash");
    const scratch = await newDir("fs-crash-copy");
    const options = { segmentBytes: 2048, compactBelow: 0.6 };
    const io = new TestIo();
    const store = await openFsStore(dir, options, io);
    const logDir = join(dir, LOG_DIR);
    type State = string | null; // hex value, or deleted
    const resolved = new Map<string, State>();
    const inFlight = new Map<string, State>();
    const images: { files: [string, Buffer][]; synced: number; resolved: Map<string, State>; inFlight: Map<string, State> }[] = [];
    const takeImage = (): void => {
      // Oldest first: compaction unlinks an old segment only once the copies in a newer one are synced.
      const names = readdirSync(logDir).filter((n) => n.endsWith(".seg")).sort();
      const files: [string, Buffer][] = [];
      for (const n of names) {
        try {
          files.push([n, readFileSync(join(logDir, n))]);
        } catch {
          // unlinked by compaction meanwhile: as a crash right after the unlink would find it
        }
      }
      const newest = files.at(-1);
      images.push({ files, synced: newest === undefined ? 0 : io.synced(join(logDir, newest[0])), resolved: new Map(resolved), inFlight: new Map(inFlight) });
    };
    const lane = async (l: number, r: ReturnType<typeof createRng>): Promise<void> => {
      for (let i = 0; i < 60; i++) {
        const key = `sessions/L${l}/${r.pick(["meta", "snapshot", "log/0000000000000001", "log/0000000000000002"])}`;
        const value = r.bool(0.25) ? null : Buffer.from(r.bytes(r.int(400))).toString("hex");
        inFlight.set(key, value);
        await (value === null ? store.delete(key) : store.put(key, Buffer.from(value, "hex")));
        inFlight.delete(key);
        resolved.set(key, value);
        if (r.bool(0.15)) takeImage();
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, l) => lane(l, rng.fork(`lane ${l}`))));
    await store.close();
    expect(images.length).toBeGreaterThan(20);

    let checked = 0;
    try {
      for (const image of images) {
        const cuts = [undefined, ...Array.from({ length: 3 }, () => rng.next())];
        for (const cut of cuts) {
          const files = new Map(image.files);
          const newest = image.files.at(-1);
          if (cut !== undefined && newest !== undefined) {
            // Cut the newest segment anywhere past what its last datasync made durable: what a crash may lose.
            const [name, buf] = newest;
            const from = Math.min(image.synced, buf.length);
            files.set(name, buf.subarray(0, from + Math.floor(cut * (buf.length - from + 1))));
          }
          await removeDir(scratch);
          await writeImage(scratch, files);
          const reopened = await createFsStore(scratch, options);
          expect(reopened.opened.damage).toEqual([]);
          const got = await contents(reopened);
          for (const key of new Set([...image.resolved.keys(), ...image.inFlight.keys()])) {
            const allowed = [image.resolved.get(key) ?? null, ...(image.inFlight.has(key) ? [image.inFlight.get(key)!] : [])];
            expect({ key, state: allowed.includes(got.get(key) ?? null) }).toEqual({ key, state: true });
          }
          for (const key of got.keys()) expect(image.resolved.has(key) || image.inFlight.has(key)).toBe(true);
          await reopened.close();
          checked++;
        }
      }
    } catch (error) {
      throw new Error(`${(error as Error).message}\n(${seedHint()})`, { cause: error });
    } finally {
      await removeDir(dir);
      await removeDir(scratch);
    }
    expect(checked).toBe(images.length * 4);
    expect(io.counts.open).toBeGreaterThan(3); // it rolled, so images span segments
  }, 120_000);
});
