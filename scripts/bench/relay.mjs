#!/usr/bin/env node
// Relay benchmark: 1 session × N clients on loopback.
//   - throughput: every client publishes as fast as it can; messages ordered per second and
//     deliveries (messages × clients) per second until every replica has processed everything;
//   - latency: clients publish at a steady rate; time from View.publish to the sender's own model
//     handler (median, p99).
// The baseline is a raw `ws` broadcast server (no ordering, no time stamps, no models) measured in
// the same run with the same clients count, message count and payload size.
//
//   node scripts/bench/relay.mjs [--clients 10] [--messages 2000] [--rate 100] [--seconds 5] [--storage memory|fs] [--no-snapshots]
import { Model, Session, View } from "@lockstep/client";
import { startReflector, silentLogger } from "@lockstep/reflector";
import { WebSocket, WebSocketServer } from "ws";
import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "10" },
    messages: { type: "string", default: "2000" },
    rate: { type: "string", default: "100" },
    seconds: { type: "string", default: "5" },
    storage: { type: "string", default: "memory" },
    "no-snapshots": { type: "boolean", default: false },
  },
});
const CLIENTS = Number(values.clients);
const MESSAGES = Number(values.messages); // per client, throughput phase
const RATE = Number(values.rate); // per client per second, latency phase
const SECONDS = Number(values.seconds);
const PAD = "x".repeat(48);

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const yieldTurn = () => new Promise((r) => setImmediate(r));

// ---------------------------------------------------------------- Lockstep
class BenchModel extends Model {
  init() {
    this.count = 0;
    this.subscribe("bench", "msg", this.onMsg);
  }
  onMsg(data) {
    this.count++;
    this.publish("bench", "seen", data);
  }
}
BenchModel.register("BenchModel");

class BenchView extends View {
  constructor(model) {
    super(model);
    this.latencies = [];
    this.subscribe("bench", { event: "seen", handling: "immediate" }, this.seen);
  }
  seen(data) {
    if (data.from === this.viewId && data.t > 0) this.latencies.push(performance.now() - data.t);
  }
}

async function lockstepRun() {
  const dataDir = values.storage === "fs" ? mkdtempSync(join(tmpdir(), "lockstep-bench-")) : undefined;
  const reflector = await startReflector({
    port: 0,
    logger: silentLogger,
    ...(dataDir ? { dataDir } : {}),
    ...(values["no-snapshots"] ? { snapshots: { everyMessages: 1e9, everyMs: 1e9 } } : {}),
    limits: { maxMessagesPerSecond: 1e7, messageBurst: 1e7 },
  });
  const sessions = [];
  for (let i = 0; i < CLIENTS; i++) {
    sessions.push(
      await Session.join({ appId: "bench.relay", name: "relay", password: "bench", model: BenchModel, view: BenchView, reflector: reflector.url }),
    );
  }
  const total = CLIENTS * MESSAGES;
  const allDone = () => sessions.every((s) => s.model.count >= total);
  const started = performance.now();
  await Promise.all(
    sessions.map(async (s) => {
      for (let n = 0; n < MESSAGES; n++) {
        s.view.publish("bench", "msg", { from: s.viewId, t: 0, n, pad: PAD });
        if (n % 50 === 49) await yieldTurn();
      }
    }),
  );
  while (!allDone()) await yieldTurn();
  const seconds = (performance.now() - started) / 1000;
  const throughput = total / seconds;

  for (const s of sessions) s.view.latencies.length = 0;
  const base = sessions[0].model.count;
  const latencyMsgs = Math.round(RATE * SECONDS);
  const finalCount = base + CLIENTS * latencyMsgs;
  // Compare replicas at one definite point of the stream: right after the last message.
  const finalHashes = sessions.map(
    (s) =>
      new Promise((resolve) => {
        const stop = s.afterEntry(() => {
          if (s.model.count < finalCount) return;
          stop();
          resolve(createHash("sha256").update(s.stateBytes()).digest("hex"));
        });
      }),
  );
  await Promise.all(
    sessions.map(async (s, i) => {
      await new Promise((r) => setTimeout(r, (i * 1000) / RATE / CLIENTS));
      for (let n = 0; n < latencyMsgs; n++) {
        s.view.publish("bench", "msg", { from: s.viewId, t: performance.now(), n, pad: PAD });
        await new Promise((r) => setTimeout(r, 1000 / RATE));
      }
    }),
  );
  const hashes = new Set(await Promise.all(finalHashes));
  const lat = sessions.flatMap((s) => s.view.latencies).sort((a, b) => a - b);
  await Promise.all(sessions.map((s) => s.leave()));
  await reflector.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  return { throughput, median: percentile(lat, 50), p99: percentile(lat, 99), samples: lat.length, identical: hashes.size === 1 };
}

// ---------------------------------------------------------------- raw ws baseline
async function baselineRun() {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((r) => wss.once("listening", r));
  wss.on("connection", (ws) => {
    ws.on("message", (data) => {
      for (const client of wss.clients) client.send(data);
    });
  });
  const url = `ws://127.0.0.1:${wss.address().port}/`;
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, (_, id) => {
      const ws = new WebSocket(url);
      const c = { id, ws, count: 0, latencies: [] };
      ws.on("message", (data) => {
        const msg = JSON.parse(data.toString());
        c.count++;
        if (msg.from === id && msg.t > 0) c.latencies.push(performance.now() - msg.t);
      });
      return new Promise((r) => ws.once("open", () => r(c)));
    }),
  );
  const total = CLIENTS * MESSAGES;
  const started = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      for (let n = 0; n < MESSAGES; n++) {
        c.ws.send(JSON.stringify({ from: c.id, t: 0, n, pad: PAD }));
        if (n % 50 === 49) await yieldTurn();
      }
    }),
  );
  while (!clients.every((c) => c.count >= total)) await yieldTurn();
  const seconds = (performance.now() - started) / 1000;
  const throughput = total / seconds;

  const base = clients[0].count;
  const latencyMsgs = Math.round(RATE * SECONDS);
  await Promise.all(
    clients.map(async (c, i) => {
      await new Promise((r) => setTimeout(r, (i * 1000) / RATE / CLIENTS));
      for (let n = 0; n < latencyMsgs; n++) {
        c.ws.send(JSON.stringify({ from: c.id, t: performance.now(), n, pad: PAD }));
        await new Promise((r) => setTimeout(r, 1000 / RATE));
      }
    }),
  );
  while (!clients.every((c) => c.count >= base + CLIENTS * latencyMsgs)) await yieldTurn();
  const lat = clients.flatMap((c) => c.latencies).sort((a, b) => a - b);
  for (const c of clients) c.ws.close();
  await new Promise((r) => wss.close(r));
  return { throughput, median: percentile(lat, 50), p99: percentile(lat, 99), samples: lat.length };
}

const baseline = await baselineRun();
const lockstep = await lockstepRun();
const fmt = (n, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(`relay bench: 1 session x ${CLIENTS} clients, ${values.storage} storage${values["no-snapshots"] ? ", no snapshots" : ""}, ${MESSAGES} msgs/client throughput phase, ${RATE} msg/s/client for ${SECONDS}s latency phase, Node ${process.version}`);
console.log("");
console.log("                         baseline (raw ws)     lockstep     lockstep/baseline");
console.log(`messages ordered/s     ${fmt(baseline.throughput).padStart(18)} ${fmt(lockstep.throughput).padStart(12)} ${(lockstep.throughput / baseline.throughput).toFixed(2).padStart(17)}`);
console.log(`deliveries/s           ${fmt(baseline.throughput * CLIENTS).padStart(18)} ${fmt(lockstep.throughput * CLIENTS).padStart(12)} ${(lockstep.throughput / baseline.throughput).toFixed(2).padStart(17)}`);
console.log(`latency median (ms)    ${fmt(baseline.median, 3).padStart(18)} ${fmt(lockstep.median, 3).padStart(12)} ${(lockstep.median / baseline.median).toFixed(2).padStart(17)}`);
console.log(`latency p99 (ms)       ${fmt(baseline.p99, 3).padStart(18)} ${fmt(lockstep.p99, 3).padStart(12)} ${(lockstep.p99 / baseline.p99).toFixed(2).padStart(17)}`);
console.log(`latency samples        ${String(baseline.samples).padStart(18)} ${String(lockstep.samples).padStart(12)}`);
console.log(`replicas identical: ${lockstep.identical}`);
if (!lockstep.identical) process.exitCode = 1;
