#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/cli.js (built from src/cli.ts), which never runs on import.
import("../dist/cli.js")
  .then((cli) => cli.main(process.argv.slice(2)))
  .catch((error) => {
    // One JSON line, like everything else the CLI writes (the CLI itself could not load to format it).
    const message = `lockstep-reflector: could not start: ${error instanceof Error ? error.message : String(error)}`;
    const fields = { message, ...(error instanceof Error && error.stack ? { stack: error.stack } : {}) };
    process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), level: "error", event: "start.failed", fields })}\n`);
    process.exit(1);
  });
