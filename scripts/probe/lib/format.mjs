// Units and the small formatters the probe's figures are written with.

/** Bytes in a mebibyte (sizes the probe sends and caps it configures). */
export const MiB = 1024 * 1024;
/** Bytes in a megabyte (RSS and disk figures, as the targets state them). */
export const MB = 1_000_000;

/** `bytes` as "12.3 MB". */
export const mb = (bytes) => `${(bytes / MB).toFixed(1)} MB`;
/** `bytes` as "12.3 MiB". */
export const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;
/** `ms` as "1.2 s". */
export const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** `[0, 1, …, n - 1]`. */
export const range = (n) => Array.from({ length: n }, (_, i) => i);
/** Counts one more `key` in `counts` (close codes, refusals, outcomes). */
export const tally = (counts, key) => void (counts[key] = (counts[key] ?? 0) + 1);
/** A tally as "3×4005, 1×1006", or "none". */
export const fmtTally = (counts) => Object.entries(counts).map(([k, v]) => `${v}×${k}`).join(", ") || "none";
