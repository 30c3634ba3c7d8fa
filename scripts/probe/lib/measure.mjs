// Figures taken from outside the reflector: Send→Relay latency of an honest pair, and what its data
// directory holds on disk.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { MessageType, decodeServerMessage, encodeSend } from "@lockstep/protocol";
import { newIdentity, rawJoin } from "./raw.mjs";
import { now, sleep, until } from "./time.mjs";

/** The `p`th percentile of ascending `sorted` (NaN if empty). */
export const percentile = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);

/** A sender and a receiver in a session of their own: Send at `rate`/s, time from Send to Relay. */
export async function latencyPair(url) {
  const id = newIdentity();
  const sentAt = new Map();
  const latencies = [];
  await rawJoin(url, id, {
    onFrame: (type, data) => {
      if (type !== MessageType.Relay) return;
      const { payload } = decodeServerMessage(data);
      const n = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
      const t = sentAt.get(n);
      if (t === undefined) return;
      sentAt.delete(n);
      latencies.push(now() - t);
    },
  });
  const sender = await rawJoin(url, id);
  let n = 0;
  return {
    /** Sends for `ms` at `rate`/s; resolves with p50/p99 (ms), the sample count and how many never came back. */
    async measure(ms, rate = 100) {
      latencies.length = 0;
      sentAt.clear();
      const end = now() + ms;
      let next = now();
      while (now() < end) {
        const payload = Buffer.alloc(4);
        payload.writeUInt32BE(n);
        sentAt.set(n++, now());
        sender.send(encodeSend(payload));
        next += 1000 / rate;
        await sleep(next - now());
      }
      await until(() => sentAt.size === 0, 3000);
      const sorted = [...latencies].sort((a, b) => a - b);
      return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), samples: sorted.length, lost: sentAt.size };
    },
  };
}

/** Total size of the files under `dir`: `bytes` (apparent) and `allocated` (blocks on disk). */
export function dirUsage(dir) {
  const usage = { bytes: 0, allocated: 0 };
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return usage;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    try {
      const st = statSync(p);
      usage.allocated += st.blocks * 512;
      if (e.isDirectory()) {
        const sub = dirUsage(p);
        usage.bytes += sub.bytes;
        usage.allocated += sub.allocated;
      } else usage.bytes += st.size;
    } catch {
      // removed meanwhile
    }
  }
  return usage;
}

