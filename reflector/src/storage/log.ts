/*
 * Reading a session's message log back, and recovering it from a damaged tail.
 *
 * Why a damaged tail is recoverable, and what it can cost. Every put is atomic and durable (the
 * filesystem adapter appends it to its log in a checksummed batch that counts only once whole and synced;
 * PostgreSQL commits one upsert), and appends are made one at a time: the reflector relays — that
 * is, acknowledges — an entry only once the put of its segment has resolved, and starts the next
 * put only after that. So a write torn by a crash (a put in flight when the process or machine
 * died, on storage that failed to keep it atomic) can only be the last segment, and only entries
 * that nobody was ever sent. Damage found at the tail is therefore treated as a torn write: the log
 * is cut back to the last entry that reads correctly and the session continues from there. If the
 * damage was in fact disk corruption (or a hand-edited file) of a segment whose put had completed,
 * the cut also drops entries that had been relayed, and clients rejoin a session that is behind what they saw.
 * That is the price of keeping the session at all; every recovery is described
 * ({@link SessionRecovery}) so the reflector can log what was lost.
 *
 * Damage anywhere else cannot be a torn write, and cutting there would drop entries from the middle
 * of the log: that is refused for good (a SessionDamagedError) and left to the operator.
 */
import type { StreamEntry } from "@lockstep/protocol";
import type { BlobStore } from "./blob-store";
import { corrupt, decodeSegmentPrefix, encodeSegment } from "./records";

/** One stored log segment: its key and the seq of its first entry (from the key). */
export interface Segment {
  readonly key: string;
  readonly first: number;
}

/**
 * What loading a session cut from the end of its damaged log. Only entries from `firstLostSeq` on
 * are gone; the session continues from `firstLostSeq - 1`.
 */
export interface SessionRecovery {
  readonly sessionId: string;
  /** The first log segment that could not be read in full (or the one after a gap). */
  readonly key: string;
  /** What was wrong with it. */
  readonly reason: string;
  /**
   * Seq of the first entry that could not be read. Whether entries from there on had ever existed
   * (and how many) cannot be known: a segment damaged at its start may have held none worth keeping.
   */
  readonly firstLostSeq: number;
  /** The segment rewritten with only its readable entries, if the damage was inside one. */
  readonly rewritten: string | undefined;
  /** Segments deleted because nothing in them could be kept. */
  readonly lostSegments: readonly string[];
}

/** The log after the snapshot, read (and if need be recovered). */
export interface LogRead {
  /** Entries from `start` on, contiguous and in order. */
  readonly entries: StreamEntry[];
  /** Seq of the last entry (`start - 1` if there are none). */
  readonly lastSeq: number;
  /** What was cut from a damaged tail, or `undefined` if the log was sound. */
  readonly recovery: SessionRecovery | undefined;
}

const SEQ_NAME = /^[0-9]{16}$/;

/**
 * Log segment keys under `prefix` with their first seq, in seq order. Unexpected names are corrupt
 * (`strict`, when loading: something else wrote there) or skipped (when trimming).
 */
export function parseSegmentKeys(prefix: string, keys: readonly string[], strict: boolean): Segment[] {
  const segments: Segment[] = [];
  for (const key of keys) {
    const name = key.slice(prefix.length);
    const first = SEQ_NAME.test(name) ? Number(name) : 0;
    if (first >= 1 && Number.isSafeInteger(first)) segments.push({ key, first });
    else if (strict) throw corrupt(key, "a log segment's name must be its first seq as 16 digits");
  }
  // Zero-padding makes key order seq order already; sort anyway so a foreign adapter's order cannot matter.
  return segments.sort((a, b) => a.first - b.first);
}

/** Where the log stops reading correctly. */
interface Break {
  /** Index (in the segment list) of the first segment not wholly kept. */
  readonly index: number;
  /** How many leading entries of that segment are kept (0 after a gap: the segment starts too late). */
  readonly keep: number;
  /** Those entries, to rewrite the segment with. */
  readonly kept: readonly StreamEntry[];
  readonly reason: string;
  /** Whether the segment at `index` is intact but starts past a gap (so it is itself "later data"). */
  readonly gap: boolean;
}

/**
 * Reads the entries from seq `start` (the one after the snapshot) from `segments`. If the log is
 * damaged at its tail — one or more segments from the damage on, none of which holds valid entries —
 * it keeps every entry up to the last good one, makes the stored log say exactly that, and reports
 * the recovery. Without `repair` it writes nothing and returns `undefined` for such a tail instead,
 * so the caller can make sure no append runs meanwhile and call again.
 *
 * @throws {SessionDamagedError} if the damage is followed by a segment that holds entries (a damaged
 *   or missing segment in the middle of the log), which no cut can repair without losing them.
 */
export async function readLog(store: BlobStore, sessionId: string, segments: readonly Segment[], start: number, repair: boolean): Promise<LogRead | undefined> {
  const entries: StreamEntry[] = [];
  let expected = start;
  let previousTime: number | undefined;
  let covered = 0;
  let brk: Break | undefined;
  for (let i = 0; i < segments.length && brk === undefined; i++) {
    const { key, first } = segments[i] as Segment;
    const next = segments[i + 1];
    // Wholly covered by the snapshot: a trim interrupted by a crash left it behind.
    if (next !== undefined && next.first <= start) {
      covered = i + 1;
      continue;
    }
    if (first > expected) {
      brk = { index: i, keep: 0, kept: [], gap: true, reason: `the log jumps from seq ${expected - 1} to ${first}, so entries are missing` };
      break;
    }
    const bytes = await store.get(key);
    const { entries: decoded, problem } = bytes === undefined ? { entries: [], problem: "it was listed but could not be read" } : decodeSegmentPrefix(key, bytes);
    let reason = problem;
    let keep = decoded.length;
    for (let j = 0; j < decoded.length; j++) {
      const entry = decoded[j] as StreamEntry;
      const wrong =
        entry.seq !== first + j
          ? `entry ${j} has seq ${entry.seq}, expected ${first + j}`
          : entry.seq < start
            ? undefined
            : entry.seq !== expected
              ? `it overlaps the previous segment at seq ${entry.seq}`
              : previousTime !== undefined && entry.time < previousTime
                ? `time goes backwards at seq ${entry.seq} (${entry.time} < ${previousTime})`
                : undefined;
      if (wrong !== undefined) {
        reason = wrong;
        keep = j;
        break;
      }
      if (entry.seq < start) continue;
      entries.push(entry);
      previousTime = entry.time;
      expected++;
    }
    if (reason !== undefined) brk = { index: i, keep, kept: decoded.slice(0, keep), gap: false, reason };
  }
  if (brk === undefined) return { entries, lastSeq: expected - 1, recovery: undefined };

  const damagedKey = (segments[brk.index] as Segment).key;
  const after = segments.slice(brk.gap ? brk.index : brk.index + 1);
  for (const later of after) {
    if (await holdsEntries(store, later)) {
      const cut = `cutting the log back to seq ${expected - 1} would drop the entries from seq ${later.first} on`;
      throw corrupt(damagedKey, later.key === damagedKey ? `${brk.reason}; ${cut}` : `${brk.reason}; ${later.key} after it holds entries from seq ${later.first}, so ${cut}`);
    }
  }

  if (!repair) return undefined;

  // The repair, in an order where every intermediate state (if another crash interrupts it) loads
  // to exactly the same entries, so a second recovery cuts at the same seq:
  // 1. Segments the snapshot covers go first, as the next snapshot's trim would remove them: they
  //    are skipped only because a later segment exists, and deleting that one must not expose them.
  for (const segment of segments.slice(0, covered)) await store.delete(segment.key);
  // 2. The damaged segment's readable prefix replaces it, atomically, under its own key.
  let rewritten: string | undefined;
  if (!brk.gap && brk.keep > 0) {
    await store.put(damagedKey, encodeSegment(brk.kept));
    rewritten = damagedKey;
  }
  // 3. The rest: none of it holds valid entries (checked above without context), so whichever of
  //    them are still there after a crash read as damage again at the same place.
  const lostSegments: string[] = [];
  for (const segment of rewritten === undefined ? segments.slice(brk.index) : after) {
    await store.delete(segment.key);
    lostSegments.push(segment.key);
  }
  return {
    entries,
    lastSeq: expected - 1,
    recovery: { sessionId, key: damagedKey, reason: brk.reason, firstLostSeq: expected, rewritten, lostSegments },
  };
}

/**
 * Whether a segment after the damage holds valid entries: its first entry decodes and has the seq
 * its key says. Judged on the segment alone, never on what precedes it, so the verdict cannot
 * change while the repair deletes the segments before it.
 */
async function holdsEntries(store: BlobStore, segment: Segment): Promise<boolean> {
  const bytes = await store.get(segment.key);
  if (bytes === undefined) return false;
  const first = decodeSegmentPrefix(segment.key, bytes).entries[0];
  return first !== undefined && first.seq === segment.first;
}
