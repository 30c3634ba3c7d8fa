#!/usr/bin/env node
// Crypto benchmark (issue 15), the client's envelopes (packages/client/src/session/crypto.ts):
//   - bulk data, 10 MB and 1 MB of random bytes: seal and open MB/s of a version-1 envelope
//     (tweetnacl XSalsa20-Poly1305 secretbox: the baseline, what snapshots and persisted data used
//     before) and of a version-2 envelope (WebCrypto AES-256-GCM: sealBulk / openBulk), median of
//     --iterations after warm-up; each round runs every step in a rotating order, twice, timing the
//     second (the first absorbs the previous step's garbage); ratio v2 / v1 in the same run.
//     Also openBulk of a version-1 envelope (data stored by an earlier release): the tweetnacl cost.
//   - small messages, 100 B (a publish's payload): seal() ops/s with one getRandomValues call per
//     24-byte nonce (the baseline: the old code path, the same secretbox) and with nonces cut from
//     the pooled buffer (NoncePool, the default); ratio pooled / baseline, and µs per seal.
//     And a 100 B seal of each version (v1 stays for small payloads: is it the faster there?).
//     And 100 B seal and open through tweetnacl's convenience API (nacl.secretbox and its open, the
//     code path before: two fresh buffers and a JS copy loop per call) against seal() and open()
//     now (its low-level calls on reused buffers), alternated in rounds.
//   - PBKDF2 (the master key a join derives once), for scale.
// The client's crypto module is bundled from source with esbuild at run time (it is not exported
// by the package); nothing else is needed (no build, no network).
//
//   node scripts/bench/crypto.mjs [--iterations 7] [--ops 200000] [--quick]
// --quick  the short form for CI (3 iterations, 60,000 small seals; about 10 s). Exit code 1 only if
//          a round trip fails (never on timing).
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { importFromSource } from "./lib/from-source.mjs";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "7" },
    ops: { type: "string", default: "200000" },
    quick: { type: "boolean", default: false },
  },
});
const ITERATIONS = values.quick ? 3 : Number(values.iterations);
const OPS = values.quick ? 60_000 : Number(values.ops);
for (const [flag, n] of [["--iterations", ITERATIONS], ["--ops", OPS]]) {
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`crypto bench: ${flag} must be a positive integer`);
    process.exit(2);
  }
}
const WARMUP = 2;
const DEADLINE_MS = 120_000;
setTimeout(() => {
  console.error(`crypto bench: not done after ${DEADLINE_MS / 1000} s, giving up`);
  process.exit(1);
}, DEADLINE_MS).unref();

// Each timed step starts from a collected heap: it pays for its own garbage, not the last one's.
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc");


const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const now = () => performance.now();
const sameBytes = (a, b) => a.length === b.length && Buffer.compare(a, b) === 0;

function randomBytes(n) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65_536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65_536)));
  return out;
}

const c = await importFromSource("packages/client/src/session/crypto.ts");
const { nacl } = await importFromSource({ contents: 'import nacl from "./packages/client/node_modules/tweetnacl/nacl-fast.js"; export { nacl };' });
const box = randomBytes(32);
const aes = await crypto.subtle.importKey("raw", randomBytes(32), "AES-GCM", false, ["encrypt", "decrypt"]);
const bulkKey = { box, aes };

/** Median ms of seal and open per variant, in an order that rotates round by round. */
async function bulkRun(size) {
  const plain = randomBytes(size);
  const env1 = c.seal(box, plain);
  const env2 = await c.sealBulk(bulkKey, plain);
  if (env1[0] !== 1 || env2[0] !== 2) throw new Error("unexpected envelope versions");
  const steps = {
    v1Seal: async () => c.seal(box, plain),
    v1Open: async () => c.open(box, env1),
    v2Seal: () => c.sealBulk(bulkKey, plain),
    v2Open: () => c.openBulk(bulkKey, env2),
    v1ViaOpenBulk: () => c.openBulk(bulkKey, env1),
  };
  const names = Object.keys(steps);
  const t = Object.fromEntries(names.map((k) => [k, []]));
  for (let i = 0; i < WARMUP + ITERATIONS; i++) {
    // Collected once per round: right before each step, the collector's leftover work would land on
    // tweetnacl's large allocations (a 3× penalty at 1 MB), and it is not what a client sees.
    collectGarbage();
    for (let j = 0; j < names.length; j++) {
      const name = names[(i + j) % names.length];
      // Twice, the second timed: the first absorbs what the step before left (collector work
      // after large, externally allocated WebCrypto results).
      await steps[name]();
      const t0 = now();
      const out = await steps[name]();
      const ms = now() - t0;
      if (name.endsWith("Open") || name === "v1ViaOpenBulk" ? !sameBytes(out, plain) : out.length !== plain.length + (name === "v1Seal" ? 41 : 29)) {
        throw new Error(`${name} gave the wrong bytes`);
      }
      if (i >= WARMUP) t[name].push(ms);
    }
  }
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
}

/** ns per 100-byte seal: the old nonce path (a getRandomValues call each) vs the pool, alternated in rounds. */
function smallRun() {
  const plain = randomBytes(100);
  const perCall = { take: (into) => void crypto.getRandomValues(into) };
  const pooled = new c.NoncePool();
  const ROUNDS = 9;
  const per = Math.ceil(OPS / ROUNDS);
  const base = [];
  const pool = [];
  for (let r = -2; r < ROUNDS; r++) {
    // Rounds -2 and -1 warm both up; the order alternates.
    collectGarbage();
    const time = (nonces) => {
      const t0 = now();
      for (let i = 0; i < per; i++) c.seal(box, plain, nonces);
      return ((now() - t0) * 1e6) / per;
    };
    let baseNs;
    let poolNs;
    if (r % 2 === 0) {
      baseNs = time(perCall);
      poolNs = time(pooled);
    } else {
      poolNs = time(pooled);
      baseNs = time(perCall);
    }
    if (r >= 0) {
      base.push(baseNs);
      pool.push(poolNs);
    }
  }
  // The default pool (what the Publisher's seal() uses) gives the same bytes layout.
  if (c.open(box, c.seal(box, plain)).length !== 100) throw new Error("seal with the default pool failed");
  return { baseNs: median(base), poolNs: median(pool), per, rounds: ROUNDS };
}

/** µs per 100-byte seal, one after the other: v1 (tweetnacl, pooled nonce) vs v2 (WebCrypto AES-GCM, awaited). */
async function smallVersionsRun() {
  const plain = randomBytes(100);
  const n = Math.max(1000, Math.ceil(OPS / 20));
  const v1 = [];
  const v2 = [];
  for (let r = -1; r < 5; r++) {
    collectGarbage();
    let t0 = now();
    for (let i = 0; i < n; i++) c.seal(box, plain);
    const a = now() - t0;
    collectGarbage();
    t0 = now();
    for (let i = 0; i < n; i++) await c.sealBulk(bulkKey, plain);
    const b = now() - t0;
    if (r >= 0) {
      v1.push((a * 1000) / n);
      v2.push((b * 1000) / n);
    }
  }
  return { v1: median(v1), v2: median(v2), n };
}

/** µs per 100-byte seal and open: the convenience API (the code before) vs seal()/open() now, alternated in rounds. */
function smallApiRun() {
  const plain = randomBytes(100);
  const nonces = new c.NoncePool();
  const before = {
    seal: () => {
      const nonce = new Uint8Array(24);
      nonces.take(nonce);
      const sealed = nacl.secretbox(plain, nonce, box);
      const out = new Uint8Array(25 + sealed.length);
      out[0] = 1;
      out.set(nonce, 1);
      out.set(sealed, 25);
      return out;
    },
    open: (env) => nacl.secretbox.open(env.subarray(25), env.subarray(1, 25), box),
  };
  const now_ = { seal: () => c.seal(box, plain, nonces), open: (env) => c.open(box, env) };
  const env = c.seal(box, plain);
  if (!sameBytes(before.open(env), plain) || !sameBytes(now_.open(before.seal()), plain)) throw new Error("the two secretbox paths disagree");
  const n = Math.max(2000, Math.ceil(OPS / 10));
  const t = { beforeSeal: [], nowSeal: [], beforeOpen: [], nowOpen: [] };
  const time = (f) => {
    const t0 = now();
    for (let i = 0; i < n; i++) f();
    return ((now() - t0) * 1000) / n;
  };
  for (let r = -2; r < 7; r++) {
    collectGarbage();
    const order = r % 2 === 0 ? [before, now_] : [now_, before];
    const out = {};
    for (const api of order) {
      out[api === before ? "beforeSeal" : "nowSeal"] = time(api.seal);
      out[api === before ? "beforeOpen" : "nowOpen"] = time(() => api.open(env));
    }
    if (r >= 0) for (const k of Object.keys(t)) t[k].push(out[k]);
  }
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
}

async function pbkdf2Run() {
  const times = [];
  for (let i = 0; i < 3; i++) {
    const t0 = now();
    await c.deriveMasterKey("bench password", `bench-persistent-id-${i}-${Math.random()}`);
    times.push(now() - t0);
  }
  return median(times);
}

const fmt = (n, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const MB = 1e6;
console.log(`crypto bench: median of ${ITERATIONS} after ${WARMUP} warm-up (bulk), ${fmt(OPS)} small seals per variant; Node ${process.version}`);
console.log("");
const header = (a, b, c2, d) => console.log(`${a.padEnd(30)}${b.padStart(16)} ${c2.padStart(16)} ${d.padStart(10)}`);
const s = smallRun();
header("100 B seal (v1)", "nonce per call", "pooled nonces", "pool/base");
header("seals/s", fmt(1e9 / s.baseNs), fmt(1e9 / s.poolNs), (s.baseNs / s.poolNs).toFixed(2));
header("µs per seal", fmt(s.baseNs / 1000, 2), fmt(s.poolNs / 1000, 2), (s.poolNs / s.baseNs).toFixed(2));
const sv = await smallVersionsRun();
header("µs per 100 B seal, by version", fmt(sv.v1, 2), fmt(sv.v2, 2), (sv.v2 / sv.v1).toFixed(2));
console.log("  (small payloads stay version 1: tweetnacl, synchronous, beats an awaited WebCrypto call)");
const api = smallApiRun();
header("100 B v1, µs", "convenience API", "low-level now", "now/before");
header("seal", fmt(api.beforeSeal, 2), fmt(api.nowSeal, 2), (api.nowSeal / api.beforeSeal).toFixed(2));
header("open", fmt(api.beforeOpen, 2), fmt(api.nowOpen, 2), (api.nowOpen / api.beforeOpen).toFixed(2));
console.log("");
header("bulk data", "v1 tweetnacl", "v2 AES-GCM", "v2/v1");
for (const size of [10 * MB, 1 * MB]) {
  const r = await bulkRun(size);
  const label = `${size / MB} MB`;
  const mbps = (ms) => size / MB / (ms / 1000);
  header(`${label} seal (MB/s)`, fmt(mbps(r.v1Seal)), fmt(mbps(r.v2Seal)), (mbps(r.v2Seal) / mbps(r.v1Seal)).toFixed(2));
  header(`${label} open (MB/s)`, fmt(mbps(r.v1Open)), fmt(mbps(r.v2Open)), (mbps(r.v2Open) / mbps(r.v1Open)).toFixed(2));
  header(`${label} seal (ms)`, fmt(r.v1Seal, 1), fmt(r.v2Seal, 1), (r.v2Seal / r.v1Seal).toFixed(2));
  header(`${label} open (ms)`, fmt(r.v1Open, 1), fmt(r.v2Open, 1), (r.v2Open / r.v1Open).toFixed(2));
  // Both columns tweetnacl: open(), and openBulk() of a version-1 envelope (bulk data an earlier release stored).
  header(`${label} v1: open | openBulk (MB/s)`, fmt(mbps(r.v1Open)), fmt(mbps(r.v1ViaOpenBulk)), (mbps(r.v1ViaOpenBulk) / mbps(r.v1Open)).toFixed(2));
}
console.log("");
console.log(`PBKDF2 master key (100,000 iterations, once per join): ${fmt(await pbkdf2Run(), 1)} ms`);
console.log("target: bulk seal and open ≥ 300 MB/s (v2)");
