/**
 * @lockstep/test-support: what the tests of every package share. Private, never published; jest and
 * tsc resolve it to this source (jest.config.cjs moduleNameMapper, tsconfig.json paths).
 */
export * from "./random";
export * from "./hex";
export * from "./storage-conformance";
export * from "./manual-clock";
export * from "./link";
export * from "./stores";
export * from "./replicas";
