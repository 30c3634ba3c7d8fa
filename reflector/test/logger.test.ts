import { createConsoleLogger, silentLogger } from "../src/logger";

function capture(level: Parameters<typeof createConsoleLogger>[0]) {
  const lines: string[] = [];
  const logger = createConsoleLogger(level, { write: (l) => lines.push(l), now: () => Date.UTC(2025, 0, 2, 3, 4, 5) });
  return { logger, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test("writes one JSON object per line with ts, level, event and fields", () => {
  const { logger, lines, parsed } = capture("info");
  logger.info("session.created", { sessionId: "abc", tps: 20 });
  expect(lines).toHaveLength(1);
  expect(lines[0]).not.toContain("\n");
  expect(parsed()[0]).toEqual({ ts: "2025-01-02T03:04:05.000Z", level: "info", event: "session.created", fields: { sessionId: "abc", tps: 20 } });
});

test("drops lines below the level", () => {
  const { logger, parsed } = capture("warn");
  logger.info("a");
  logger.warn("b");
  logger.error("c");
  expect(parsed().map((l) => l.event)).toEqual(["b", "c"]);
  const silent = capture("silent");
  silent.logger.error("x");
  expect(silent.lines).toEqual([]);
});

test("never writes bytes, serialises errors and bigints, survives cycles and a throwing sink", () => {
  const { logger, parsed } = capture("info");
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  logger.warn("x", { payload: Uint8Array.of(1, 2, 3), error: new RangeError("boom"), big: 10n });
  logger.error("y", { cyclic });
  const [x, y] = parsed();
  expect(x!.fields).toEqual({ payload: { bytes: 3 }, error: { name: "RangeError", message: "boom" }, big: "10" });
  expect(y!.event).toBe("y");
  const throwing = createConsoleLogger("info", { write: () => { throw new Error("EPIPE"); } });
  expect(() => throwing.info("z")).not.toThrow();
  expect(() => silentLogger.error("z", { a: 1 })).not.toThrow();
});
