#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/cli.js (built from src/cli.ts), which never runs on import.
import("../dist/cli.js")
  .then((cli) => cli.main(process.argv.slice(2)))
  .catch((error) => {
    console.error("lockstep-reflector: could not start:", error);
    process.exit(1);
  });
