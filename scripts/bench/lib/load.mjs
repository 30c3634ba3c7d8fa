// The two loads the relay benches offer to joined groups of raw sockets (one group per session):
// saturating (every client sends as fast as its socket takes frames) and steady (a fixed total
// rate spread evenly over the clients, each timing its own messages back). The same code drives
// the baseline and the reflector: only the type of the frame a client receives back differs
// (the broadcast server returns the Send itself, the reflector a Relay), and in both the payload is
// the frame's last bytes.
import { encodeSend } from "@lockstep/protocol";
import { randomBytes } from "node:crypto";
import { now, percentile, sleep } from "./stats.mjs";

/** Sends `count` copies of `frame` on `ws`, pausing while more than 1 MiB waits in its buffer. */
async function pump(ws, frame, count) {
  for (let i = 0; i < count; i++) {
    ws.send(frame);
    if (ws.bufferedAmount > 1 << 20) await sleep(1);
  }
}

/**
 * Saturating load: every client sends `messages` frames of `payloadBytes` as fast as its socket
 * takes them; done when every client received every frame of its session (`relayType` frames).
 * Resolves with deliveries (frames received by clients) per second and the elapsed seconds.
 */
export async function saturate(groups, { messages, payloadBytes, relayType, timeoutMs = 120_000 }) {
  const all = groups.flat();
  let done = 0;
  let timer;
  const finished = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`saturating run: not every frame arrived within ${timeoutMs / 1000} s (${done}/${all.length} clients complete)`)), timeoutMs);
    for (const group of groups) {
      const expected = group.length * messages;
      for (const ws of group) {
        let got = 0;
        const onMessage = (data) => {
          if (data[1] !== relayType || ++got !== expected) return;
          ws.off("message", onMessage);
          if (++done === all.length) resolve();
        };
        ws.on("message", onMessage);
      }
    }
  });
  const frame = encodeSend(randomBytes(payloadBytes));
  const started = now();
  try {
    await Promise.all(all.map((ws) => pump(ws, frame, messages)));
    await finished;
  } finally {
    clearTimeout(timer);
  }
  const seconds = (now() - started) / 1000;
  const deliveries = groups.reduce((sum, g) => sum + g.length * g.length * messages, 0);
  return { deliveriesPerSecond: deliveries / seconds, seconds };
}

/**
 * Steady load: `rate` messages per second offered in total, spread evenly over all clients (client
 * i sends messages i, i + n, i + 2n … of one global schedule, so sends are staggered), for
 * `warmupSeconds` (not recorded) plus `seconds`. Each message is timed from its client's
 * `ws.send` to that client's own receipt of it (`relayType` frame); payload: client index (u32),
 * send time (f64), padding. Afterwards waits up to `drainMs` for the messages still on their way.
 * Resolves with p50/p99/p99.9/max latency in ms, samples, lost (sent, never back) and how late
 * the sender loop ran behind its schedule (p99, max), which bounds what the harness itself adds.
 */
export async function steady(groups, { rate, seconds, warmupSeconds, payloadBytes, relayType, drainMs = 5000 }) {
  const clients = groups.flat();
  const latencies = [];
  let recordFrom = Infinity;
  let outstanding = 0;
  const listeners = clients.map((ws, index) => {
    const onMessage = (data) => {
      if (data[1] !== relayType) return;
      const at = data.length - payloadBytes;
      if (data.readUInt32BE(at) !== index) return;
      const sentAt = data.readDoubleBE(at + 4);
      outstanding--;
      if (sentAt >= recordFrom) latencies.push(now() - sentAt);
    };
    ws.on("message", onMessage);
    return onMessage;
  });
  const payload = Buffer.alloc(payloadBytes, 0x61);
  const interval = 1000 / rate;
  const lateness = [];
  const started = now();
  const warmEnd = started + warmupSeconds * 1000;
  const end = warmEnd + seconds * 1000;
  let m = 0;
  for (;;) {
    const t = now();
    if (t >= end) break;
    if (recordFrom === Infinity && t >= warmEnd) recordFrom = t;
    const due = Math.min(Math.floor((t - started) / interval) + 1, Math.ceil(((end - started) / 1000) * rate));
    while (m < due) {
      const index = m % clients.length;
      const sentAt = now();
      payload.writeUInt32BE(index, 0);
      payload.writeDoubleBE(sentAt, 4);
      clients[index].send(encodeSend(payload));
      outstanding++;
      if (sentAt >= warmEnd) lateness.push(sentAt - (started + m * interval));
      m++;
    }
    await sleep(started + m * interval - now());
  }
  const sendSeconds = (now() - started) / 1000;
  const drainEnd = now() + drainMs;
  while (outstanding > 0 && now() < drainEnd) await sleep(5);
  clients.forEach((ws, i) => ws.off("message", listeners[i]));
  latencies.sort((a, b) => a - b);
  lateness.sort((a, b) => a - b);
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    p999: percentile(latencies, 99.9),
    max: latencies.at(-1) ?? NaN,
    samples: latencies.length,
    lost: outstanding,
    offeredPerSecond: m / sendSeconds,
    lateP99: percentile(lateness, 99),
    lateMax: lateness.at(-1) ?? NaN,
  };
}
