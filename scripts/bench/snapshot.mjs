#!/usr/bin/env node
// Snapshot benchmark, on loopback:
//   - serialize / restore: the client's snapshot path (boot.ts: serializeVM; deserialize + new
//     VirtualMachine) on a ~10 MB model graph (a board holding thousands of item models with
//     numbers, strings, arrays, a Map and shared references to other models), median of
//     --iterations after warm-up. Baseline: JSON.stringify / JSON.parse of the same graph as a
//     plain structure (model references as ids, Maps as objects), measured in the same run.
//     MB/s are of each format's own output; the ms rows compare the same graph;
//   - late join: Session.join into a session whose reflector holds a snapshot of that graph plus
//     --messages messages after it (the joiner receives both, decrypts, restores and fast-forwards;
//     the join resolves when it is live), median of --joins. Baseline: Session.join into an empty
//     session of the same app on the same reflector. The joiner's state is checked byte for byte
//     against the first client's at a common point of the stream (exit code 1 if it differs).
// The client internals are bundled from source with esbuild at run time (snapshot-internals.ts);
// the sessions use the built packages: run `node scripts/build.mjs` first.
//
//   node scripts/bench/snapshot.mjs [--items 9200] [--messages 10000] [--iterations 9] [--joins 3]
import { Model, Session, View } from "@lockstep/client";
import { startReflector } from "@lockstep/reflector";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { importFromSource } from "./lib/from-source.mjs";

const { values } = parseArgs({
  options: {
    items: { type: "string", default: "9200" },
    messages: { type: "string", default: "10000" },
    iterations: { type: "string", default: "9" },
    joins: { type: "string", default: "3" },
  },
});
const ITEMS = Number(values.items);
const MESSAGES = Number(values.messages);
const ITERATIONS = Number(values.iterations);
const JOINS = Number(values.joins);
const WARMUP = 2;
const GROW_EVENTS = 4;
const ITEMS_PER_GROW = Math.ceil(ITEMS / GROW_EVENTS);
const PASSWORD = "bench";
// Whatever goes wrong (a snapshot round that never completes, a join that never resolves), stop.
const DEADLINE_MS = 180_000;
setTimeout(() => {
  console.error(`snapshot bench: not done after ${DEADLINE_MS / 1000} s, giving up`);
  process.exit(1);
}, DEADLINE_MS).unref();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
// Each timed operation (and join) starts from a collected heap, so that it pays for its own garbage
// only, not for the graphs, strings and buffers the operations before it left behind.
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc");
const yieldTurn = () => new Promise((r) => setImmediate(r));
const sameBytes = (a, b) => a.length === b.length && Buffer.compare(a, b) === 0;

// ---------------------------------------------------------------- the app's models
// A shared whiteboard: players own items (strokes, stickies, shapes) that link to other items.
// Defined once per copy of the client (the bundled source for serialize/restore, the built package
// for sessions): each copy has its own Model base class and registry.
const COLORS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6"];
const KINDS = ["stroke", "sticky", "shape", "arrow", "text"];
const WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et " +
  "dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo").split(" ");
const POINTS = 128; // x, y pairs of a stroke
const ITEMS_PER_PLAYER = 25;

function defineModels(Base) {
  class Player extends Base {
    init({ index }) {
      this.name = `player-${index}`;
      this.color = COLORS[index % COLORS.length];
      this.score = 0;
      this.joinedAt = this.now();
      this.items = [];
    }
  }
  Player.register("SnapshotBench.Player");

  class Item extends Base {
    init({ index, board, owner }) {
      const r = () => this.random();
      this.index = index;
      this.name = `item-${index}`;
      this.kind = KINDS[index % KINDS.length];
      this.board = board;
      this.owner = owner;
      this.x = r() * 4000;
      this.y = r() * 3000;
      this.angle = r() * 2 * Math.PI;
      this.scale = 1;
      this.color = COLORS[Math.floor(r() * COLORS.length)];
      const words = [];
      for (let i = 12 + Math.floor(r() * 24); i > 0; i--) words.push(WORDS[Math.floor(r() * WORDS.length)]);
      this.text = words.join(" ");
      this.points = [];
      let px = Math.floor(r() * 4000);
      let py = Math.floor(r() * 3000);
      for (let i = 0; i < POINTS; i++) this.points.push((px += Math.floor(r() * 21) - 10), (py += Math.floor(r() * 21) - 10));
      this.tags = [KINDS[Math.floor(r() * KINDS.length)], `layer-${index % 7}`];
      this.meta = new Map([
        ["created", this.now()],
        ["z", index],
        ["locked", r() < 0.1],
        ["opacity", Math.round(r() * 100) / 100],
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
  Item.register("SnapshotBench.Item");

  class Board extends Base {
    init() {
      this.items = [];
      this.players = [];
      this.byName = new Map();
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
        const item = Item.create({ index, board: this, owner: this.players[this.players.length - 1] });
        for (let l = 0; l < 3 && index > 0; l++) item.links.push(this.items[Math.floor(this.random() * index)]);
        this.items.push(item);
        this.byName.set(item.name, item);
      }
    }
    poke(data) {
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
  Board.register("SnapshotBench.Board");
  return { Board, Item, Player };
}

/** The VM state as plain JSON-able data: each model's own fields, model references as ids, Maps as objects. */
function plainState(state, Base) {
  const plain = (v) => {
    if (v instanceof Base) return v.id;
    if (Array.isArray(v)) return v.map(plain);
    if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
    if (typeof v === "object" && v !== null) {
      const o = {};
      for (const k of Object.keys(v)) o[k] = plain(v[k]);
      return o;
    }
    return v;
  };
  const models = state.models.map((m) => {
    const o = { class: m.constructor.name };
    for (const k of Object.keys(m)) o[k] = plain(m[k]);
    return o;
  });
  return { ...plain({ ...state, models: [] }), models };
}

// ---------------------------------------------------------------- serialize / restore

async function serializerRun() {
  const internals = await importFromSource("scripts/bench/snapshot-internals.ts");
  const { Board } = defineModels(internals.Model);
  const bench = new internals.BenchVM("bench-snapshot-session");
  bench.createRoot(Board);
  bench.viewJoin("view-a");
  for (let g = 0; g < GROW_EVENTS; g++) bench.relay("bench", "grow", { count: ITEMS_PER_GROW });
  if (bench.errors.length > 0) throw bench.errors[0].error;
  const plain = plainState(bench.vm.state(), internals.Model);

  const times = { serialize: [], restore: [], stringify: [], parse: [] };
  let bytes;
  let json;
  for (let i = 0; i < WARMUP + ITERATIONS; i++) {
    const keep = i >= WARMUP;
    collectGarbage();
    let t = performance.now();
    bytes = bench.serialize();
    if (keep) times.serialize.push(performance.now() - t);
    collectGarbage();
    t = performance.now();
    json = JSON.stringify(plain);
    if (keep) times.stringify.push(performance.now() - t);
    collectGarbage();
    t = performance.now();
    const restored = bench.restore(bytes);
    if (keep) times.restore.push(performance.now() - t);
    collectGarbage();
    t = performance.now();
    const parsed = JSON.parse(json);
    if (keep) times.parse.push(performance.now() - t);
    if (i === WARMUP + ITERATIONS - 1) {
      bench.vm = restored;
      if (!sameBytes(bench.serialize(), bytes)) throw new Error("the restored VM does not serialize to the same bytes");
      if (parsed.models.length !== plain.models.length) throw new Error("JSON round trip lost models");
    }
  }
  return {
    bytes: bytes.length,
    jsonBytes: Buffer.byteLength(json),
    models: plain.models.length,
    serialize: median(times.serialize),
    restore: median(times.restore),
    stringify: median(times.stringify),
    parse: median(times.parse),
  };
}

// ---------------------------------------------------------------- late join
/** Resolves after the first stream entry at which `reached()` holds. */
function whenEntry(session, reached) {
  return new Promise((resolve) => {
    const stop = session.afterEntry((seq) => {
      if (!reached()) return;
      stop();
      resolve(seq);
    });
  });
}

/** Resolves with the seq and state bytes of the first stream entry at which `reached()` holds. */
function stateWhen(session, reached) {
  return new Promise((resolve) => {
    const stop = session.afterEntry((seq) => {
      if (!reached()) return;
      stop();
      resolve({ seq, bytes: session.stateBytes() });
    });
  });
}

/** Publishes `count` events, each in its own turn: one entry each (a turn's publishes travel as one entry). */
async function publishAll(session, event, count, data) {
  for (let n = 0; n < count; n++) {
    session.view.publish("bench", event, data(n));
    await yieldTurn();
  }
}

async function lateJoinRun() {
  const { Board } = defineModels(Model);
  // A round is requested when the entries since the last snapshot reach `everyMessages` (there is no
  // other public trigger). So the first SNAPSHOT_EVERY entries (A's view-join, padding, then the
  // grow events) end in the run's one round, right after the last grow event; what follows it
  // (MESSAGES, then a join, a check message and an exit per joiner) stays below SNAPSHOT_EVERY.
  const SNAPSHOT_EVERY = MESSAGES + 3 * JOINS + 100;
  const PAD = SNAPSHOT_EVERY - 1 - GROW_EVENTS;
  const stored = [];
  let storedWaiter;
  const trouble = (event, fields) => {
    console.error(`reflector: ${event}`, fields);
    if (event.startsWith("snapshot.")) storedWaiter?.reject(new Error(`the snapshot round failed: ${event}`));
  };
  const logger = {
    info(event, fields) {
      if (event !== "snapshot.stored") return;
      stored.push(fields);
      storedWaiter?.resolve(fields);
    },
    warn: trouble,
    error: trouble,
  };
  const reflector = await startReflector({
    port: 0,
    logger,
    limits: { maxMessagesPerSecond: 1e7, messageBurst: 1e7 },
    snapshots: { everyMessages: SNAPSHOT_EVERY, everyMs: 2 ** 31 - 1 },
  });
  const joinOptions = (name) => ({ appId: "bench.snapshot", name, password: PASSWORD, model: Board, view: View, reflector: reflector.url });

  // Baseline: joining an empty session (a fresh one each time), after one warm-up join.
  const emptyJoins = [];
  for (let i = 0; i <= JOINS; i++) {
    collectGarbage();
    const t = performance.now();
    const s = await Session.join(joinOptions(`empty-${i}`));
    if (i > 0) emptyJoins.push(performance.now() - t);
    await s.leave();
  }

  const a = await Session.join(joinOptions("late-join"));
  const storedOnce = new Promise((resolve, reject) => (storedWaiter = { resolve, reject }));
  const grown = whenEntry(a, () => a.model.items.length >= GROW_EVENTS * ITEMS_PER_GROW);
  await publishAll(a, "pad", PAD, () => undefined);
  await publishAll(a, "grow", GROW_EVENTS, () => ({ count: ITEMS_PER_GROW }));
  await grown;
  const snapshot = await storedOnce;
  const stateBytes = a.stateBytes().length;

  const processed = whenEntry(a, () => a.model.pokes === MESSAGES);
  await publishAll(a, "poke", MESSAGES, (n) => ({ i: (n * 7919) % ITEMS, dx: (n % 11) - 5, dy: (n % 7) - 3, n }));
  await processed;

  const lateJoins = [];
  let identical = true;
  for (let i = 0; i < JOINS; i++) {
    collectGarbage();
    const t = performance.now();
    const b = await Session.join(joinOptions("late-join"));
    lateJoins.push(performance.now() - t);
    const checks = a.model.checks + 1;
    const points = [a, b].map((s) => stateWhen(s, () => s.model.checks === checks));
    b.view.publish("bench", "check");
    const [atA, atB] = await Promise.all(points);
    if (atA.seq !== atB.seq || !sameBytes(atA.bytes, atB.bytes)) identical = false;
    await b.leave();
  }
  const snapshots = stored.length;
  await a.leave();
  await reflector.close();
  return {
    emptyJoin: median(emptyJoins),
    emptyJoins,
    lateJoin: median(lateJoins),
    lateJoins,
    snapshotBytes: snapshot.bytes,
    snapshotSeq: snapshot.seq,
    stateBytes,
    snapshots,
    identical,
  };
}

const ser = await serializerRun();
const late = await lateJoinRun();

const fmt = (n, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const mb = (bytes) => bytes / 1e6;
const header = (label, base, lockstep, ratio) => console.log(`${label.padEnd(24)}${base.padStart(18)} ${lockstep.padStart(12)} ${ratio.padStart(19)}`);
const row = (label, base, lockstep, d) => header(label, fmt(base, d), fmt(lockstep, d), (lockstep / base).toFixed(2));
console.log(
  `snapshot bench: ${fmt(ser.models)} models (${fmt(ITEMS)} items), serialize/restore median of ${ITERATIONS} after ${WARMUP} warm-up; ` +
    `late join after ${fmt(MESSAGES)} messages, median of ${JOINS} joins; Node ${process.version}`,
);
console.log("");
header("", "baseline (JSON)", "lockstep", "lockstep/baseline");
row("size (MB)", mb(ser.jsonBytes), mb(ser.bytes), 2);
row("serialize (ms)", ser.stringify, ser.serialize, 1);
row("serialize (MB/s)", mb(ser.jsonBytes) / (ser.stringify / 1000), mb(ser.bytes) / (ser.serialize / 1000), 0);
row("restore (ms)", ser.parse, ser.restore, 1);
row("restore (MB/s)", mb(ser.jsonBytes) / (ser.parse / 1000), mb(ser.bytes) / (ser.restore / 1000), 0);
console.log("");
header("", "baseline (empty)", "late join", "late/baseline");
row("Session.join (ms)", late.emptyJoin, late.lateJoin, 1);
console.log("");
console.log(`joins (ms): empty ${late.emptyJoins.map((t) => fmt(t, 1)).join(", ")}; late ${late.lateJoins.map((t) => fmt(t, 1)).join(", ")}`);
console.log(
  `snapshot: ${fmt(late.snapshotBytes)} bytes (encrypted; ${fmt(late.stateBytes)} serialized) at #${late.snapshotSeq}, ` +
    `then ${fmt(MESSAGES)} messages (+3 per earlier late joiner); snapshots taken: ${late.snapshots}`,
);
console.log(`late joiners identical to the first client: ${late.identical}`);
if (!late.identical || late.snapshots !== 1) process.exitCode = 1;
