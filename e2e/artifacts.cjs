// The folder for browser test artifacts: $LOCKSTEP_ARTIFACTS, else test-artifacts/e2e in the repo.
const path = require("node:path");
exports.artifactsDir = path.resolve(process.env.LOCKSTEP_ARTIFACTS || path.join(__dirname, "..", "test-artifacts", "e2e"));
