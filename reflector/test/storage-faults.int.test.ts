import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { CloseCode, MessageType, decodeEntries, type StreamEntry } from "@lockstep/protocol";
import type { LogFields, Logger } from "@lockstep/reflector";
import { createFsStore } from "../src/storage";
import { Harness, bytes, randomId, testAuth } from "./helpers";
import { makeReadOnlyDir, runUnprivileged, type ReadOnlyDir } from "./storage/read-only";

// Storage faults end to end: a reflector on a data directory whose data gets damaged while it is
// stopped (records stored damaged, as a faulty store would keep them, and bytes flipped in the log
// file, as a bad disk would), and one whose directory cannot be written at all.

const bin = join(__dirname, "..", "bin", "lockstep-reflector.js");
const built = join(__dirname, "..", "dist", "index.js");

/** A logger that keeps every event, to assert on what the reflector reported. */
function recordingLogger(): Logger & { readonly events: { level: string; event: string; fields: LogFields }[] } {
  const events: { level: string; event: string; fields: LogFields }[] = [];
  const record = (level: string) => (event: string, fields: LogFields = {}) => void events.push({ level, event, fields });
  return { events, info: record("info"), warn: record("warn"), error: record("error") };
}

describe("damaged session data on disk", () => {
  const h = new Harness();
  let dataDir: string;
  let sessionId: string;
  let persistentId: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "lockstep-faults-int-"));
    sessionId = randomId();
    persistentId = randomId();
  });

  afterEach(async () => {
    await h.teardown();
    await rm(dataDir, { recursive: true, force: true });
  });

  const logPrefix = (): string => `sessions/${sessionId}/log/`;
  const metaKey = (): string => `sessions/${sessionId}/meta`;

  /** Runs a session with some relayed messages on a fresh reflector, then stops it; returns the stored log. */
  async function writeSession(): Promise<StreamEntry[]> {
    await h.start({ dataDir });
    const a = await h.connect();
    await a.join({ sessionId, persistentId });
    for (let i = 1; i <= 5; i++) {
      a.send({ type: MessageType.Send, payload: bytes(20, i) });
      // Waiting for each relay makes each message a separate append, so the log has several segments.
      await a.nextOf(MessageType.Relay, (r) => r.payload[0] === i);
    }
    await h.teardown();
    return (await segments()).flatMap((s) => s.entries);
  }

  /** With the reflector stopped: the session's log segments (keys in the data directory's store), in seq order, decoded. */
  async function segments(): Promise<{ key: string; record: Uint8Array; entries: StreamEntry[] }[]> {
    const store = await createFsStore(dataDir);
    try {
      const keys = await store.list(logPrefix());
      return await Promise.all(
        keys.map(async (key) => {
          const record = (await store.get(key))!;
          return { key, record, entries: decodeEntries(record.subarray(2)) };
        }),
      );
    } finally {
      await store.close();
    }
  }

  /** With the reflector stopped: flips a byte in the value of the newest record of `key`, in the log file itself. */
  async function damageOnDisk(key: string): Promise<void> {
    const logDir = join(dataDir, "@log");
    const names = (await readdir(logDir)).filter((n) => n.endsWith(".seg")).sort();
    for (const name of names.reverse()) {
      const file = await readFile(join(logDir, name));
      const at = file.lastIndexOf(Buffer.from(key, "latin1"));
      if (at < 0) continue;
      file[at + key.length + 1]! ^= 0x20; // a byte of its value (records: header, key, value)
      await writeFile(join(logDir, name), file);
      return;
    }
    throw new Error(`no record of ${key} in ${logDir}`);
  }

  test("a torn last segment (as a store that tore a put would leave it): a join after the restart syncs every entry up to the last good one", async () => {
    const stored = await writeSession();
    const before = await segments();
    expect(before.length).toBeGreaterThan(1);
    const last = before[before.length - 1]!;
    // The segment's value cut inside its last entry, stored through the data directory's store.
    const store = await createFsStore(dataDir);
    await store.put(last.key, last.record.subarray(0, last.record.length - 1));
    await store.close();
    const kept = stored.slice(0, -1);

    await h.start({ dataDir, viewGraceMs: 60_000 }); // the view live before the damage stays away: nothing new is stamped
    const b = await h.connect();
    const { sync, viewJoin } = await b.join({ sessionId, persistentId });
    expect(sync.seq).toBe(kept.length);
    expect(sync.entries).toEqual(kept);
    expect(sync.entries.filter((e) => e.type === MessageType.Relay).length).toBeGreaterThanOrEqual(4);
    // The session continues right after the last good entry.
    expect(viewJoin.seq).toBe(kept.length + 1);
    await h.teardown();

    // What the recovery left, plus what was appended after it, loads again as it is.
    await h.start({ dataDir, viewGraceMs: 60_000 }); // the view live before the damage stays away: nothing new is stamped
    const c = await h.connect();
    const again = await c.join({ sessionId, persistentId });
    expect(again.sync.entries.slice(0, kept.length)).toEqual(kept);
    expect(again.sync.entries[kept.length]).toMatchObject({ type: MessageType.ViewJoin, seq: kept.length + 1 });
  });

  /** Joins twice and expects both refused for good with 4012, logged as storage.damaged naming `key`. */
  async function expectRefusedForGood(key: string): Promise<void> {
    const logger = recordingLogger();
    await h.start({ dataDir, logger });
    for (let attempt = 0; attempt < 2; attempt++) {
      const b = await h.connect();
      b.send({ type: MessageType.Join, sessionId, persistentId, viewId: randomId(), tps: 20, auth: testAuth(), viewData: new Uint8Array(0) });
      const error = await b.nextOf(MessageType.Error);
      expect(error.code).toBe(CloseCode.SessionDamaged);
      expect(error.message).toMatch(/stored data is damaged and cannot be recovered; do not retry/);
      expect((await b.closed).code).toBe(CloseCode.SessionDamaged);
    }
    const damaged = logger.events.filter((e) => e.event === "storage.damaged");
    expect(damaged).toHaveLength(2);
    expect(damaged[0]).toMatchObject({ level: "error", fields: { sessionId, key } });
  }

  test("a garbage meta record: joins are refused with 4012 SessionDamaged, for good", async () => {
    await writeSession();
    const store = await createFsStore(dataDir);
    await store.put(metaKey(), new TextEncoder().encode("not the meta record"));
    await store.close();
    await expectRefusedForGood(metaKey());
  });

  test.each([
    ["the meta record", (): string => `sessions/${sessionId}/meta`],
    ["the last log segment", (): string => `sessions/${sessionId}/log/`],
  ])("disk damage in %s (a byte flipped in the log file): joins are refused with 4012, never served", async (_, which) => {
    const stored = await writeSession();
    const key = which().endsWith("/") ? (await segments()).at(-1)!.key : which();
    expect(stored.length).toBeGreaterThan(5);
    await damageOnDisk(key);
    await expectRefusedForGood(key);
  });
});

describe("a data directory that cannot be written", () => {
  let ro: ReadOnlyDir;

  beforeEach(async () => {
    if (!existsSync(built)) throw new Error(`${built} is missing: run \`node scripts/build.mjs\` (npm test does) before this test`);
    ro = await makeReadOnlyDir();
  });

  afterEach(async () => {
    await ro.cleanup();
  });

  // File modes do not stop root, so these run the reflector in a child process as an unprivileged user.
  const notWritable = (dir: string): RegExp =>
    new RegExp(`cannot start: the storage at ${dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is not writable \\(EACCES\\): cannot write "lockstep/probe-[0-9a-f]{16}".*fix the permissions of the storage directory`);

  test("startReflector({ dataDir }) rejects with a ReflectorError saying what to fix", async () => {
    const script = join(ro.parent, "start.mjs");
    await writeFile(
      script,
      `const { startReflector, silentLogger } = await import(${JSON.stringify(pathToFileURL(built).href)});
       try {
         const reflector = await startReflector({ dataDir: process.argv[2], port: 0, host: "127.0.0.1", logger: silentLogger });
         await reflector.close();
         console.log(JSON.stringify({ started: true }));
       } catch (error) {
         console.log(JSON.stringify({ name: error.name, message: error.message, cause: error.cause?.name }));
       }`,
    );
    const result = await runUnprivileged([script, ro.dir]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const outcome = JSON.parse(result.stdout) as { name?: string; message?: string; cause?: string };
    expect(outcome).toMatchObject({ name: "ReflectorError", cause: "StorageError" });
    expect(outcome.message).toMatch(notWritable(ro.dir));
  });

  test("the CLI exits 1 printing the same message", async () => {
    const result = await runUnprivileged([bin, "--data-dir", ro.dir, "--port", "0", "--host", "127.0.0.1", "--log-level", "warn"]);
    expect(result.code).toBe(1);
    expect(result.stdout).not.toMatch(/listening/);
    // One JSON line (the CLI's log format when stdout is not a terminal) carrying the message.
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    const { event, fields } = JSON.parse(lines[0]!) as { event: string; fields: { message: string } };
    expect(event).toBe("start.failed");
    expect(fields.message).toMatch(new RegExp(`^lockstep-reflector: ${notWritable(ro.dir).source}`));
  });
});
