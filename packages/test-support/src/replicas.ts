/**
 * Waiting on a replica's stream and comparing replicas at one point of it: what every test that
 * runs models in more than one client needs (the examples' Node tests, the React bindings' tests).
 */
import type { LockstepSession } from "@lockstep/client";
import { createHash } from "node:crypto";

/** Where a replica was, and its state hash there. */
export interface StatePoint {
  readonly seq: number;
  readonly hash: string;
}

/** Resolves once `pred()` holds, checking now and after every stream entry. */
export function until(session: LockstepSession, pred: () => boolean): Promise<void> {
  if (pred()) return Promise.resolve();
  return new Promise((resolve) => {
    const stop = session.afterEntry(() => {
      if (!pred()) return;
      stop();
      resolve();
    });
  });
}

/**
 * The seq and state hash of a replica right after the first stream entry after which `reached()`
 * holds. Call it before publishing what makes it true: the entry is then the same on every replica.
 */
export function capture(session: LockstepSession, reached: () => boolean): Promise<StatePoint> {
  return new Promise((resolve) => {
    const stop = session.afterEntry((seq) => {
      if (!reached()) return;
      stop();
      // Hashed now, synchronously: the next entry may change the state before a promise settles.
      resolve({ seq, hash: createHash("sha256").update(session.stateBytes()).digest("hex") });
    });
  });
}

/** {@link capture} on every replica, with the same condition. */
export function hashesWhen<S extends LockstepSession>(sessions: readonly S[], reached: (session: S) => boolean): Promise<StatePoint[]> {
  return Promise.all(sessions.map((s) => capture(s, () => reached(s))));
}

/** Every replica was captured at the same seq with the same state. */
export function expectSame(points: readonly StatePoint[]): void {
  expect(points.length).toBeGreaterThan(1);
  for (const p of points.slice(1)) expect(p).toEqual(points[0]);
}
