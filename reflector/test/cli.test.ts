import { DEFAULT_LIMITS } from "@lockstep/protocol";
import { USAGE, parseArgs, type CliSettings } from "../src/cli";
import { DEFAULT_CAPS } from "../src/options";

/** What parseArgs([]) gives; tests spell out only what differs. */
const DEFAULTS: CliSettings = {
  port: 8787,
  host: "127.0.0.1",
  tps: undefined,
  logLevel: "info",
  dataDir: "lockstep-data",
  postgres: undefined,
  snapshotMessages: undefined,
  viewGraceMs: undefined,
  caps: {},
  limits: {},
  trustProxy: false,
  authSecret: undefined,
  authSecretFile: undefined,
  authJwksFile: undefined,
  authIssuer: undefined,
  authAudience: undefined,
  logFormat: undefined,
  tlsCert: undefined,
  tlsKey: undefined,
  metrics: true,
  metricsPort: undefined,
  metricsHost: undefined,
  drainTimeoutMs: 10_000,
  cluster: undefined,
};

function settingsOf(argv: readonly string[]): CliSettings {
  const parsed = parseArgs(argv);
  if (parsed.kind !== "run") throw new Error(`expected settings, got ${JSON.stringify(parsed)}`);
  return parsed.settings;
}

describe("parseArgs", () => {
  test("defaults", () => {
    expect(parseArgs([])).toStrictEqual({ kind: "run", settings: DEFAULTS });
  });

  test("every flag, in both forms", () => {
    expect(parseArgs(["--port", "0", "--host", "0.0.0.0", "--tps", "30", "--log-level", "warn", "--data-dir", "/tmp/x"])).toEqual({
      kind: "run",
      settings: { ...DEFAULTS, port: 0, host: "0.0.0.0", tps: 30, logLevel: "warn", dataDir: "/tmp/x" },
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
      settings: { ...DEFAULTS, dataDir: undefined, postgres: url },
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

describe("parseArgs caps and limits", () => {
  const capFlags: [string, keyof typeof DEFAULT_CAPS][] = [
    ["--max-connections", "maxConnections"],
    ["--max-connections-per-address", "maxConnectionsPerAddress"],
    ["--join-timeout-ms", "joinTimeoutMs"],
    ["--max-buffered-bytes", "maxBufferedBytes"],
    ["--max-log-bytes", "maxLogBytes"],
    ["--max-log-memory-bytes", "maxLogMemoryBytes"],
    ["--new-sessions-per-minute", "newSessionsPerMinute"],
    ["--new-sessions-per-address-per-minute", "newSessionsPerAddressPerMinute"],
  ];
  const limitFlags: [string, keyof typeof DEFAULT_LIMITS][] = [
    ["--max-frame-bytes", "maxFrameBytes"],
    ["--max-snapshot-bytes", "maxSnapshotBytes"],
    ["--max-persist-bytes", "maxPersistBytes"],
    ["--max-payload-bytes", "maxPayloadBytes"],
    ["--max-messages-per-second", "maxMessagesPerSecond"],
    ["--message-burst", "messageBurst"],
    ["--max-bytes-per-second", "maxBytesPerSecond"],
    ["--byte-burst", "byteBurst"],
  ];

  test.each(capFlags)("%s sets caps.%s", (flag, key) => {
    // Above the default maxLogMemoryBytes (8 MiB), which maxLogBytes may not go below.
    expect(settingsOf([flag, "9000000"])).toStrictEqual({ ...DEFAULTS, caps: { [key]: 9_000_000 } });
    expect(settingsOf([`${flag}=8388608`]).caps).toStrictEqual({ [key]: 8_388_608 });
  });

  test.each(limitFlags)("%s sets limits.%s", (flag, key) => {
    expect(settingsOf([flag, "4321"])).toStrictEqual({ ...DEFAULTS, limits: { [key]: 4321 } });
    expect(settingsOf([`${flag}=88`]).limits).toStrictEqual({ [key]: 88 });
  });

  test("several together, the last of a repeated flag winning", () => {
    const settings = settingsOf(["--max-connections", "5", "--max-frame-bytes", "65536", "--max-connections=6", "--byte-burst", "0", "--memory"]);
    expect(settings.caps).toStrictEqual({ maxConnections: 6 });
    expect(settings.limits).toStrictEqual({ maxFrameBytes: 65536, byteBurst: 0 });
    expect(settings.dataDir).toBeUndefined();
  });

  test("byte sizes may be large, up to Number.MAX_SAFE_INTEGER", () => {
    expect(settingsOf(["--max-snapshot-bytes", "17179869184"]).limits).toStrictEqual({ maxSnapshotBytes: 16 * 1024 ** 3 });
    expect(settingsOf(["--max-log-bytes", String(Number.MAX_SAFE_INTEGER)]).caps).toStrictEqual({ maxLogBytes: Number.MAX_SAFE_INTEGER });
  });

  test.each([
    [["--max-connections"], "--max-connections needs a value"],
    [["--max-connections", "0"], "--max-connections must be an integer in 1..9007199254740991, got \"0\""],
    [["--max-connections", "-5"], "--max-connections must be an integer in 1..9007199254740991"],
    [["--max-connections", "1.5"], "--max-connections must be an integer"],
    [["--max-connections", "1e3"], "--max-connections must be an integer"],
    [["--max-connections", "10_000"], "--max-connections must be an integer"],
    [["--max-connections", " 5"], "--max-connections must be an integer"],
    [["--max-log-bytes", "9007199254740992"], "--max-log-bytes must be an integer in 1..9007199254740991, got \"9007199254740992\""],
    [["--max-log-bytes", "99999999999999999999"], "--max-log-bytes must be an integer in 1..9007199254740991"],
    [["--max-frame-bytes", "1"], "--max-frame-bytes must be an integer in 2..9007199254740991"],
    [["--message-burst", "-1"], "--message-burst must be an integer in 0..9007199254740991"],
    [["--join-timeout-ms", "2147483648"], "--join-timeout-ms must be an integer in 1..2147483647"],
    [["--max-log-bytes", "1024"], "--max-log-memory-bytes (8388608) must not exceed --max-log-bytes (1024)"],
    [["--max-log-bytes", "100", "--max-log-memory-bytes", "101"], "--max-log-memory-bytes (101) must not exceed --max-log-bytes (100)"],
    [["--max-chunk-bytes", "5"], "unknown argument"],
  ])("%j is an error", (argv, message) => {
    const parsed = parseArgs(argv);
    expect(parsed.kind).toBe("error");
    expect(parsed.kind === "error" && parsed.message).toContain(message);
  });

  test("--help lists every cap and limit flag with its default, under Limits", () => {
    const limits = USAGE.slice(USAGE.indexOf("\nLimits"), USAGE.indexOf("\nApp tokens (JWT)"));
    for (const [flag] of [...capFlags, ...limitFlags]) expect(limits).toContain(`${flag} N`);
    expect(limits).toMatch(/--max-buffered-bytes N\s+unsent bytes .*\(default 16 MiB\)/);
    expect(limits).toMatch(/--max-connections N\s+open WebSockets in total.*\(default 10000\)/);
    expect(limits).toMatch(/--join-timeout-ms N\s+.*\(default 5000 ms\)/);
    expect(limits).toMatch(/--max-payload-bytes N\s+.*\(default 256 KiB\)/);
    for (const line of USAGE.split("\n")) expect(line.length).toBeLessThanOrEqual(100);
  });
});

describe("parseArgs --trust-proxy", () => {
  test("is a boolean flag, off by default", () => {
    expect(settingsOf([]).trustProxy).toBe(false);
    expect(settingsOf(["--trust-proxy"])).toStrictEqual({ ...DEFAULTS, trustProxy: true });
    expect(settingsOf(["--trust-proxy", "--port", "0"])).toMatchObject({ trustProxy: true, port: 0 });
  });

  test("takes no value", () => {
    expect(parseArgs(["--trust-proxy=true"])).toEqual({ kind: "error", message: expect.stringContaining("--trust-proxy takes no value") });
    // A word after it is not its value but an argument of its own.
    expect(parseArgs(["--trust-proxy", "yes"])).toEqual({ kind: "error", message: 'unknown argument "yes"' });
  });

  test("--help documents it", () => {
    expect(USAGE).toMatch(/--trust-proxy +take client addresses .*\n.*X-Forwarded-For/);
  });
});

describe("parseArgs app tokens", () => {
  test("every --auth-* flag, in both forms", () => {
    expect(settingsOf(["--auth-secret-file", "/etc/secret", "--auth-jwks=/etc/jwks.json", "--auth-issuer", "https://app.example", "--auth-audience=lockstep"])).toStrictEqual({
      ...DEFAULTS,
      authSecretFile: "/etc/secret",
      authJwksFile: "/etc/jwks.json",
      authIssuer: "https://app.example",
      authAudience: "lockstep",
    });
    expect(settingsOf(["--auth-secret", "s3cr3t=with=equals"])).toStrictEqual({ ...DEFAULTS, authSecret: "s3cr3t=with=equals" });
    expect(settingsOf(["--auth-secret=a=b"]).authSecret).toBe("a=b");
  });

  test.each([
    [["--auth-secret"], "--auth-secret needs a value"],
    [["--auth-secret="], "--auth-secret must not be empty"],
    [["--auth-jwks="], "--auth-jwks must not be empty"],
    [["--auth-secret-file", ""], "--auth-secret-file must not be empty"],
    [["--auth-secret", "x", "--auth-secret-file", "/f"], "--auth-secret and --auth-secret-file both give the app token secret: pick one"],
    [["--auth-issuer", "https://app.example"], "need keys to verify app tokens with"],
    [["--auth-audience", "lockstep"], "need keys to verify app tokens with"],
    [["--auth-token", "x"], "unknown argument"],
  ])("%j is an error", (argv, message) => {
    const parsed = parseArgs(argv);
    expect(parsed.kind).toBe("error");
    expect(parsed.kind === "error" && parsed.message).toContain(message);
  });

  test("--help documents them under App tokens (JWT)", () => {
    const auth = USAGE.slice(USAGE.indexOf("\nApp tokens (JWT):"), USAGE.indexOf("\nPersisted data"));
    for (const flag of ["--auth-secret S", "--auth-secret-file F", "--auth-jwks FILE", "--auth-issuer I", "--auth-audience A"]) expect(auth).toContain(flag);
    expect(auth).toContain("4013/4014");
  });
});
