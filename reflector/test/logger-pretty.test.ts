import { createConsoleLogger, formatLogLine } from "../src/logger";

const AT = Date.UTC(2025, 0, 2, 3, 4, 5, 6);

test("pretty lines: time, level, event, then the message and key=value fields", () => {
  const lines: string[] = [];
  const logger = createConsoleLogger("info", { format: "pretty", write: (l) => lines.push(l), now: () => AT });
  logger.info("session.created", { sessionId: "abc", tps: 20, skipped: undefined });
  logger.warn("rate.limited", { remote: "127.0.0.1:5000", reason: "too many frames", payload: Uint8Array.of(1, 2) });
  logger.error("ready", { message: "Lockstep reflector listening on ws://127.0.0.1:1/", url: "ws://127.0.0.1:1/", error: new Error("boom") });
  expect(lines).toEqual([
    "03:04:05.006 INFO  session.created sessionId=abc tps=20",
    '03:04:05.006 WARN  rate.limited remote=127.0.0.1:5000 reason="too many frames" payload={"bytes":2}',
    '03:04:05.006 ERROR ready  Lockstep reflector listening on ws://127.0.0.1:1/ url=ws://127.0.0.1:1/ error={"name":"Error","message":"boom"}',
  ]);
});

test("formatLogLine writes the console logger's JSON line for programs around the reflector", () => {
  expect(JSON.parse(formatLogLine("json", AT, "info", "ready", { url: "ws://x/" }))).toEqual({ ts: "2025-01-02T03:04:05.006Z", level: "info", event: "ready", fields: { url: "ws://x/" } });
});
