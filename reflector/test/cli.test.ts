import { USAGE, parseArgs } from "../src/cli";

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

describe("parseArgs --postgres", () => {
  const url = "postgres://lockstep:secret@db.internal:5432/lockstep";

  test("stores sessions in PostgreSQL instead of the default data directory", () => {
    expect(parseArgs(["--postgres", url])).toEqual({
      kind: "run",
      settings: { port: 8787, host: "127.0.0.1", tps: undefined, logLevel: "info", dataDir: undefined, postgres: url, snapshotMessages: undefined },
    });
    expect(parseArgs([`--postgres=${url}`, "--port", "0"])).toMatchObject({ kind: "run", settings: { port: 0, dataDir: undefined, postgres: url } });
    expect(parseArgs(["--postgres", "postgresql://me@127.0.0.1/db"])).toMatchObject({ kind: "run", settings: { postgres: "postgresql://me@127.0.0.1/db" } });
  });

  test("without --postgres, settings.postgres is undefined", () => {
    expect(parseArgs([])).toMatchObject({ kind: "run", settings: { postgres: undefined, dataDir: "lockstep-data" } });
    expect(parseArgs(["--memory"])).toMatchObject({ kind: "run", settings: { postgres: undefined, dataDir: undefined } });
  });

  test.each([
    [["--postgres", url, "--memory"], "--postgres cannot be combined with --memory"],
    [["--memory", "--postgres", url], "--postgres cannot be combined with --memory"],
    [["--postgres", url, "--data-dir", "/tmp/x"], "--postgres cannot be combined with --data-dir"],
    [["--data-dir=/tmp/x", `--postgres=${url}`], "--postgres cannot be combined with --data-dir"],
    [["--postgres"], "--postgres needs a value"],
    [["--postgres", "--memory"], "--postgres must be a connection URL"],
    [["--postgres="], "--postgres must be a connection URL"],
    [["--postgres", "mysql://x@y/z"], "--postgres must be a connection URL"],
    [["--postgres", "postgres://"], "--postgres must be a connection URL"],
  ])("%j is an error", (argv, message) => {
    const parsed = parseArgs(argv);
    expect(parsed.kind).toBe("error");
    expect(parsed.kind === "error" && parsed.message).toContain(message);
  });

  test("--help documents --postgres", () => {
    expect(USAGE).toMatch(/--postgres URL .*PostgreSQL/);
  });
});
