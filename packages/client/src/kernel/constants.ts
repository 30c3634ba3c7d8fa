import stableStringify from "fast-json-stable-stringify";
import { hash } from "./identity";

/**
 * App-wide constants shared by model code. Assign them before the first join; they are then
 * deep-frozen and hashed into the versionId, so clients with different constants never share a
 * session.
 *
 * @example
 * ```ts
 * Constants.MAX_PLAYERS = 8;
 * ```
 */
export const Constants: Record<string, any> = {};

let frozenHash: Promise<string> | undefined;

function deepFreeze(value: unknown): void {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key]);
}

/** Freezes `Constants` (once) and returns its hash. */
export function freezeConstants(): Promise<string> {
  if (!frozenHash) {
    deepFreeze(Constants);
    frozenHash = hash(stableStringify(Constants));
  }
  return frozenHash;
}
