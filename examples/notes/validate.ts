/**
 * Checks for event data and persisted data. Everything a model receives came over the network
 * from some client: models run these before changing anything and ignore what fails (a handler
 * must never throw).
 */
import { LIMITS } from "./limits";

/** A plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A non-negative safe integer. */
export function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** A non-empty id of at most `LIMITS.idLength` characters. */
export function isId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= LIMITS.idLength;
}

/** A plausible wall-clock time (ms since the epoch), or undefined. */
export function timeOrUndefined(value: unknown): number | undefined {
  return Number.isSafeInteger(value) && (value as number) > 0 && (value as number) < 8.64e15 ? (value as number) : undefined;
}

/** A title as stored: control characters become spaces, at most `LIMITS.titleLength` units. */
export function cleanTitle(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  return value.replace(/[\u0000-\u001f\u007f]/g, " ").slice(0, LIMITS.titleLength);
}

/** A tag as stored: trimmed, lower-case, inner whitespace collapsed to "-"; undefined if empty or too long. */
export function cleanTag(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const tag = value.trim().toLowerCase().replace(/\s+/g, "-");
  return tag.length > 0 && tag.length <= LIMITS.tagLength && !/[\u0000-\u001f\u007f]/.test(tag) ? tag : undefined;
}
