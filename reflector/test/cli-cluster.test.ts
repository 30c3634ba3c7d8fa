import { USAGE, parseArgs, type CliSettings } from "../src/cli";

const PG = "postgres://lockstep@127.0.0.1:5432/lockstep";

function clusterOf(argv: readonly string[], env: Record<string, string> = {}): CliSettings["cluster"] {
  const parsed = parseArgs(argv, env);
  if (parsed.kind !== "run") throw new Error(`expected settings, got ${JSON.stringify(parsed)}`);
  return parsed.settings.cluster;
}

function errorOf(argv: readonly string[]): string {
  const parsed = parseArgs(argv);
  if (parsed.kind !== "error") throw new Error(`expected an error, got ${JSON.stringify(parsed)}`);
  return parsed.message;
}

describe("parseArgs: a cluster node", () => {
  test("--cluster with --postgres and --node-url, lease defaults", () => {
    expect(clusterOf(["--cluster", "--postgres", PG, "--node-url", "ws://10.0.0.5:8787/"])).toEqual({ nodeUrl: "ws://10.0.0.5:8787/", leaseMs: 5000, renewMs: 1000, proxy: false });
    expect(clusterOf(["--cluster", "--postgres", PG, "--node-url", "wss://n1.example/", "--lease-ms", "3000", "--renew-ms", "500", "--proxy"])).toEqual({
      nodeUrl: "wss://n1.example/",
      leaseMs: 3000,
      renewMs: 500,
      proxy: true,
    });
    expect(clusterOf([])).toBeUndefined();
  });

  test("from the environment, as every flag", () => {
    expect(clusterOf([], { LOCKSTEP_CLUSTER: "1", LOCKSTEP_POSTGRES: PG, LOCKSTEP_NODE_URL: "ws://10.0.0.6:8787/", LOCKSTEP_LEASE_MS: "4000" })).toEqual({
      nodeUrl: "ws://10.0.0.6:8787/",
      leaseMs: 4000,
      renewMs: 1000,
      proxy: false,
    });
  });

  test.each([
    [["--cluster", "--node-url", "ws://a:1/"], "--cluster needs --postgres"],
    [["--cluster", "--postgres", PG], "--cluster needs --node-url"],
    [["--cluster", "--memory", "--node-url", "ws://a:1/"], "--cluster needs --postgres"],
    [["--cluster", "--postgres", PG, "--node-url", "http://a:1/"], "--node-url must be the ws:// or wss:// URL"],
    [["--cluster", "--postgres", PG, "--node-url", "ws://a:1/", "--renew-ms", "3000"], "--renew-ms (3000) must be at most half of --lease-ms (5000)"],
    [["--cluster", "--postgres", PG, "--node-url", "ws://a:1/", "--lease-ms", "50"], "--lease-ms must be an integer of ms in 100..600000"],
    [["--node-url", "ws://a:1/"], "--node-url is for cluster nodes: add --cluster"],
    [["--proxy"], "--proxy is for cluster nodes"],
  ])("%j is an error", (argv, message) => {
    expect(errorOf(argv)).toContain(message);
  });

  test("--help documents the cluster flags", () => {
    for (const flag of ["--cluster", "--node-url URL", "--lease-ms N", "--renew-ms N", "--proxy"]) expect(USAGE).toContain(`  ${flag}`);
  });
});
