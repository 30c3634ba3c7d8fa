/**
 * Every CLI option from a LOCKSTEP_* variable: the names follow the flags, the command line wins,
 * a bad value is an error naming the variable, switches take the usual words, and --help lists
 * every variable.
 */
import { USAGE, envName, parseArgs, type CliSettings, type Environment } from "../src/cli";

function settingsOf(argv: readonly string[], env: Environment): CliSettings {
  const parsed = parseArgs(argv, env);
  if (parsed.kind !== "run") throw new Error(`expected settings, got ${JSON.stringify(parsed)}`);
  return parsed.settings;
}

function errorOf(argv: readonly string[], env: Environment): string {
  const parsed = parseArgs(argv, env);
  if (parsed.kind !== "error") throw new Error(`expected an error, got ${JSON.stringify(parsed)}`);
  return parsed.message;
}

test("a variable's name is LOCKSTEP_ and the flag in capitals with - as _", () => {
  expect(envName("--port")).toBe("LOCKSTEP_PORT");
  expect(envName("--max-log-bytes")).toBe("LOCKSTEP_MAX_LOG_BYTES");
  expect(envName("--new-sessions-per-address-per-minute")).toBe("LOCKSTEP_NEW_SESSIONS_PER_ADDRESS_PER_MINUTE");
});

test("every kind of option can come from the environment", () => {
  const env = {
    LOCKSTEP_PORT: "9000",
    LOCKSTEP_HOST: "0.0.0.0",
    LOCKSTEP_TPS: "30",
    LOCKSTEP_LOG_LEVEL: "warn",
    LOCKSTEP_LOG_FORMAT: "pretty",
    LOCKSTEP_DATA_DIR: "/var/lib/lockstep",
    LOCKSTEP_SNAPSHOT_MESSAGES: "500",
    LOCKSTEP_VIEW_GRACE_MS: "0",
    LOCKSTEP_DRAIN_TIMEOUT_MS: "30000",
    LOCKSTEP_TRUST_PROXY: "true",
    LOCKSTEP_MAX_LOG_BYTES: "1048576",
    LOCKSTEP_MAX_LOG_MEMORY_BYTES: "65536",
    LOCKSTEP_MAX_FRAME_BYTES: "65536",
    LOCKSTEP_AUTH_SECRET_FILE: "/etc/lockstep/secret",
    LOCKSTEP_AUTH_ISSUER: "https://app.example",
    LOCKSTEP_TLS_CERT: "/etc/lockstep/cert.pem",
    LOCKSTEP_TLS_KEY: "/etc/lockstep/key.pem",
    LOCKSTEP_METRICS_PORT: "9100",
    LOCKSTEP_METRICS_HOST: "10.0.0.5",
  };
  expect(settingsOf([], env)).toMatchObject({
    port: 9000,
    host: "0.0.0.0",
    tps: 30,
    logLevel: "warn",
    logFormat: "pretty",
    dataDir: "/var/lib/lockstep",
    snapshotMessages: 500,
    viewGraceMs: 0,
    drainTimeoutMs: 30000,
    trustProxy: true,
    caps: { maxLogBytes: 1048576, maxLogMemoryBytes: 65536 },
    limits: { maxFrameBytes: 65536 },
    authSecretFile: "/etc/lockstep/secret",
    authIssuer: "https://app.example",
    tlsCert: "/etc/lockstep/cert.pem",
    tlsKey: "/etc/lockstep/key.pem",
    metrics: true,
    metricsPort: 9100,
    metricsHost: "10.0.0.5",
  });
  // Secrets stay out of the process list: the PostgreSQL URL and the token secret come from variables too.
  const url = "postgres://lockstep:s3cret@db.internal:5432/lockstep";
  expect(settingsOf([], { LOCKSTEP_POSTGRES: url, LOCKSTEP_AUTH_SECRET: "x".repeat(32) })).toMatchObject({ postgres: url, dataDir: undefined, authSecret: "x".repeat(32) });
  expect(settingsOf([], { LOCKSTEP_MEMORY: "1", LOCKSTEP_NO_METRICS: "yes" })).toMatchObject({ dataDir: undefined, metrics: false });
});

test("the command line wins, also over a variable of the same choice", () => {
  expect(settingsOf(["--port", "1234"], { LOCKSTEP_PORT: "9000", LOCKSTEP_HOST: "::1" })).toMatchObject({ port: 1234, host: "::1" });
  // A bad variable that the command line overrides is never looked at.
  expect(settingsOf(["--port=0"], { LOCKSTEP_PORT: "nine thousand" }).port).toBe(0);
  // Where sessions go is one choice: --memory on the command line beats the service's data dir or database.
  expect(settingsOf(["--memory"], { LOCKSTEP_DATA_DIR: "/var/lib/lockstep" }).dataDir).toBeUndefined();
  expect(settingsOf(["--memory"], { LOCKSTEP_POSTGRES: "postgres://x@y/z" })).toMatchObject({ dataDir: undefined, postgres: undefined });
  expect(settingsOf(["--data-dir", "/tmp/x"], { LOCKSTEP_MEMORY: "1" }).dataDir).toBe("/tmp/x");
  expect(settingsOf(["--auth-secret-file", "/s"], { LOCKSTEP_AUTH_SECRET: "x".repeat(32) })).toMatchObject({ authSecretFile: "/s", authSecret: undefined });
  expect(settingsOf(["--no-metrics"], { LOCKSTEP_METRICS_PORT: "9100" })).toMatchObject({ metrics: false, metricsPort: undefined });
});

test("an empty variable counts as unset; switches take 1/true/yes/on and 0/false/no/off", () => {
  expect(settingsOf([], { LOCKSTEP_PORT: "", LOCKSTEP_HOST: "" })).toMatchObject({ port: 8787, host: "127.0.0.1" });
  for (const word of ["1", "true", "YES", "on"]) expect(settingsOf([], { LOCKSTEP_TRUST_PROXY: word }).trustProxy).toBe(true);
  for (const word of ["0", "false", "No", "off"]) expect(settingsOf([], { LOCKSTEP_TRUST_PROXY: word }).trustProxy).toBe(false);
  // Variables that are not options (the test suite's own, say) are none of the CLI's business.
  expect(settingsOf([], { LOCKSTEP_PG_URL: "postgres://x@y/z", LOCKSTEP_TEST_SEED: "1" }).port).toBe(8787);
});

test.each([
  [{ LOCKSTEP_PORT: "eighty" }, 'LOCKSTEP_PORT must be an integer in 0..65535, got "eighty"'],
  [{ LOCKSTEP_PORT: "70000" }, "LOCKSTEP_PORT must be an integer in 0..65535"],
  [{ LOCKSTEP_TPS: "0" }, "LOCKSTEP_TPS must be an integer in 1..60"],
  [{ LOCKSTEP_LOG_LEVEL: "debug" }, 'LOCKSTEP_LOG_LEVEL must be one of info, warn, error, silent, got "debug"'],
  [{ LOCKSTEP_LOG_FORMAT: "xml" }, 'LOCKSTEP_LOG_FORMAT must be one of json, pretty, got "xml"'],
  [{ LOCKSTEP_MAX_LOG_BYTES: "1k" }, "LOCKSTEP_MAX_LOG_BYTES must be an integer in 1.."],
  [{ LOCKSTEP_DRAIN_TIMEOUT_MS: "0" }, "LOCKSTEP_DRAIN_TIMEOUT_MS must be an integer in 1..2147483647"],
  [{ LOCKSTEP_TRUST_PROXY: "maybe" }, 'LOCKSTEP_TRUST_PROXY is a switch: set it to 1, true, yes or on (or 0, false, no, off), got "maybe"'],
  [{ LOCKSTEP_MAX_LOG_BYTES: "100", LOCKSTEP_MAX_LOG_MEMORY_BYTES: "101" }, "LOCKSTEP_MAX_LOG_MEMORY_BYTES (101) must not exceed LOCKSTEP_MAX_LOG_BYTES (100)"],
  [{ LOCKSTEP_POSTGRES: "postgres://x@y/z", LOCKSTEP_DATA_DIR: "/d" }, "LOCKSTEP_POSTGRES cannot be combined with LOCKSTEP_DATA_DIR"],
  [{ LOCKSTEP_AUTH_SECRET: "s", LOCKSTEP_AUTH_SECRET_FILE: "/f" }, "LOCKSTEP_AUTH_SECRET and LOCKSTEP_AUTH_SECRET_FILE both give the app token secret"],
  [{ LOCKSTEP_TLS_CERT: "/c" }, "LOCKSTEP_TLS_CERT needs --tls-key (or LOCKSTEP_TLS_KEY) too"],
  [{ LOCKSTEP_NO_METRICS: "1", LOCKSTEP_METRICS_PORT: "9100" }, "LOCKSTEP_NO_METRICS contradicts LOCKSTEP_METRICS_PORT"],
  [{ LOCKSTEP_METRICS_HOST: "10.0.0.5" }, "LOCKSTEP_METRICS_HOST needs --metrics-port"],
])("%j: %s", (env, message) => {
  expect(errorOf([], env)).toContain(message);
});

test("a PostgreSQL URL that is not one is refused without repeating its password", () => {
  expect(errorOf([], { LOCKSTEP_POSTGRES: "mysql://me:s3cret@db/x" })).not.toContain("s3cret");
});

test("the new flags on the command line, and their mistakes", () => {
  expect(settingsOf(["--tls-cert", "/c", "--tls-key=/k", "--metrics-port", "0", "--metrics-host", "127.0.0.1", "--log-format", "json", "--drain-timeout-ms", "500"], {})).toMatchObject({
    tlsCert: "/c",
    tlsKey: "/k",
    metricsPort: 0,
    metricsHost: "127.0.0.1",
    logFormat: "json",
    drainTimeoutMs: 500,
  });
  expect(errorOf(["--tls-key", "/k"], {})).toContain("--tls-key needs --tls-cert (or LOCKSTEP_TLS_CERT) too");
  expect(errorOf(["--no-metrics=1"], {})).toContain("--no-metrics takes no value");
  expect(errorOf(["--metrics-port", "65536"], {})).toContain("--metrics-port must be an integer in 0..65535");
});

test("--help names every variable, and says the command line wins", () => {
  const names = [...USAGE.matchAll(/\bLOCKSTEP_[A-Z_]+\b/g)].map((m) => m[0]);
  for (const flag of [...USAGE.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]!)) {
    if (flag === "--help") continue;
    expect(names).toContain(envName(flag));
  }
  expect(names).toEqual(expect.arrayContaining(["LOCKSTEP_PORT", "LOCKSTEP_HOST", "LOCKSTEP_DATA_DIR", "LOCKSTEP_POSTGRES", "LOCKSTEP_MAX_LOG_BYTES", "LOCKSTEP_TLS_CERT", "LOCKSTEP_NO_METRICS"]));
  expect(USAGE).toMatch(/The command line wins/);
});
