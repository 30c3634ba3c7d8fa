// The reflector's caps and limits the probe's targets are stated against.
import { DEFAULT_LIMITS } from "@lockstep/protocol";
import { MiB } from "./format.mjs";

/** The reflector caps of SPEC-issue12 (ReflectorCaps defaults); the reflector does not export them. */
export const CAPS = {
  maxConnectionsPerAddress: 256,
  joinTimeoutMs: 5_000,
  maxBufferedBytes: 16 * MiB,
  maxLogBytes: 32 * MiB,
  newSessionsPerAddressPerMinute: 60,
};
/** The protocol's per-connection limits (byte rate, burst) at their defaults. */
export const LIMITS = DEFAULT_LIMITS;
