#!/usr/bin/env node
// End-to-end throughput (issue 15): replicas applying events through the whole library (publish,
// seal, bundle, relay, open, decode, dispatch), with encryption.
//   - a reflector in this thread (memory store, frame/byte limits raised past the load: this
//     measures the pipeline, not a flood being refused — bursts.mjs covers the default limits);
//   - --clients clients (default 2), each in its own worker thread (as each browser tab is its own
//     event loop), all of them publishing: together --events 100-byte events, as fast as they can
//     while staying within --ahead events of what they have applied themselves;
//   - figure: applied events per second per replica (first publish → last event applied, the
//     slowest replica), and the replicas' state hashes compared at the last event.
// Baseline, in the same run: the same clients speaking the wire protocol directly (no library: no
// encryption, stamping, decoding or models), each sending its share of Send frames with the same
// flow control; "events/s per replica" there is Relay frames received per second. The ratio
// library ÷ raw shows what the library costs on top of the reflector and the sockets.
//
//   node scripts/build.mjs && node scripts/bench/throughput.mjs [--events 200000] [--clients 2] [--rounds 3] [--quick]
// --quick: 40,000 events, 1 round. Runs on 127.0.0.1, bounded in time, and stops by itself.
import { startReflector, silentLogger } from "@lockstep/reflector";
import { newIdentity } from "../probe/lib/raw.mjs";
import { parseArgs } from "node:util";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { createHash, randomBytes } from "node:crypto";

const EVENT_BYTES = 100;

if (isMainThread) {
  const { values } = parseArgs({
    options: {
      events: { type: "string", default: "200000" },
      clients: { type: "string", default: "2" },
      rounds: { type: "string", default: "3" },
      ahead: { type: "string", default: "20000" },
      quick: { type: "boolean", default: false },
    },
  });
  const EVENTS = values.quick ? 40_000 : Number(values.events);
  const CLIENTS = Number(values.clients);
  const ROUNDS = values.quick ? 1 : Number(values.rounds);
  const AHEAD = Number(values.ahead);
  const deadline = setTimeout(() => {
    console.error("throughput: did not finish within 5 minutes");
    process.exit(1);
  }, 300_000);
  deadline.unref();

  const many = 1e9;
  const reflector = await startReflector({
    port: 0,
    host: "127.0.0.1",
    logger: silentLogger,
    snapshots: { everyMessages: many, everyMs: 2 ** 31 - 1 },
    // No snapshots, so the whole run stays in the log: its caps (32 MiB by default, about 130,000
    // of these events) raised past it, or the session would refuse the rest of the run.
    caps: { maxLogBytes: 1 << 30, maxLogMemoryBytes: 1 << 30 },
    limits: { maxMessagesPerSecond: many, messageBurst: many, maxBytesPerSecond: many, byteBurst: many, maxSendQueueBytes: 1 << 30 },
  });

  /** One round: starts the workers, waits for all to be ready, says go, collects their results. */
  async function round(mode, r) {
    const name = `tput-${mode}-${r}-${Date.now()}`;
    const share = Math.ceil(EVENTS / CLIENTS);
    const total = share * CLIENTS;
    const identity = mode === "raw" ? newIdentity() : undefined;
    const workers = [];
    const ready = [];
    const results = [];
    for (let i = 0; i < CLIENTS; i++) {
      const worker = new Worker(new URL(import.meta.url), { workerData: { mode, url: reflector.url, name, identity, share, total, ahead: AHEAD, index: i } });
      workers.push(worker);
      ready.push(new Promise((resolve, reject) => {
        worker.on("message", (m) => (m.ready ? resolve() : results.push(m)));
        worker.on("error", reject);
      }));
      // Joins one after another: the first creates the session.
      await ready[i];
    }
    const ended = workers.map((w) => new Promise((resolve) => w.once("exit", resolve)));
    for (const w of workers) w.postMessage("go");
    await Promise.all(ended);
    if (results.length !== CLIENTS) throw new Error(`throughput: ${results.length} of ${CLIENTS} clients reported`);
    const slowest = Math.max(...results.map((x) => x.ms));
    const hashes = new Set(results.map((x) => x.hash));
    return { perReplica: total / (slowest / 1000), applied: Math.min(...results.map((x) => x.applied)), total, same: hashes.size === 1 };
  }

  const f = (n) => Math.round(n).toLocaleString("en-US");
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const raw = [];
  const lib = [];
  let failed = false;
  for (let r = 0; r < ROUNDS; r++) {
    const a = await round("raw", r);
    const b = await round("library", r);
    raw.push(a.perReplica);
    lib.push(b.perReplica);
    if (b.applied !== b.total || !b.same) failed = true;
    if (a.applied !== a.total) failed = true;
  }
  await reflector.close();
  console.log(`end-to-end throughput: ${CLIENTS} clients (worker threads) all publishing, ${f(EVENTS)} events of ${EVENT_BYTES} bytes, reflector in the main thread, memory store, ${ROUNDS} round(s), Node ${process.version}`);
  console.log(`events/s per replica   raw protocol (baseline)   library (encrypted)   library ÷ raw`);
  console.log(`median                 ${f(median(raw)).padStart(23)}   ${f(median(lib)).padStart(19)}   ${(median(lib) / median(raw)).toFixed(2)}`);
  console.log(`rounds                 ${raw.map(f).join(" / ").padStart(23)}   ${lib.map(f).join(" / ").padStart(19)}`);
  if (failed) {
    console.error("throughput: a replica missed events or the replicas' states differ");
    process.exit(1);
  }
  process.exit(0);
} else {
  const { mode, url, name, identity, share, total, ahead } = workerData;
  const { WebSocket } = await import("ws");
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const go = new Promise((resolve) => parentPort.once("message", resolve));

  if (mode === "library") {
    const { Model, Session, View } = await import("@lockstep/client");
    class Counter extends Model {
      n = 0;
      init() {
        this.subscribe("bench", "event", this.event);
      }
      event() {
        this.n++;
      }
    }
    Counter.register("Bench.Throughput.Counter");
    const socket = (u) => new WebSocket(u, { maxPayload: 64 * 1024 * 1024 });
    const session = await Session.join({ appId: "bench.throughput", name, password: "bench", model: Counter, view: View, reflector: url, socket, autoSleep: false });
    const data = randomBytes(EVENT_BYTES / 2).toString("base64").slice(0, EVENT_BYTES - 30); // ~100 bytes sealed and stamped
    let hash;
    const done = new Promise((resolve) => {
      const stop = session.afterEntry(() => {
        if (session.model.n < total) return;
        stop();
        hash = createHash("sha256").update(session.stateBytes()).digest("hex");
        resolve();
      });
    });
    parentPort.postMessage({ ready: true });
    await go;
    const started = performance.now();
    let sent = 0;
    // My own events applied is what I can see; the others' count too, so stay within `ahead` of the total applied share.
    while (sent < share) {
      const room = Math.min(share - sent, 1000);
      for (let i = 0; i < room; i++) session.view.publish("bench", "event", data);
      sent += room;
      await tick();
      while (sent * (total / share) - session.model.n > ahead) await tick();
    }
    await done;
    const ms = performance.now() - started;
    parentPort.postMessage({ ms, applied: session.model.n, hash });
    await session.leave();
    process.exit(0);
  } else {
    const { encodeSend, MessageType } = await import("@lockstep/protocol");
    const { rawJoin } = await import("../probe/lib/raw.mjs");
    const id = { ...identity, token: Buffer.from(identity.token), verifier: Buffer.from(identity.verifier), check: Buffer.from(identity.check) };
    const client = await rawJoin(url, id);
    const frame = encodeSend(randomBytes(EVENT_BYTES));
    parentPort.postMessage({ ready: true });
    await go;
    const started = performance.now();
    let sent = 0;
    while (sent < share) {
      const room = Math.min(share - sent, 1000);
      for (let i = 0; i < room; i++) client.send(frame);
      sent += room;
      await tick();
      while (sent * (total / share) - client.count(MessageType.Relay) > ahead) await tick();
    }
    while (client.count(MessageType.Relay) < total) await tick();
    const ms = performance.now() - started;
    parentPort.postMessage({ ms, applied: client.count(MessageType.Relay), hash: "raw" });
    client.leave();
    process.exit(0);
  }
}
