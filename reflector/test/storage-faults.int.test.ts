import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { CloseCode, MessageType, decodeEntries, type StreamEntry } from "@lockstep/protocol";
import type { LogFields, Logger } from "@lockstep/reflector";
import { encodeSegment, valueFileName } from "../src/storage/fs-names";
import { Harness, bytes, randomId, testAuth } from "./helpers";
import { makeReadOnlyDir, runUnprivileged, type ReadOnlyDir } from "./storage/read-only";

// Storage faults end to end: a reflector on a data directory whose files get damaged while it is
// stopped, and one whose directory cannot be written at all.

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

  /** The session's directory in the data dir (key segments are escaped as `fs-names.ts` says). */
  const sessionDir = (): string => join(dataDir, "sessions", encodeSegment(sessionId));

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
    return (await segmentFiles()).flatMap((s) => s.entries);
  }

  /** The log segment files of the session, in seq order, with their decoded entries. */
  async function segmentFiles(): Promise<{ path: string; entries: StreamEntry[] }[]> {
    const logDir = join(sessionDir(), "log");
    const names = (await readdir(logDir)).filter((n) => /^[0-9]{16}@$/.test(n)).sort();
    return Promise.all(
      names.map(async (name) => {
        const path = join(logDir, name);
        const record = new Uint8Array(await readFile(path));
        return { path, entries: decodeEntries(record.subarray(2)) };
      }),
    );
  }

  test("a truncated last segment: a join after the restart syncs every entry up to the last good one", async () => {
    const stored = await writeSession();
    const segments = await segmentFiles();
    expect(segments.length).toBeGreaterThan(1);
    const last = segments[segments.length - 1]!;
    // Cut the file inside its last entry, as a torn write would leave it.
    const record = await readFile(last.path);
    await writeFile(last.path, record.subarray(0, record.length - 1));
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

  test("a garbage meta file: joins are refused with 4012 SessionDamaged, for good", async () => {
    await writeSession();
    await writeFile(join(sessionDir(), valueFileName("meta")), "not the meta record");
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
    expect(damaged[0]).toMatchObject({ level: "error", fields: { sessionId, key: `sessions/${sessionId}/meta` } });
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
    expect(result.stderr).toMatch(new RegExp(`^lockstep-reflector: ${notWritable(ro.dir).source}`));
  });
});
