import { StorageError } from "./errors";

/*
 * The keys of SessionStore's layout (described at the top of session-store.ts), and what the store
 * caches of each session it serves.
 */

const SEQ_DIGITS = 16;

/** What this process knows about a session's stored stream. Mutated only by writes that succeeded. */
export interface Tail {
  lastSeq: number;
  lastTime: number;
  snapshotSeq: number;
  /** Whether `lastTime` is an entry's time (appends must not go below it) or only the snapshot's. */
  timeFromEntry: boolean;
  /**
   * The first seqs of the log segments stored, ascending (those an append still writes included), so
   * a snapshot's trim lists nothing (a thousand keys to parse and sort per snapshot at 2,000
   * messages/s). `undefined` after a repair cut the log, or after forget() with an operation under
   * way: trim lists then.
   */
  segments: number[] | undefined;
  /** Appends issued and not settled (on an orderedWrites store they outlive the append queue's turn). */
  writes: number;
}

/** What a tail is made from: a session as read (a StoredSession), and the first seqs of its log segments as listed. */
export interface Read<S extends Loaded = Loaded> {
  readonly session: S;
  readonly segments: number[] | undefined;
}

/** The part of a StoredSession a tail is made from. */
interface Loaded {
  readonly lastSeq: number;
  readonly lastTime: number;
  readonly snapshot: { readonly seq: number } | undefined;
  readonly entries: readonly unknown[];
}

export const metaKey = (id: string): string => `sessions/${id}/meta`;
export const snapshotKey = (id: string): string => `sessions/${id}/snapshot`;
export const clockKey = (id: string): string => `sessions/${id}/clock`;
export const persistedKey = (id: string): string => `sessions/${id}/persisted`;
export const sessionPrefix = (id: string): string => `sessions/${id}/`;
export const logPrefix = (id: string): string => `sessions/${id}/log/`;
export const segmentKey = (id: string, firstSeq: number): string => logPrefix(id) + String(firstSeq).padStart(SEQ_DIGITS, "0");
export const ACTIVITY_PREFIX = "activity/";
export const activityKey = (id: string): string => ACTIVITY_PREFIX + id;

export function tailOf({ session, segments }: Read): Tail {
  return {
    lastSeq: session.lastSeq,
    lastTime: session.lastTime,
    snapshotSeq: session.snapshot?.seq ?? 0,
    timeFromEntry: session.entries.length > 0,
    segments,
    writes: 0,
  };
}

export function unknownSession(id: string): StorageError {
  return new StorageError(`session ${id} is not stored; create() it first (or load() to check it exists)`, { key: metaKey(id) });
}
