import { DEFAULT_LIMITS, DEFAULT_TPS } from "@lockstep/protocol";
import { UsageError } from "../errors";

/** A session's tick rate as `Session.join({ tps })` asked for it. */
export interface TickRate {
  /** Ticks per second the reflector sends while idle (an integer, {@link DEFAULT_LIMITS} minTps–maxTps). */
  readonly tps: number;
  /** Local ticks per reflector tick (1: none added); the `3` of `"10x3"`. */
  readonly multiplier: number;
}

/** The most local ticks one reflector tick is split into: more would only cost frames. */
export const MAX_TICK_MULTIPLIER = 60;

/**
 * Parses `tps` as Croquet does: a number, or `"<ticks>x<multiplier>"` (the reflector ticks
 * `<ticks>` times a second and each of its ticks is split into `<multiplier>` local steps). Both
 * parts are truncated to integers and clamped instead of refused: ticks to 1–60 (Croquet goes down
 * to one tick per 30 s; a Lockstep reflector ticks at least once a second), the multiplier to at
 * least 1. Only something that is no number at all is an error.
 * @throws {UsageError} for a value that is neither a number nor such a string.
 */
export function parseTickRate(tps: unknown): TickRate {
  if (tps === undefined || tps === null) return { tps: DEFAULT_TPS, multiplier: 1 };
  let rate: number;
  let multiplier = 1;
  if (typeof tps === "number") {
    rate = tps;
  } else if (typeof tps === "string") {
    const [ticks = "", mult, ...rest] = tps.split(/x/i);
    rate = ticks.trim() === "" ? 0 : Number(ticks);
    multiplier = mult === undefined || mult.trim() === "" ? 1 : Number(mult);
    if (rest.length > 0) rate = Number.NaN;
  } else {
    rate = Number.NaN;
  }
  if (Number.isNaN(rate) || Number.isNaN(multiplier)) {
    throw new UsageError(`Session.join: tps must be a number of ticks per second (1–60) or "<ticks>x<multiplier>" like "10x3", got ${JSON.stringify(tps)}`);
  }
  const clamp = (n: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, Number.isFinite(n) ? Math.trunc(n) : n > 0 ? hi : lo));
  return {
    tps: clamp(rate, DEFAULT_LIMITS.minTps, DEFAULT_LIMITS.maxTps),
    multiplier: clamp(multiplier, 1, MAX_TICK_MULTIPLIER),
  };
}
