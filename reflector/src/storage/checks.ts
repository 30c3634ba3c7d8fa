import type { StreamEntry } from "@lockstep/protocol";
import { checkKey } from "./blob-store";
import { StorageError } from "./errors";
import { isCount, isStoredEntryType, type StoredSessionMeta, type StoredSnapshot } from "./records";

// Validation of what callers hand to SessionStore, so bad input fails before anything is written.

/** Returns `sessionId` if it can be one key segment, else throws a {@link StorageError}. */
export function checkSessionId(sessionId: string): string {
  checkKey(sessionId);
  if (sessionId.includes("/")) throw new StorageError(`invalid sessionId ${JSON.stringify(sessionId)}: it must not contain '/'`, { key: sessionId });
  return sessionId;
}

/** Throws a {@link StorageError} unless `meta` can be stored. */
export function checkMeta(meta: StoredSessionMeta): void {
  const problem =
    typeof meta.persistentId !== "string"
      ? "persistentId must be a string"
      : !(typeof meta.tps === "number" && Number.isFinite(meta.tps) && meta.tps > 0)
        ? "tps must be a positive number"
        : !(meta.verifier instanceof Uint8Array) || !(meta.check instanceof Uint8Array)
          ? "verifier and check must be Uint8Arrays"
          : !isCount(meta.createdAt)
            ? "createdAt must be a non-negative integer (wall-clock ms)"
            : undefined;
  if (problem !== undefined) throw new StorageError(`create(${meta.sessionId}): ${problem}`);
}

/** Throws a {@link StorageError} unless `snapshot` can be stored: counts, bytes, and distinct view ids. */
export function checkSnapshot(id: string, snapshot: StoredSnapshot): void {
  if (!isCount(snapshot.seq) || !isCount(snapshot.time) || !(snapshot.bytes instanceof Uint8Array)) {
    throw new StorageError(`putSnapshot(${id}): seq and time must be non-negative integers and bytes a Uint8Array`);
  }
  const views: unknown = snapshot.views;
  if (views === undefined) return;
  if (!Array.isArray(views) || views.some((view) => typeof view !== "string") || new Set(views).size !== views.length) {
    throw new StorageError(`putSnapshot(${id}): views must be an array of distinct view id strings (the views joined and not exited at the snapshot's seq)`);
  }
}

/**
 * Throws a {@link StorageError} unless `entries` continue a log ending at `lastSeq` without gaps,
 * with known types and non-decreasing times (from `minTime` on).
 */
export function checkAppend(id: string, lastSeq: number, minTime: number, entries: readonly StreamEntry[]): void {
  let expected = lastSeq + 1;
  let previousTime = minTime;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as StreamEntry;
    const problem = !isStoredEntryType(e.type)
      ? `has unknown type ${String(e.type)}`
      : e.seq !== expected
        ? `has seq ${String(e.seq)}, expected ${expected}: entries must continue the stored log without gaps (load() the session to learn its lastSeq)`
        : !isCount(e.time) || e.time < previousTime
          ? `has time ${String(e.time)}, below the previous entry's ${previousTime}: times must be non-negative and never decrease`
          : undefined;
    if (problem !== undefined) throw new StorageError(`appendEntries(${id}): entry ${i} ${problem}`);
    expected++;
    previousTime = e.time;
  }
}
