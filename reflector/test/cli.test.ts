import { parseArgs } from "../src/cli";

describe("parseArgs", () => {
  test("defaults", () => {
    expect(parseArgs([])).toEqual({ kind: "run", settings: { port: 8787, host: "127.0.0.1", tps: undefined, logLevel: "info", dataDir: "lockstep-data", snapshotMessages: undefined } });
  });

  test("every flag, in both forms", () => {
    expect(parseArgs(["--port", "0", "--host", "0.0.0.0", "--tps", "30", "--log-level", "warn", "--data-dir", "/tmp/x"])).toEqual({
      kind: "run",
      settings: { port: 0, host: "0.0.0.0", tps: 30, logLevel: "warn", dataDir: "/tmp/x", snapshotMessages: undefined },
    });
    expect(parseArgs(["--memory"])).toMatchObject({ kind: "run", settings: { dataDir: undefined } });
    expect(parseArgs(["--port=9000", "--log-level=silent"])).toMatchObject({ kind: "run", settings: { port: 9000, logLevel: "silent" } });
  });

  test("help wins wherever it is", () => {
    expect(parseArgs(["--port", "1", "--help"])).toEqual({ kind: "help" });
    expect(parseArgs(["-h"])).toEqual({ kind: "help" });
  });

  test.each([
    [["--port"], "--port needs a value"],
    [["--port", "70000"], "--port must be"],
    [["--port", "-1"], "--port must be"],
    [["--port", "8e3"], "--port must be"],
    [["--tps", "0"], "--tps must be"],
    [["--tps", "61"], "--tps must be"],
    [["--log-level", "debug"], "--log-level must be one of"],
    [["--host="], "--host must not be empty"],
    [["--data-dir="], "--data-dir must not be empty"],
    [["--verbose"], "unknown argument"],
    [["8787"], "unknown argument"],
  ])("%j is an error", (argv, message) => {
    const parsed = parseArgs(argv);
    expect(parsed.kind).toBe("error");
    expect(parsed.kind === "error" && parsed.message).toContain(message);
  });
});
