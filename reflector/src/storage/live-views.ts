import { MessageType, type StreamEntry } from "@lockstep/protocol";
import type { StoredSnapshot } from "./records";

/**
 * The views joined in the stream and not exited at the end of `entries` (the log after
 * `snapshot`): the snapshot's views (none without a snapshot, as the log then starts at seq 1),
 * then each ViewJoin adds its view and each ViewExit removes it, in order. A view keeps the place
 * of its first join; one that exits and joins again goes last.
 * @returns `undefined` if the snapshot does not say which views were live (a format-1 record).
 */
export function replayLiveViews(snapshot: StoredSnapshot | undefined, entries: readonly StreamEntry[]): readonly string[] | undefined {
  if (snapshot !== undefined && snapshot.views === undefined) return undefined;
  // A Set iterates in insertion order, and re-adding a member keeps its place: first-join order.
  const live = new Set(snapshot?.views ?? []);
  for (const entry of entries) {
    if (entry.type === MessageType.ViewJoin) live.add(entry.viewId);
    else if (entry.type === MessageType.ViewExit) live.delete(entry.viewId);
  }
  return [...live];
}
