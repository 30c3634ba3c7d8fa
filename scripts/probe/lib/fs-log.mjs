// Reading the filesystem store's log from outside (scripts only; the reflector may be running, so
// its lock forbids opening the store). The format is in reflector/src/storage/fs-log-format.ts:
// segments <dataDir>/@log/<8 digits>.seg of batches of records; a record is a 16-byte header
// (u8 0xA7, u8 kind: 1 put / 2 tombstone, u16 key length, u32 value length, two CRCs), the key in
// ASCII, then the value. Records written are in the file (and survive kill -9) once the flush's
// write returned; these helpers only look for keys, so a partial batch may show up too.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const RECORD_MAGIC = 0xa7;
const HEADER = 16;

/** The segment files of a data directory, oldest first (none before the store first opened). */
export function segmentFiles(dataDir) {
  const dir = join(dataDir, "@log");
  try {
    return readdirSync(dir).filter((n) => /^[0-9]{8}\.seg$/.test(n)).sort().map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/** Every record whose key matches `pattern` (a global RegExp over the latin1 text), in log order: { file, at, key, kind, valueAt, valueLength }. */
export function findRecords(dataDir, pattern) {
  const found = [];
  for (const file of segmentFiles(dataDir)) {
    const buf = readFileSync(file);
    const text = buf.toString("latin1");
    for (const m of text.matchAll(pattern)) {
      const keyAt = m.index;
      const at = keyAt - HEADER;
      if (at < 0 || buf[at] !== RECORD_MAGIC || buf.readUInt16LE(at + 2) !== m[0].length) continue;
      found.push({ file, at, key: m[0], kind: buf[at + 1], valueAt: keyAt + m[0].length, valueLength: buf.readUInt32LE(at + 4), match: m });
    }
  }
  return found;
}

/** Whether `key`'s newest record is a put. */
export function hasKey(dataDir, key) {
  const records = findRecords(dataDir, new RegExp(escape(key), "g")).filter((r) => r.key === key);
  return records.at(-1)?.kind === 1;
}

/** The ids of the sessions stored in a data directory (their meta record's newest version is a put). */
export function storedSessionIds(dataDir) {
  const last = new Map();
  for (const r of findRecords(dataDir, /sessions\/([A-Za-z0-9_-]+)\/meta/g)) last.set(r.match[1], r.kind);
  return [...last].filter(([, kind]) => kind === 1).map(([id]) => id);
}

/** Damages the value of `key`'s newest record in the log file itself (as disk corruption would): flips a byte of it. */
export function damageOnDisk(dataDir, key) {
  const records = findRecords(dataDir, new RegExp(escape(key), "g")).filter((r) => r.key === key && r.kind === 1 && r.valueLength > 0);
  const r = records.at(-1);
  if (!r) throw new Error(`no stored value of ${key} in ${join(dataDir, "@log")}`);
  const buf = readFileSync(r.file);
  buf[r.valueAt + Math.floor(r.valueLength / 2)] ^= 0x20;
  writeFileSync(r.file, buf);
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
