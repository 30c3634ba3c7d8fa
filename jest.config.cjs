/** One jest run covers every package: unit tests (*.test.ts) and loopback integration tests (*.int.test.ts). */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/packages", "<rootDir>/reflector", "<rootDir>/examples"],
  testMatch: ["**/*.test.ts", "**/*.test.tsx"],
  testPathIgnorePatterns: ["/node_modules/", "/dist/"],
  // jose (the reflector's JWT library) ships only ESM; compile it to CommonJS like our sources.
  transformIgnorePatterns: ["/node_modules/(?!\\.pnpm/jose@|jose/)"],
  transform: {
    "^.+\\.(t|j)s$": ["@swc/jest", { jsc: { target: "es2022", parser: { syntax: "typescript" } }, module: { type: "commonjs" } }],
    // React bindings and their tests: JSX with React's automatic runtime (no `import React`).
    "^.+\\.(t|j)sx$": ["@swc/jest", { jsc: { target: "es2022", parser: { syntax: "typescript", tsx: true }, transform: { react: { runtime: "automatic" } } }, module: { type: "commonjs" } }],
  },
  moduleNameMapper: {
    "^@lockstep/protocol$": "<rootDir>/packages/protocol/src/index.ts",
    "^@lockstep/client$": "<rootDir>/packages/client/src/index.ts",
    "^@lockstep/client/app$": "<rootDir>/packages/client/src/app/index.ts",
    "^@lockstep/reflector$": "<rootDir>/reflector/src/index.ts",
    "^@lockstep/react$": "<rootDir>/packages/react/src/index.ts",
    "^@lockstep/test-support$": "<rootDir>/packages/test-support/src/index.ts",
  },
  // Picks the run's LOCKSTEP_TEST_SEED (unless set) and prints it once; the workers inherit it.
  globalSetup: "<rootDir>/packages/test-support/src/jest-global-setup.ts",
  testTimeout: 30000,
};
