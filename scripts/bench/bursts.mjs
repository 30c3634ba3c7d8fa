#!/usr/bin/env node
// Publish bursts (issue 15): one client publishing thousands of events a second, against the
// reflector's default limits (1,000 frames/s, burst 2,000; 2 MiB/s). Two ways, in the same run
// (a reflector in this process, memory store):
//   - baseline "one frame per event": a raw protocol client sends one Send frame per event, as the
//     client did before it bundled (the reflector closes it with 4005 RateLimited once the frame
//     burst is spent);
//   - "library": a session of 2 clients (the built @lockstep/client, encryption included) where
//     one view publishes the same events; the client bundles each turn's publishes into one
//     SendBatch frame. Measured on the other replica: events applied and applied per second.
// Each runs --seconds at each --rates offered (events/s, sent in 10 ms slices), 100-byte events,
// on a fresh reflector (one that closed a flooder refuses its address for a while).
//
//   node scripts/build.mjs && node scripts/bench/bursts.mjs [--rates 2000,5000,20000] [--seconds 2] [--quick]
// --quick: 5,000/s for 1 s. Everything runs on 127.0.0.1, bounded in time, and stops by itself.
import { MessageType, encodeSend } from "@lockstep/protocol";
import { Model, Session, View } from "@lockstep/client";
import { startReflector, silentLogger } from "@lockstep/reflector";
import { createHash, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import { newIdentity, rawJoin } from "../probe/lib/raw.mjs";

const { values } = parseArgs({
  options: {
    rates: { type: "string", default: "2000,5000,20000" },
    seconds: { type: "string", default: "2" },
    quick: { type: "boolean", default: false },
  },
});
const RATES = values.quick ? [5000] : values.rates.split(",").map(Number);
const SECONDS = values.quick ? 1 : Number(values.seconds);
const SLICE_MS = 10;
const DEADLINE = setTimeout(() => {
  console.error("bursts: did not finish within 5 minutes");
  process.exit(1);
}, 300_000);
DEADLINE.unref();

class Counter extends Model {
  n = 0;
  marked = false;
  init() {
    this.subscribe("bench", "event", this.event);
    this.subscribe("bench", "mark", this.mark);
  }
  event() {
    this.n++;
  }
  mark() {
    this.marked = true;
  }
}

/** The hash of `session`'s state right after it applies the mark (the same entry on every replica). */
function hashAtMark(session) {
  return new Promise((resolve) => {
    const stop = session.afterEntry(() => {
      if (!session.model.marked) return;
      stop();
      resolve(createHash("sha256").update(session.stateBytes()).digest("hex"));
    });
  });
}
Counter.register("Bench.Bursts.Counter");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `send(k)` with the events of each 10 ms slice at `rate`/s for `seconds`; resolves when done or `stop()` says so. */
async function offer(rate, seconds, send, stop) {
  const slices = (seconds * 1000) / SLICE_MS;
  const start = performance.now();
  let sent = 0;
  for (let s = 1; s <= slices && !stop(); s++) {
    const due = Math.round((rate * s * SLICE_MS) / 1000);
    send(due - sent);
    sent = due;
    const wait = start + s * SLICE_MS - performance.now();
    if (wait > 0) await sleep(wait);
    else await new Promise((resolve) => setImmediate(resolve));
  }
  return sent;
}

async function baseline(url, rate) {
  const client = await rawJoin(url, newIdentity());
  const payload = randomBytes(100);
  const frame = encodeSend(payload);
  const started = performance.now();
  const sent = await offer(rate, SECONDS, (k) => {
    for (let i = 0; i < k; i++) client.send(frame);
  }, () => !client.open);
  await Promise.race([client.closed, sleep(500)]);
  const relayed = client.count(MessageType.Relay);
  const closed = client.open ? "no" : `yes (${(await client.closed).code})`;
  if (client.open) client.leave();
  return { sent, relayed, closed, perSecond: relayed / ((performance.now() - started) / 1000) };
}

async function library(url, rate) {
  const name = `bursts-${rate}-${Date.now()}`;
  const socket = (u) => new WebSocket(u, { maxPayload: 64 * 1024 * 1024 });
  const opts = { appId: "bench.bursts", name, password: "bench", model: Counter, view: View, reflector: url, socket, autoSleep: false };
  const publisher = await Session.join(opts);
  const watcher = await Session.join(opts);
  const data = randomBytes(50).toString("base64"); // ~100 bytes sealed and stamped
  const started = performance.now();
  const sent = await offer(rate, SECONDS, (k) => {
    for (let i = 0; i < k; i++) publisher.view.publish("bench", "event", data);
  }, () => publisher.status !== "connected");
  const until = performance.now() + 10_000;
  while (watcher.model.n < sent && performance.now() < until && publisher.status === "connected") await sleep(5);
  const elapsed = (performance.now() - started) / 1000;
  const applied = watcher.model.n;
  // The replicas' states, compared right after one more event (the same entry on both).
  const hashes = Promise.all([hashAtMark(publisher), hashAtMark(watcher)]);
  publisher.view.publish("bench", "mark");
  const [hp, hw] = await Promise.race([hashes, sleep(10_000).then(() => ["timeout", "?"])]);
  const closed = publisher.status === "connected" ? "no" : `yes (${publisher.status})`;
  const same = applied === sent && hp === hw;
  await Promise.all([publisher.leave(), watcher.leave()]);
  return { sent, relayed: applied, closed, perSecond: applied / elapsed, same };
}

/** Runs `fn` against a fresh reflector: one that closed a client for flooding refuses its address for a while. */
async function onFreshReflector(fn) {
  const reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });
  try {
    return await fn(reflector.url);
  } finally {
    await reflector.close();
  }
}

const rows = [];
let failed = false;
for (const rate of RATES) {
  const lib = await onFreshReflector((url) => library(url, rate));
  const base = await onFreshReflector((url) => baseline(url, rate));
  if (!lib.same) failed = true;
  rows.push({ rate, base, lib });
}
const f = (n) => Math.round(n).toLocaleString("en-US");
console.log(`publish bursts for ${SECONDS} s, 100-byte events, default limits (1,000 frames/s, burst 2,000), 2-core loopback`);
console.log(`${"offered/s".padEnd(10)} ${"one frame per event: relayed / closed".padEnd(40)} ${"library (bundled): applied / closed".padEnd(40)} applied ratio lib÷baseline`);
for (const { rate, base, lib } of rows) {
  const left = `${f(base.relayed)} of ${f(base.sent)} / ${base.closed}`;
  const right = `${f(lib.relayed)} of ${f(lib.sent)} (${f(lib.perSecond)}/s) / ${lib.closed}${lib.same ? "" : " MISMATCH"}`;
  console.log(`${f(rate).padEnd(10)} ${left.padEnd(40)} ${right.padEnd(40)} ${(lib.relayed / Math.max(1, base.relayed)).toFixed(2)}×`);
}
if (failed) {
  console.error("bursts: the library's replicas did not apply every event identically");
  process.exit(1);
}
