#!/usr/bin/env node
// Reflector relay benchmark, speaking the wire protocol directly (no client library): S sessions ×
// C clients on loopback, every client sends M Send frames of P bytes as fast as the socket takes
// them, and the run ends when every client has received every relayed frame of its session.
// The baseline is a raw `ws` broadcast server (a room per session, each message written to every
// member, no ordering, time stamps or storage) measured in the same run, alternating with the
// reflector for R rounds. Printed: deliveries per second (frames received by clients) and the
// ratio reflector ÷ baseline, best and median of the rounds.
//
// The reflector runs with its resource limits enforced but raised past what the load needs (the
// bench measures what checking them costs, not a flood being refused).
//
//   node scripts/bench/reflector.mjs [--sessions 1] [--clients 10] [--messages 2000] [--payload 100] [--rounds 3] [--storage memory|fs]
import { startReflector, silentLogger, createFsStore } from "@lockstep/reflector";
import { MessageType, encodeClientMessage, encodeJoinAuth, encodeSend } from "@lockstep/protocol";
import { WebSocket, WebSocketServer } from "ws";
import { parseArgs } from "node:util";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const { values } = parseArgs({
  options: {
    sessions: { type: "string", default: "1" },
    clients: { type: "string", default: "10" },
    messages: { type: "string", default: "2000" },
    payload: { type: "string", default: "100" },
    rounds: { type: "string", default: "3" },
    storage: { type: "string", default: "memory" },
  },
});
const SESSIONS = Number(values.sessions);
const CLIENTS = Number(values.clients);
const MESSAGES = Number(values.messages);
const PAYLOAD = Number(values.payload);
const ROUNDS = Number(values.rounds);

const id = () => randomBytes(16).toString("base64url");
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Opens `n` sockets to `url`; resolves with them once open. */
async function openSockets(url, n) {
  return Promise.all(
    Array.from({ length: n }, () => new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.binaryType = "nodebuffer";
      ws.once("open", () => resolve(ws));
      ws.once("error", reject);
    })),
  );
}

/** Sends `count` frames on `ws`, pausing while its buffer is full. */
async function pump(ws, frame, count) {
  for (let i = 0; i < count; i++) {
    ws.send(frame);
    if (ws.bufferedAmount > 1 << 20) await new Promise((r) => setTimeout(r, 1));
  }
}

/** One measured run: every client sends MESSAGES frames; resolves with deliveries per second. */
async function run(groups, frame, isRelay) {
  const expected = CLIENTS * MESSAGES;
  let done = 0;
  const all = groups.flat();
  const finished = new Promise((resolve) => {
    for (const ws of all) {
      let got = 0;
      ws.removeAllListeners("message");
      ws.on("message", (data) => {
        if (isRelay && data[1] !== MessageType.Relay) return;
        if (++got === expected && ++done === all.length) resolve();
      });
    }
  });
  const started = performance.now();
  await Promise.all(all.map((ws) => pump(ws, frame, MESSAGES)));
  await finished;
  const seconds = (performance.now() - started) / 1000;
  return (all.length * expected) / seconds;
}

// ---------------------------------------------------------------- raw ws broadcast baseline
async function baselineRound() {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate: false, clientTracking: false });
  await new Promise((r) => wss.once("listening", r));
  const rooms = new Map();
  wss.on("connection", (ws, req) => {
    const room = req.url;
    let members = rooms.get(room);
    if (!members) rooms.set(room, (members = new Set()));
    members.add(ws);
    ws.on("message", (data) => {
      for (const m of members) m.send(data);
    });
  });
  const url = `ws://127.0.0.1:${wss.address().port}`;
  const groups = [];
  for (let s = 0; s < SESSIONS; s++) groups.push(await openSockets(`${url}/room${s}`, CLIENTS));
  const rate = await run(groups, encodeSend(randomBytes(PAYLOAD)), false);
  for (const ws of groups.flat()) ws.terminate();
  await new Promise((r) => wss.close(r));
  return rate;
}

// ---------------------------------------------------------------- reflector
async function reflectorRound() {
  const dir = values.storage === "fs" ? mkdtempSync(join(tmpdir(), "lockstep-bench-")) : undefined;
  const many = 1e9;
  const reflector = await startReflector({
    port: 0,
    logger: silentLogger,
    ...(dir ? { dataDir: dir } : {}),
    snapshots: { everyMessages: many, everyMs: 2 ** 31 - 1 },
    limits: { maxMessagesPerSecond: many, messageBurst: many, maxBytesPerSecond: many, byteBurst: many },
    caps: { maxConnectionsPerAddress: 100_000, newSessionsPerAddressPerMinute: 100_000, newSessionsPerMinute: 100_000 },
  });
  const groups = [];
  for (let s = 0; s < SESSIONS; s++) {
    const sessionId = id();
    const sockets = await openSockets(reflector.url, CLIENTS);
    const token = randomBytes(32);
    const auth = encodeJoinAuth({ token, verifier: createHash("sha256").update(token).digest(), check: randomBytes(48), slot: "", slotToken: new Uint8Array(0), appToken: "", appId: "", name: "" });
    for (const ws of sockets) {
      const synced = new Promise((resolve) => ws.once("message", resolve));
      ws.send(encodeClientMessage({ type: MessageType.Join, sessionId, persistentId: sessionId, viewId: id(), tps: 20, auth, viewData: new Uint8Array(0) }));
      await synced;
    }
    // Let every view-join reach every member before measuring.
    await new Promise((r) => setTimeout(r, 50));
    groups.push(sockets);
  }
  const rate = await run(groups, encodeSend(randomBytes(PAYLOAD)), true);
  for (const ws of groups.flat()) ws.terminate();
  await reflector.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  return rate;
}

const base = [];
const mine = [];
for (let r = 0; r < ROUNDS; r++) {
  base.push(await baselineRound());
  mine.push(await reflectorRound());
}
const ratios = mine.map((m, i) => m / base[i]);
const fmt = (n) => Math.round(n).toLocaleString("en-US");
console.log(`reflector relay bench: ${SESSIONS} session(s) × ${CLIENTS} clients, ${MESSAGES} Send frames of ${PAYLOAD} bytes per client, ${values.storage} storage, ${ROUNDS} rounds alternating, Node ${process.version}`);
console.log(`deliveries/s      baseline (raw ws)  reflector   reflector/baseline`);
console.log(`median            ${fmt(median(base)).padStart(17)}  ${fmt(median(mine)).padStart(9)}   ${median(ratios).toFixed(2)}`);
console.log(`best              ${fmt(Math.max(...base)).padStart(17)}  ${fmt(Math.max(...mine)).padStart(9)}   ${Math.max(...ratios).toFixed(2)}`);
console.log(`rounds (ratio)    ${ratios.map((x) => x.toFixed(2)).join(" ")}`);
process.exit(0);
