/**
 * The version of `@lockstep/client` (its package.json `version`; a test keeps the two equal).
 * Croquet apps read it as `Croquet.VERSION`, for logs and bug reports.
 */
export const VERSION = "0.1.0";
