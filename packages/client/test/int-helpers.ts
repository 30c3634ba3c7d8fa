import { createHash } from "node:crypto";
import type { LockstepSession } from "../src/index";

export { mulberry32, testSeed } from "./serializer.helpers";

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("base64url");
}

/**
 * Resolves with the seq and state hash of the first stream entry after which `reached()` is true:
 * the same point of the stream on every replica, whatever ticks each one saw afterwards.
 */
export function captureWhen(session: LockstepSession, reached: () => boolean): Promise<{ seq: number; hash: string }> {
  return new Promise((resolve) => {
    const stop = session.afterEntry((seq) => {
      if (!reached()) return;
      stop();
      resolve({ seq, hash: sha256(session.stateBytes()) });
    });
  });
}
