#!/usr/bin/env node
// Persistence benchmark: time from persistSession to the reflector's durable acknowledgement, for
// a 10 KB and a 1 MB document, on the filesystem store and on PostgreSQL.
//   - "commit→ack": from the moment the model's save was taken (right after the event that made
//     it, with persistDelay 0) until the PersistAck: JSON + hash + encrypt + upload + store + ack;
//   - "publish→ack": the same plus the event's relay round trip.
// The baseline, measured in the same run on the same store, is one raw BlobStore.put of the same
// number of bytes (what durability costs at the storage layer alone).
//
//   node scripts/build.mjs && node scripts/bench/persist.mjs [--runs 20] [--pg-url URL] [--no-pg]
// Without --pg-url (or LOCKSTEP_PG_URL) it starts a throwaway PostgreSQL with scripts/postgres.sh.
import { Model, Session, View } from "@lockstep/client";
import { PersistStore, createFsStore, createPostgresStore, startReflector, silentLogger } from "@lockstep/reflector";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "20" }, "pg-url": { type: "string" }, "no-pg": { type: "boolean", default: false } },
});
const RUNS = Number(values.runs);
const SIZES = [10 * 1024, 1024 * 1024];
const root = join(import.meta.dirname, "..", "..");

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (xs) => percentile([...xs].sort((a, b) => a - b), 50);
const p90 = (xs) => percentile([...xs].sort((a, b) => a - b), 90);
const ms = (x) => `${x.toFixed(1)} ms`;

class BenchDoc extends Model {
  static persistDelay = 0;
  init() {
    this.doc = "";
    this.subscribe("doc", "write", this.write);
  }
  write({ size, salt }) {
    // The document is made in model code from a small event (events are capped at 256 KiB).
    const chunk = `${salt}:${"lorem ipsum dolor sit amet ".repeat(4)}`;
    this.doc = chunk.repeat(Math.ceil(size / chunk.length)).slice(0, size);
    this.persistSession(() => ({ doc: this.doc }));
  }
}
BenchDoc.register("BenchDoc");

async function measure(label, blobs) {
  const reflector = await startReflector({ port: 0, logger: silentLogger, storage: blobs });
  const session = await Session.join({ appId: "bench.persist", name: label, password: "bench", model: BenchDoc, view: View, reflector: reflector.url, step: "manual" });
  const rows = [];
  try {
    for (const size of SIZES) {
      const commitToAck = [];
      const publishToAck = [];
      for (let i = 0; i < RUNS + 2; i++) {
        const salt = `${label}-${size}-${i}`;
        const t0 = performance.now();
        let t1 = 0;
        const applied = new Promise((resolve) => {
          const stop = session.afterEntry(() => {
            if (!session.model.doc.startsWith(salt)) return;
            t1 = performance.now();
            stop();
            resolve();
          });
        });
        session.view.publish("doc", "write", { size, salt });
        while (t1 === 0) {
          session.step();
          await new Promise((r) => setImmediate(r));
        }
        await applied;
        await session.flushPersistence(); // resolves on this upload's PersistAck
        const t2 = performance.now();
        if (i >= 2) {
          commitToAck.push(t2 - t1);
          publishToAck.push(t2 - t0);
        }
      }
      // Baseline: a raw put of the same number of bytes on the same store.
      const raw = [];
      const bytes = new Uint8Array(size + 41).fill(7);
      for (let i = 0; i < RUNS; i++) {
        const t = performance.now();
        await blobs.put(`bench/raw/${i}`, bytes);
        raw.push(performance.now() - t);
        await blobs.delete(`bench/raw/${i}`);
      }
      rows.push({ label, size, commitToAck, publishToAck, raw });
    }
    const versions = (await new PersistStore(blobs).versions(session.persistentId)).length;
    console.error(`  (${label}: ${versions} versions kept of the slot, as configured)`);
  } finally {
    await session.leave();
    await reflector.close();
  }
  return rows;
}

const results = [];
const dir = mkdtempSync(join(tmpdir(), "lockstep-bench-persist-"));
// Not inside `dir` (mode 0700): the server runs as the postgres user, which must reach its directory.
const pgDir = join(tmpdir(), `lockstep-bench-pg-${process.pid}`);
try {
  results.push(...(await measure("fs", await createFsStore(join(dir, "fs")))));
  let pgUrl = values["pg-url"] ?? process.env.LOCKSTEP_PG_URL;
  let startedPg = false;
  if (!values["no-pg"]) {
    if (pgUrl === undefined) {
      pgUrl = execFileSync("bash", [join(root, "scripts", "postgres.sh"), "start", pgDir], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
      startedPg = true;
    }
    try {
      results.push(...(await measure("postgres", await createPostgresStore({ connectionString: pgUrl, table: `bench_${process.pid}` }))));
    } finally {
      if (startedPg) execFileSync("bash", [join(root, "scripts", "postgres.sh"), "stop", pgDir], { stdio: "inherit" });
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(`persistSession → durable acknowledgement (${RUNS} runs each; median / p90)`);
console.log("store     size     commit→ack              publish→ack             raw put (baseline)      ratio (commit→ack ÷ raw put, medians)");
for (const r of results) {
  const size = r.size >= 1024 * 1024 ? `${r.size / 1024 / 1024} MB` : `${r.size / 1024} KB`;
  console.log(
    `${r.label.padEnd(9)} ${size.padEnd(8)} ${`${ms(median(r.commitToAck))} / ${ms(p90(r.commitToAck))}`.padEnd(23)} ${`${ms(median(r.publishToAck))} / ${ms(p90(r.publishToAck))}`.padEnd(23)} ${`${ms(median(r.raw))} / ${ms(p90(r.raw))}`.padEnd(23)} ${(median(r.commitToAck) / median(r.raw)).toFixed(2)}×`,
  );
}
