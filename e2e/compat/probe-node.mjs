// Preloaded (node --import) into the compatibility suite's Node apps: once the app has put its
// session on `globalThis.session`, writes a hash of the VM after every stream entry to stderr
// as `compat-hash <seq> <hash>`, which the suite compares across processes. It also publishes an
// event no model handles every 100 ms, so both clients keep processing entries they share.
// console.error lines are tagged `compat-error` (the suite requires none; warnings are fine).
import { createHash } from "node:crypto";
import { format } from "node:util";

const consoleError = console.error.bind(console);
console.error = (...args) => {
  for (const line of format(...args).split("\n")) process.stderr.write(`compat-error ${line}\n`);
  void consoleError;
};
process.on("uncaughtException", (error) => {
  process.stderr.write(`compat-error uncaught ${String(error?.stack ?? error).replace(/\n/g, " | ")}\n`);
  process.exit(70);
});

// bounded by the test run: the app ends with its parent (stdin closes) even if never stopped
process.stdin.on("close", () => process.exit(0)).resume();

const poll = setInterval(() => {
  const session = globalThis.session;
  if (!session || typeof session.afterEntry !== "function") return;
  clearInterval(poll);
  session.afterEntry((seq) => {
    const hash = createHash("sha256").update(session.stateBytes()).digest("hex").slice(0, 24);
    process.stderr.write(`compat-hash ${seq} ${hash}\n`);
  });
  process.stderr.write("compat-recording\n");
  setInterval(() => session.view.publish("compat-suite", "sync-point", Date.now()), 100).unref();
}, 10);
