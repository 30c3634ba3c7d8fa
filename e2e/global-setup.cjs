// Prints where the browser tests leave their screenshots (and makes the folder).
const { mkdirSync } = require("node:fs");
const { artifactsDir } = require("./artifacts.cjs");
module.exports = async () => {
  mkdirSync(artifactsDir, { recursive: true });
  process.stdout.write(`\nbrowser test artifacts (screenshots): ${artifactsDir}\n`);
};
