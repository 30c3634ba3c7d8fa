/**
 * Browser tests: the examples in Debian's Chromium, driven by playwright-core, against the dev
 * server (`scripts/dev.mjs`) on free loopback ports. Run after the other tests by `npm test`
 * (`scripts/test.sh`), one file at a time: each starts its own browser and servers.
 */
const path = require("node:path");
module.exports = {
  rootDir: path.join(__dirname, ".."),
  testEnvironment: "node",
  roots: ["<rootDir>/e2e"],
  testMatch: ["**/*.e2e.test.ts"],
  transform: {
    "^.+\\.(t|j)sx?$": ["@swc/jest", { jsc: { target: "es2022", parser: { syntax: "typescript" } }, module: { type: "commonjs" } }],
  },
  globalSetup: "<rootDir>/e2e/global-setup.cjs",
  testTimeout: 90000,
};
