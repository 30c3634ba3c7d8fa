#!/usr/bin/env node
// Storage benchmark (issue 15), at the BlobStore level: appends of --value-bytes values (a session
// log segment per put, as SessionStore writes them), each "session" putting one at a time (awaiting
// each, as the reflector does before it relays) for --seconds, from 1 and from --sessions
// concurrent sessions. Stores, all measured in the same run, in alternating order per round:
//   memory   createMemoryStore(): the baseline (no I/O at all);
//   legacy   the filesystem store before issue 15: a file per key (temp write, fsync, rename, dir
//            fsync), kept in reflector/test/storage/legacy-fs-store.ts;
//   log      createFsStore() now: one append-only log, group commit (one write + one fdatasync per
//            flush, whatever the number of sessions waiting).
// Figures: appends/s (all sessions together), p50/p99 latency of one put, and ratios vs memory and
// vs legacy (medians over rounds). For the log store also puts per fdatasync. Then the index's
// memory: 10,000 idle sessions of 6 keys each (growth of the heap and ArrayBuffers after a forced
// GC: the index lives in typed arrays), and how long reopening that directory (scanning its log)
// takes. Then a snapshot's trim of 1,000 log segments through SessionStore, with deleteMany against
// a delete per key (the same store seen without deleteMany). Last, the disk's floor: one --value-bytes
// write at a time to an O_DSYNC file, appending or over zeros, from the main thread (writeSync) and
// through libuv's thread pool: no durable store on this disk can answer a lone put faster than
// that, which bounds how close the fs store's latency can come to memory's.
// The stores are bundled from source with esbuild at run time (no build needed); data goes to
// fresh directories under the OS temp dir, removed at the end.
//
//   node scripts/bench/storage.mjs [--seconds 3] [--sessions 100] [--value-bytes 1024] [--rounds 2] [--quick]
// --quick: ~5 s in all (1 round of 0.5 s per case, 2,000 idle sessions for the memory figure).
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { open as openFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { importFromSource } from "./lib/from-source.mjs";

const { values } = parseArgs({
  options: {
    seconds: { type: "string" },
    sessions: { type: "string", default: "100" },
    "value-bytes": { type: "string", default: "1024" },
    rounds: { type: "string" },
    quick: { type: "boolean", default: false },
  },
});
const QUICK = values.quick;
const SECONDS = Number(values.seconds ?? (QUICK ? "0.5" : "3"));
const SESSIONS = Number(values.sessions);
const VALUE_BYTES = Number(values["value-bytes"]);
const ROUNDS = Number(values.rounds ?? (QUICK ? "1" : "2"));
const IDLE_SESSIONS = QUICK ? 2_000 : 10_000;
const DEADLINE_MS = 30_000 + ROUNDS * 6 * (SECONDS * 1000 + 3_000) + 60_000;
setTimeout(() => {
  console.error(`storage bench: not done after ${DEADLINE_MS / 1000} s, giving up`);
  process.exit(1);
}, DEADLINE_MS).unref();

const now = () => performance.now();
const percentile = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "n/a");
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? (a / b).toFixed(2) : "n/a");
const table = (rows) => {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c] ?? "").length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c]))).join("  ")).join("\n");
};

setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc");

const work = mkdtempSync(join(tmpdir(), "lockstep-bench-storage-"));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));


const stores = await importFromSource({
  contents: [
        'export { createFsStore, fsStoreStats } from "./reflector/src/storage/fs-store";',
        'export { createMemoryStore } from "./reflector/src/storage/memory-store";',
        'export { createLegacyFsStore } from "./reflector/test/storage/legacy-fs-store";',
        'export { SessionStore } from "./reflector/src/storage/session-store";',
        'export { MessageType } from "@lockstep/protocol";',
      ].join("\n"),
});
let dirs = 0;
const freshDir = () => join(work, `d${dirs++}`);
const open = {
  memory: async () => stores.createMemoryStore(),
  legacy: async () => stores.createLegacyFsStore(freshDir()),
  log: async () => stores.createFsStore(freshDir()),
};

/** `sessions` loops, each putting one value at a time for SECONDS; latencies in ms. */
async function appends(kind, sessions) {
  const store = await open[kind]();
  const value = new Uint8Array(VALUE_BYTES).map((_, i) => (i * 31) & 0xff);
  const latencies = [];
  const stats0 = kind === "log" ? stores.fsStoreStats(store) : undefined;
  const end = now() + SECONDS * 1000;
  const started = now();
  await Promise.all(
    Array.from({ length: sessions }, async (_, s) => {
      for (let seq = 1; now() < end; seq++) {
        const t = now();
        await store.put(`sessions/S${s}/log/${String(seq).padStart(16, "0")}`, value);
        latencies.push(now() - t);
      }
    }),
  );
  const elapsed = (now() - started) / 1000;
  const stats1 = kind === "log" ? stores.fsStoreStats(store) : undefined;
  await store.close();
  latencies.sort((a, b) => a - b);
  return {
    opsPerSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    putsPerSync: stats1 ? latencies.length / (stats1.flushes - stats0.flushes) : undefined,
  };
}

const KINDS = ["memory", "legacy", "log"];
const SHAPES = [1, SESSIONS];
const results = new Map(); // `${kind} ${sessions}` → [result per round]
for (let round = 0; round < ROUNDS; round++) {
  for (const sessions of SHAPES) {
    // Rotate the order per round so no store always runs first (or last, on a warmer disk).
    const order = KINDS.map((_, i) => KINDS[(i + round) % KINDS.length]);
    for (const kind of order) {
      const r = await appends(kind, sessions);
      const key = `${kind} ${sessions}`;
      results.set(key, [...(results.get(key) ?? []), r]);
    }
  }
}

const med = (key, field) => median(results.get(key).map((r) => r[field]));
console.log(
  `BlobStore appends of ${VALUE_BYTES}-byte values, one put at a time per session, ${SECONDS} s per case, median of ${ROUNDS} round(s); ${new Date().toISOString()}\n`,
);
const rows = [["store", "sessions", "appends/s", "p50 ms", "p99 ms", "÷ memory", "÷ legacy", "puts/fdatasync"]];
for (const sessions of SHAPES) {
  for (const kind of KINDS) {
    const key = `${kind} ${sessions}`;
    const ops = med(key, "opsPerSecond");
    rows.push([
      kind,
      String(sessions),
      fmt(ops),
      fmt(med(key, "p50"), 3),
      fmt(med(key, "p99"), 3),
      ratio(ops, med(`memory ${sessions}`, "opsPerSecond")),
      kind === "memory" ? "" : ratio(ops, med(`legacy ${sessions}`, "opsPerSecond")),
      kind === "log" ? fmt(med(key, "putsPerSync"), 1) : "",
    ]);
  }
}
console.log(table(rows));
console.log("(÷ columns: appends/s of the store over that of memory / of legacy, same shape, same run)\n");

// The index's memory: idle sessions of 6 keys (meta, snapshot, clock, persisted, a log segment, activity).
{
  const dir = freshDir();
  const ids = Array.from({ length: IDLE_SESSIONS }, (_, i) => `${i.toString(36).padStart(4, "0")}Ab_${(i * 7919).toString(36)}xYz012345678`.slice(0, 22));
  const keysOf = (id) => [
    `sessions/${id}/meta`,
    `sessions/${id}/snapshot`,
    `sessions/${id}/clock`,
    `sessions/${id}/persisted`,
    `sessions/${id}/log/${String(1 + (id.length * 977) % 90000).padStart(16, "0")}`,
    `activity/${id}`,
  ];
  const writer = await stores.createFsStore(dir);
  const small = new Uint8Array(32);
  for (let i = 0; i < ids.length; i += 500) await Promise.all(ids.slice(i, i + 500).flatMap((id) => keysOf(id).map((k) => writer.put(k, small))));
  await writer.close();
  collectGarbage();
  collectGarbage();
  // The index is typed arrays off the heap: their ArrayBuffers count as much as the heap does.
  const used = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  const before = used();
  const t = now();
  const reader = await stores.createFsStore(dir);
  const reopenMs = now() - t;
  collectGarbage();
  collectGarbage();
  const grown = used() - before;
  const keys = stores.fsStoreStats(reader).keys;
  const listed = (await reader.list("activity/")).length;
  await reader.close();
  console.log(
    `index: ${fmt(IDLE_SESSIONS)} idle sessions, ${fmt(keys)} keys (${fmt(listed)} activity records listed): heap and ArrayBuffers +${fmt(grown / 1048576, 1)} MiB after reopening = ${fmt(grown / keys)} bytes/key; reopening (scanning the log) took ${fmt(reopenMs)} ms`,
  );
}

// A snapshot's trim: SessionStore.putSnapshot after 1,000 one-entry segments (2,000 messages/s
// with a snapshot every 1,000), deleting them with one deleteMany, against the same store seen
// without deleteMany (a delete per key, issued at once as orderedWrites allows: how SessionStore
// trimmed before). Wall time of putSnapshot, and the longest the event loop was held meanwhile
// (a setImmediate loop's longest gap): what every other session on the reflector waits.
{
  const TRIMS = QUICK ? 3 : 12;
  const perKey = (store) => ({
    orderedWrites: store.orderedWrites,
    get: (k) => store.get(k),
    put: (k, v) => store.put(k, v),
    delete: (k) => store.delete(k),
    list: (p) => store.list(p),
    close: () => store.close(),
  });
  const trims = async (kind, many) => {
    const blob = await open[kind]();
    const sessions = new stores.SessionStore(many ? blob : perKey(blob));
    const id = "T".repeat(43);
    await sessions.create({ sessionId: id, persistentId: "p".repeat(43), tps: 20, verifier: new Uint8Array(32), check: new Uint8Array(16), createdAt: 1 });
    const payload = new Uint8Array(100);
    const wall = [];
    const held = [];
    let seq = 0;
    for (let round = 0; round < TRIMS; round++) {
      const inFlight = [];
      for (let i = 0; i < 1000; i++) {
        seq++;
        inFlight.push(sessions.appendEntries(id, [{ type: stores.MessageType.Relay, seq, time: seq, payload }]));
        if (inFlight.length >= 4) await inFlight.shift();
      }
      await Promise.all(inFlight);
      let longest = 0;
      let last = now();
      let spinning = true;
      const spin = () => {
        const t = now();
        longest = Math.max(longest, t - last);
        last = t;
        if (spinning) setImmediate(spin);
      };
      setImmediate(spin);
      const t = now();
      await sessions.putSnapshot(id, { seq, time: seq, bytes: new Uint8Array(4096), views: [] });
      wall.push(now() - t);
      spinning = false;
      // Only the memory store answers without a turn of the loop: then the whole call held it.
      held.push(Math.max(longest, now() - last));
    }
    await blob.close();
    return { wall: median(wall), held: median(held) };
  };
  const rows = [["store", "trim", "putSnapshot ms", "loop held ms", "÷ per key (held)"]];
  for (const kind of ["memory", "log"]) {
    const [keyed, many] = [await trims(kind, false), await trims(kind, true)];
    rows.push([kind, "a delete per key", fmt(keyed.wall, 3), fmt(keyed.held, 3), ""]);
    rows.push([kind, "deleteMany", fmt(many.wall, 3), fmt(many.held, 3), ratio(many.held, keyed.held)]);
  }
  console.log(`snapshot trim of 1,000 log segments (median of ${TRIMS}):\n${table(rows)}\n`);
}

// The disk's floor for one durable write (see the header), as many writes as the single-session case
// made: appending (each write makes the file longer, so its sync commits the file system's journal
// too) and over zeros written beforehand (data alone: what the log store does, fs-log-prealloc.ts),
// each from the main thread (writeSync: the log store's inline writes, fs-log-inline.ts) and
// through libuv's thread pool; the four cases alternate, twice each.
{
  const value = Buffer.alloc(VALUE_BYTES, 7);
  const count = Math.max(200, Math.min(5_000, Math.round(med("log 1", "opsPerSecond") * SECONDS)));
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_DSYNC;
  const cases = [
    ["appending", "writeSync"],
    ["over zeros", "writeSync"],
    ["appending", "thread pool"],
    ["over zeros", "thread pool"],
  ];
  const samples = new Map(cases.map((c) => [c.join(" / "), []]));
  for (let pass = 0; pass < 2; pass++) {
    for (const [space, how] of pass === 0 ? cases : [...cases].reverse()) {
      const path = join(work, `floor-${pass}-${space.replace(" ", "-")}-${how.replace(" ", "-")}`);
      if (space === "over zeros") {
        const z = openSync(path, flags);
        writeSync(z, Buffer.alloc(count * value.length));
        closeSync(z);
      }
      const times = samples.get(`${space} / ${how}`);
      if (how === "writeSync") {
        const fd = openSync(path, flags);
        for (let i = 0; i < count; i++) {
          const t = now();
          writeSync(fd, value, 0, value.length, i * value.length);
          times.push(now() - t);
        }
        closeSync(fd);
      } else {
        const handle = await openFile(path, flags);
        for (let i = 0; i < count; i++) {
          const t = now();
          await handle.write(value, 0, value.length, i * value.length);
          times.push(now() - t);
        }
        await handle.close();
      }
      rmSync(path, { force: true });
    }
  }
  const stat = (key, p) => percentile([...samples.get(key)].sort((a, b) => a - b), p);
  const rows = [["writes", "how", "p50 ms", "p99 ms", "p50 ÷ appending"]];
  for (const [space, how] of cases) {
    const key = `${space} / ${how}`;
    const base = `appending / ${how}`;
    rows.push([space, how, fmt(stat(key, 50), 3), fmt(stat(key, 99), 3), space === "appending" ? "" : ratio(stat(key, 50), stat(base, 50))]);
  }
  console.log(`disk floor, ${fmt(count)} lone ${VALUE_BYTES}-byte O_DSYNC writes per case, twice each (log store, 1 session: p50 ${fmt(med("log 1", "p50"), 3)} ms):\n${table(rows)}`);
}
process.exit(0);
