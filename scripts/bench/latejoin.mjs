#!/usr/bin/env node
// Late-join benchmark (issue 15): a joiner of a session whose reflector holds a ~10 MB snapshot
// plus --messages relayed messages after it. Figure: time from Session.join() to the joiner's
// model being live (Session.join resolved: its own view-join processed, so every message before it
// applied), median of --joins; target < 300 ms.
//   - one reflector in this process (memory store), on 127.0.0.1; two sessions of the same app,
//     each built by a first client: a whiteboard of --items item models (numbers, strings, arrays,
//     Maps, references between models; ~10 MB serialized), a snapshot of it stored, then
//     --messages messages (one stream entry each) after it;
//   - "v2": the snapshot as this release uploads it (a version-2 envelope, AES-256-GCM);
//   - "v1", the baseline: the same, but the first client is an earlier release: its socket
//     re-seals its snapshot upload as a version-1 envelope (tweetnacl secretbox) on the way out,
//     so the joiner decrypts it with tweetnacl (openBulk's version-1 path). Nothing else differs.
// Joins alternate between the two sessions (one warm-up each first). Each joiner's state is
// compared byte for byte with the first client's at a common point (exit code 1 if it differs),
// and it must have applied all the messages.
// Breakdown per join (from timestamps in this process): join start → Sync frame received (ids,
// keys, connect, the reflector's Sync, transfer); Sync received → first message replayed (decode,
// decrypt, restore the snapshot; the bench's model notes the time of its first replayed message,
// outside the replicated state); first message → live (replay of the messages, root view).
// Decryption alone is also timed on the very envelope the joiner got. PBKDF2 is not in the join
// figure: the joiner runs in the process that derived the same key for the first client (cached);
// a joiner on another machine pays it once (printed for scale).
// The client's crypto module is bundled from source with esbuild (to re-seal as v1 and to time
// decryption); the sessions use the built packages: run `node scripts/build.mjs` first.
//
//   node scripts/build.mjs && node scripts/bench/latejoin.mjs [--items 9200] [--messages 10000] [--joins 5] [--quick]
// --quick  the short form for CI: ~2 MB snapshot, 2,000 messages, 2 joins each (a few seconds).
// Exit code 1 if a joiner differs from the first client or missed messages (never on timing).
// Bounded in time (it gives up after a deadline) and stops by itself; loopback only.
import { Model, Session, View } from "@lockstep/client";
import { DEFAULT_LIMITS, MessageType, decodeClientMessage, decodeServerMessage, encodeClientMessage } from "@lockstep/protocol";
import { startReflector } from "@lockstep/reflector";
import { createDecipheriv } from "node:crypto";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { WebSocket } from "ws";
import { importFromSource } from "./lib/from-source.mjs";

const { values } = parseArgs({
  options: {
    items: { type: "string", default: "9200" },
    messages: { type: "string", default: "10000" },
    joins: { type: "string", default: "5" },
    quick: { type: "boolean", default: false },
  },
});
const ITEMS = values.quick ? 1840 : Number(values.items);
const MESSAGES = values.quick ? 2000 : Number(values.messages);
const JOINS = values.quick ? 2 : Number(values.joins);
for (const [flag, n, min] of [["--items", ITEMS, 4], ["--messages", MESSAGES, 1], ["--joins", JOINS, 1]]) {
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`latejoin bench: ${flag} must be an integer ≥ ${min}`);
    process.exit(2);
  }
}
const GROW_EVENTS = 4;
const ITEMS_PER_GROW = Math.ceil(ITEMS / GROW_EVENTS);
const PASSWORD = "bench";
const APP = "bench.latejoin";
const VARIANTS = ["v2", "v1"];
const DEADLINE_MS = 240_000;
setTimeout(() => {
  console.error(`latejoin bench: not done after ${DEADLINE_MS / 1000} s, giving up`);
  process.exit(1);
}, DEADLINE_MS).unref();

setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc");
const now = () => performance.now();
const yieldTurn = () => new Promise((resolve) => setImmediate(resolve));
const sameBytes = (a, b) => a.length === b.length && Buffer.compare(a, b) === 0;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const c = await importFromSource("packages/client/src/session/crypto.ts");

// ---------------------------------------------------------------- the app's models
// A shared whiteboard: players own items (strokes with points, text, a Map of metadata) that link
// to other items. `poke` is the message replayed after the snapshot.
const COLORS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6"];
const KINDS = ["stroke", "sticky", "shape", "arrow", "text"];
const WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua".split(" ");
const POINTS = 128;
const ITEMS_PER_PLAYER = 25;
/** Bench-only instrumentation, outside the replicated state: when the armed joiner replays its first message. */
const mark = { armed: false, first: 0 };

class Player extends Model {
  init({ index }) {
    this.name = `player-${index}`;
    this.color = COLORS[index % COLORS.length];
    this.items = [];
  }
}
Player.register("LateJoinBench.Player");

class Item extends Model {
  init({ index, owner }) {
    const r = () => this.random();
    this.index = index;
    this.kind = KINDS[index % KINDS.length];
    this.owner = owner;
    this.x = r() * 4000;
    this.y = r() * 3000;
    this.color = COLORS[Math.floor(r() * COLORS.length)];
    const words = [];
    for (let i = 12 + Math.floor(r() * 24); i > 0; i--) words.push(WORDS[Math.floor(r() * WORDS.length)]);
    this.text = words.join(" ");
    this.points = [];
    let px = Math.floor(r() * 4000);
    let py = Math.floor(r() * 3000);
    for (let i = 0; i < POINTS; i++) this.points.push((px += Math.floor(r() * 21) - 10), (py += Math.floor(r() * 21) - 10));
    this.meta = new Map([
      ["created", this.now()],
      ["z", index],
      ["locked", r() < 0.1],
      ["font", "Inter"],
      ["author", owner.name],
    ]);
    this.links = [];
    this.version = 0;
    owner.items.push(this);
  }
  poke({ dx, dy, n }) {
    this.x += dx;
    this.y += dy;
    this.version++;
    this.meta.set("touched", n);
  }
}
Item.register("LateJoinBench.Item");

class Board extends Model {
  init() {
    this.items = [];
    this.players = [];
    this.pokes = 0;
    this.pads = 0;
    this.checks = 0;
    this.subscribe("bench", "grow", this.grow);
    this.subscribe("bench", "poke", this.poke);
    this.subscribe("bench", "pad", this.pad);
    this.subscribe("bench", "check", this.check);
  }
  grow({ count }) {
    for (let n = 0; n < count; n++) {
      const index = this.items.length;
      if (index % ITEMS_PER_PLAYER === 0) this.players.push(Player.create({ index: this.players.length }));
      const item = Item.create({ index, owner: this.players[this.players.length - 1] });
      for (let l = 0; l < 3 && index > 0; l++) item.links.push(this.items[Math.floor(this.random() * index)]);
      this.items.push(item);
    }
  }
  poke(data) {
    if (mark.armed && mark.first === 0) mark.first = performance.now();
    this.items[data.i % this.items.length]?.poke(data);
    this.pokes++;
  }
  pad() {
    this.pads++;
  }
  check() {
    this.checks++;
  }
}
Board.register("LateJoinBench.Board");

// ---------------------------------------------------------------- sockets
/** The part of a ws WebSocket the client uses, with hooks on the frames each way. */
class HookedSocket {
  constructor(url, { onFrame, rewriteSend } = {}) {
    this.ws = new WebSocket(url, { maxPayload: 1024 * 1024 * 1024 });
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    this.rewriteSend = rewriteSend;
    this.ws.onopen = (ev) => this.onopen?.(ev);
    this.ws.onmessage = (ev) => {
      onFrame?.(ev.data);
      this.onmessage?.(ev);
    };
    this.ws.onclose = (ev) => this.onclose?.(ev);
    this.ws.onerror = (ev) => this.onerror?.(ev);
  }
  get binaryType() {
    return this.ws.binaryType;
  }
  set binaryType(type) {
    this.ws.binaryType = type;
  }
  get readyState() {
    return this.ws.readyState;
  }
  send(data) {
    for (const frame of this.rewriteSend ? this.rewriteSend(data) : [data]) this.ws.send(frame);
  }
  close(code, reason) {
    this.ws.close(code, reason);
  }
}

/** A joiner's socket: the time and bytes of the first frame it receives (the Sync). */
function timedSocket() {
  const got = { at: 0, frame: undefined };
  const factory = (url) =>
    new HookedSocket(url, {
      onFrame: (data) => {
        if (got.frame !== undefined) return;
        got.at = now();
        got.frame = new Uint8Array(data);
      },
    });
  return { factory, got };
}

/** Opens a version-2 envelope synchronously (node:crypto) with the raw key bits. */
function openV2(aesBits, envelope) {
  const decipher = createDecipheriv("aes-256-gcm", aesBits, envelope.subarray(1, 13));
  decipher.setAAD(Uint8Array.of(2));
  decipher.setAuthTag(envelope.subarray(envelope.length - 16));
  return new Uint8Array(Buffer.concat([decipher.update(envelope.subarray(13, envelope.length - 16)), decipher.final()]));
}

/**
 * The socket of a first client of an earlier release: its snapshot uploads leave re-sealed as
 * version-1 envelopes (chunks buffered until the upload is whole). `keys()` gives the session's
 * raw snapshot keys, known once it has joined (before any upload).
 */
function earlierReleaseSocket(keys) {
  const seen = { uploads: 0, versions: [] };
  const factory = (url) => {
    let parts = [];
    return new HookedSocket(url, {
      rewriteSend: (data) => {
        if (data[1] !== MessageType.SnapshotChunk) return [data];
        const msg = decodeClientMessage(data, DEFAULT_LIMITS);
        parts.push(msg.data);
        if (msg.offset + msg.data.length < msg.total) return [];
        const envelope = Buffer.concat(parts);
        parts = [];
        seen.uploads++;
        seen.versions.push(envelope[0]);
        const k = keys();
        const old = envelope[0] === 2 ? c.seal(k.box, openV2(k.aesBits, envelope)) : envelope;
        const frames = [];
        for (let offset = 0; offset < old.length; offset += DEFAULT_LIMITS.maxChunkBytes) {
          const chunk = old.subarray(offset, Math.min(old.length, offset + DEFAULT_LIMITS.maxChunkBytes));
          frames.push(encodeClientMessage({ type: MessageType.SnapshotChunk, seq: msg.seq, hash: msg.hash, total: old.length, offset, data: chunk }));
        }
        return frames;
      },
    });
  };
  return { factory, seen };
}

/** The raw bytes of a session's snapshot keys, derived as the client does (PROTOCOL.md §10.1). */
async function snapshotKeys(persistentId, sessionId) {
  const master = await c.deriveMasterKey(PASSWORD, persistentId);
  return {
    box: await c.deriveSubkey(master, `lockstep/v1/snapshot/${sessionId}`),
    aesBits: await c.deriveSubkey(master, `lockstep/v2/snapshot-aes/${sessionId}`),
  };
}

// ---------------------------------------------------------------- sessions
function whenEntry(session, reached) {
  return new Promise((resolve) => {
    const stop = session.afterEntry((seq) => {
      if (!reached()) return;
      stop();
      resolve(seq);
    });
  });
}

function stateWhen(session, reached) {
  return new Promise((resolve) => {
    const stop = session.afterEntry((seq) => {
      if (!reached()) return;
      stop();
      resolve({ seq, bytes: session.stateBytes() });
    });
  });
}

/** Publishes `count` events, each in its own turn: one stream entry each (a turn's publishes travel together). */
async function publishEach(session, event, count, data) {
  for (let n = 0; n < count; n++) {
    session.view.publish("bench", event, data(n));
    await yieldTurn();
  }
}

// A snapshot round is requested when the entries since the last one reach `everyMessages`. The
// first SNAPSHOT_EVERY entries of a session (the first client's view-join, padding, the grow
// events) end in its one round, right after the last grow event; what follows (the messages,
// then a join, a check and an exit per joiner) stays below SNAPSHOT_EVERY.
const SNAPSHOT_EVERY = MESSAGES + 3 * (JOINS + 1) + 100;
const PAD = SNAPSHOT_EVERY - 1 - GROW_EVENTS;
const storedWaiters = [];
const stored = [];
const trouble = (event, fields) => {
  console.error(`reflector: ${event}`, fields);
  if (event.startsWith("snapshot.")) for (const w of storedWaiters.splice(0)) w.reject(new Error(`a snapshot round failed: ${event}`));
};
const reflector = await startReflector({
  port: 0,
  host: "127.0.0.1",
  logger: {
    info(event, fields) {
      if (event !== "snapshot.stored") return;
      stored.push(fields);
      for (const w of storedWaiters.splice(0)) w.resolve(fields);
    },
    warn: trouble,
    error: trouble,
  },
  limits: { maxMessagesPerSecond: 1e7, messageBurst: 1e7 },
  snapshots: { everyMessages: SNAPSHOT_EVERY, everyMs: 2 ** 31 - 1 },
});
const joinOptions = (variant, extra = {}) => ({ appId: APP, name: `latejoin-${variant}`, password: PASSWORD, model: Board, view: View, reflector: reflector.url, ...extra });

/** A session of `variant` with its snapshot stored and MESSAGES messages after it; returns its first client. */
async function buildSession(variant) {
  let keys;
  const old = variant === "v1" ? earlierReleaseSocket(() => keys) : undefined;
  const a = await Session.join(joinOptions(variant, old ? { socket: old.factory } : {}));
  if (old) keys = await snapshotKeys(a.persistentId, a.id);
  const storedOnce = new Promise((resolve, reject) => storedWaiters.push({ resolve, reject }));
  const grown = whenEntry(a, () => a.model.items.length >= GROW_EVENTS * ITEMS_PER_GROW);
  await publishEach(a, "pad", PAD, () => undefined);
  await publishEach(a, "grow", GROW_EVENTS, () => ({ count: ITEMS_PER_GROW }));
  await grown;
  const snapshot = await storedOnce;
  let entries = 0;
  const counting = a.afterEntry(() => entries++);
  const processed = whenEntry(a, () => a.model.pokes === MESSAGES);
  await publishEach(a, "poke", MESSAGES, (n) => ({ i: (n * 7919) % ITEMS, dx: (n % 11) - 5, dy: (n % 7) - 3, n }));
  await processed;
  counting();
  if (entries < MESSAGES) throw new Error(`the ${MESSAGES} messages made only ${entries} stream entries`);
  return { a, snapshot, stateBytes: a.stateBytes().length, uploads: old?.seen };
}

const sessions = {};
for (const variant of VARIANTS) sessions[variant] = await buildSession(variant);

/** One timed late join of `variant`'s session; checks the joiner against the first client. */
async function lateJoin(variant) {
  const { a } = sessions[variant];
  const timed = timedSocket();
  collectGarbage();
  mark.first = 0;
  mark.armed = true;
  const t0 = now();
  const b = await Session.join(joinOptions(variant, { socket: timed.factory }));
  const t1 = now();
  mark.armed = false;
  const pokes = b.model.pokes;
  const checks = a.model.checks + 1;
  const points = [a, b].map((s) => stateWhen(s, () => s.model.checks === checks));
  b.view.publish("bench", "check");
  const [atA, atB] = await Promise.all(points);
  const identical = atA.seq === atB.seq && sameBytes(atA.bytes, atB.bytes);
  await b.leave();
  return { total: t1 - t0, toSync: timed.got.at - t0, syncToFirst: mark.first - timed.got.at, replay: t1 - mark.first, frame: timed.got.frame, pokes, identical };
}

const runs = { v2: [], v1: [] };
let identical = true;
let allApplied = true;
const frames = {};
for (let round = 0; round <= JOINS; round++) {
  // Round 0 warms both up; then the order alternates.
  for (const variant of round % 2 ? VARIANTS : [...VARIANTS].reverse()) {
    const r = await lateJoin(variant);
    identical &&= r.identical;
    allApplied &&= r.pokes === MESSAGES;
    frames[variant] = r.frame;
    if (round > 0) runs[variant].push(r);
  }
}

// Decryption alone, on the snapshot envelope each joiner received (median of 5), and the Sync's decoding.
const bulkKeys = {};
const cost = {};
for (const variant of VARIANTS) decodeServerMessage(frames[variant]); // warm-up
for (const variant of VARIANTS) {
  const { a } = sessions[variant];
  const master = await c.deriveMasterKey(PASSWORD, a.persistentId);
  bulkKeys[variant] = { box: await c.deriveSubkey(master, `lockstep/v1/snapshot/${a.id}`), aes: await c.deriveBulkKey(master, `lockstep/v2/snapshot-aes/${a.id}`) };
  const sync = decodeServerMessage(frames[variant]);
  const decode = [];
  const decrypt = [];
  for (let i = 0; i < 5; i++) {
    collectGarbage();
    let t = now();
    decodeServerMessage(frames[variant]);
    decode.push(now() - t);
    collectGarbage();
    t = now();
    await c.openBulk(bulkKeys[variant], sync.snapshot);
    decrypt.push(now() - t);
  }
  cost[variant] = { decode: median(decode), decrypt: median(decrypt), version: sync.snapshot[0], snapshotBytes: sync.snapshot.length, entries: sync.entries.length, frameBytes: frames[variant].length };
}
const pbkdf2 = [];
for (let i = 0; i < 3; i++) {
  const t = now();
  await c.deriveMasterKey(PASSWORD, `bench-fresh-persistent-id-${i}-${Math.random()}`);
  pbkdf2.push(now() - t);
}

for (const variant of VARIANTS) await sessions[variant].a.leave();
await reflector.close();

// ---------------------------------------------------------------- report
const fmt = (n, d = 1) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const med = (variant, key) => median(runs[variant].map((r) => r[key]));
const header = (label, a, b, r) => console.log(`${label.padEnd(40)}${a.padStart(14)} ${b.padStart(14)} ${r.padStart(10)}`);
const row = (label, a, b) => header(label, fmt(a), fmt(b), (b / a).toFixed(2));
const envelopeName = (v) => (v === 2 ? "v2 AES-GCM" : v === 1 ? "v1 secretbox" : `version ${v}`);
console.log(
  `late-join bench: snapshot of ${fmt(cost.v2.snapshotBytes / 1e6, 2)} MB (${fmt(ITEMS, 0)} items) + ${fmt(MESSAGES, 0)} messages, ` +
    `median of ${JOINS} joins per variant after a warm-up, alternated; in-process reflector (memory store); Node ${process.version}`,
);
console.log(`envelope the joiner received: baseline ${envelopeName(cost.v1.version)}, this release ${envelopeName(cost.v2.version)}`);
if (cost.v2.version !== 2) console.log("  (this build uploads version 1: the v2 column measures version 1 too)");
console.log("");
header("", "v1 (baseline)", "v2", "v2/v1");
row("Session.join → live (ms)", med("v1", "total"), med("v2", "total"));
row("  join start → Sync received (ms)", med("v1", "toSync"), med("v2", "toSync"));
row("  Sync → first message replayed (ms)", med("v1", "syncToFirst"), med("v2", "syncToFirst"));
row("    of which: decrypt the snapshot (ms)", cost.v1.decrypt, cost.v2.decrypt);
row("    of which: decode the Sync frame (ms)", cost.v1.decode, cost.v2.decode);
row("    rest: restore the VM (ms, derived)", med("v1", "syncToFirst") - cost.v1.decrypt - cost.v1.decode, med("v2", "syncToFirst") - cost.v2.decrypt - cost.v2.decode);
row("  replay → live (ms)", med("v1", "replay"), med("v2", "replay"));
console.log("");
for (const variant of VARIANTS) console.log(`joins ${variant} (ms): ${runs[variant].map((r) => fmt(r.total)).join(", ")}`);
console.log(
  `Sync: ${fmt(cost.v2.frameBytes / 1e6, 2)} MB frame, ${cost.v2.entries} entries; snapshots stored: ${stored.length} ` +
    `(${stored.map((s) => `${fmt(s.bytes / 1e6, 2)} MB`).join(", ")}); first client's state ${fmt(sessions.v2.stateBytes / 1e6, 2)} MB`,
);
console.log(`PBKDF2 (not in the figures above: cached in this process; a joiner elsewhere pays it once): ${fmt(median(pbkdf2))} ms`);
console.log(`target: Session.join → live < 300 ms; late joiners identical to the first client: ${identical}; all ${MESSAGES} messages applied: ${allApplied}`);
const uploadsOk = sessions.v1.uploads.uploads >= 1;
if (!identical || !allApplied || stored.length !== VARIANTS.length || !uploadsOk) process.exitCode = 1;
