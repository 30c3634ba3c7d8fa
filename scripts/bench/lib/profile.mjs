// Summaries of V8 CPU profiles (`node --cpu-prof` writes *.cpuprofile): self time per function.
import { readFileSync } from "node:fs";
import { basename } from "node:path";

/**
 * The functions with the most self time in the profile at `path`: `{ totalMs, idleMs, top: [{ name,
 * where, ms, share }] }`, share being of the non-idle time. Functions are merged by name and place.
 */
export function selfTimes(path, count = 15) {
  const profile = JSON.parse(readFileSync(path, "utf8"));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; sample i's own duration is the next delta.
    const us = deltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + us);
  }
  const merged = new Map();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const name = functionName || "(anonymous)";
    totalUs += us;
    if (name === "(idle)") {
      idleUs += us;
      continue;
    }
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : "";
    const key = `${name} ${where}`;
    const entry = merged.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    merged.set(key, entry);
  }
  const busyUs = totalUs - idleUs;
  const top = [...merged.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, count)
    .map((e) => ({ name: e.name, where: e.where, ms: e.us / 1000, share: busyUs > 0 ? e.us / busyUs : 0 }));
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, top };
}

/** The part of a script URL that says where it is: the package (dist bundle, ws, node internals) and file. */
function shortUrl(url) {
  const path = url.replace(/^file:\/\//, "");
  const inModules = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(path);
  if (inModules) return `${inModules[1]}/${inModules[2]}`;
  const inRepo = /\/(reflector|packages\/[^/]+|scripts)\/(.*)$/.exec(path);
  if (inRepo) return `${inRepo[1]}/${inRepo[2]}`;
  return path.startsWith("node:") ? path : basename(path);
}

/** Lines for a report: the busy time and the top functions of the profile at `path`. */
export function formatSelfTimes(path, count = 15) {
  const { totalMs, idleMs, top } = selfTimes(path, count);
  const lines = [`  ${basename(path)}: ${(totalMs / 1000).toFixed(1)} s profiled, ${((totalMs - idleMs) / 1000).toFixed(1)} s busy; top self time:`];
  for (const e of top) lines.push(`    ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(6)} ms  ${e.name}  ${e.where}`);
  return lines;
}
