/**
 * The CLI serving wss:// and https:// on one port with a certificate the test makes itself
 * (scripts/test-cert.sh, openssl): real clients join over TLS trusting it as their CA and stay
 * identical, an untrusting client is refused, /health and /metrics answer over https, SIGHUP
 * serves renewed certificate files, and unusable files fail the start with a message saying which.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { WebSocket } from "ws";
import type { SocketFactory } from "@lockstep/client";
import { expectSame, hashesWhen } from "@lockstep/test-support";
import { main } from "../src/cli";
import { fakeIo } from "./cli-io";
import { spawnCli, type CliProcess } from "./cli-process";
import { add, joinTally, type TallySession } from "./tally";

jest.setTimeout(30_000);

const root = join(__dirname, "..", "..");
let dir: string;
/** The files the reflector serves (pair a at first) and a second pair to renew them with. */
let certFile: string;
let keyFile: string;
let ca: Buffer;
const processes: CliProcess[] = [];
const sessions: TallySession[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lockstep-tls-"));
  // Fails the suite with test-cert.sh's message (e.g. openssl missing) rather than skipping it.
  for (const name of ["a", "b"]) execFileSync("bash", [join(root, "scripts", "test-cert.sh"), dir, name], { stdio: ["ignore", "ignore", "pipe"] });
  certFile = join(dir, "served.crt");
  keyFile = join(dir, "served.key");
  copyFileSync(join(dir, "a.crt"), certFile);
  copyFileSync(join(dir, "a.key"), keyFile);
  ca = Buffer.concat([readFileSync(join(dir, "a.crt")), readFileSync(join(dir, "b.crt"))]);
});

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.leave().catch(() => undefined)));
  for (const p of processes.splice(0)) p.kill();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A socket factory for the client that trusts the test certificates (and nothing else). */
const trusting: SocketFactory = (url) => new WebSocket(url, { ca }) as unknown as ReturnType<SocketFactory>;

function httpsGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

/** The SHA-256 fingerprint of the certificate a fresh TLS connection to `port` is served. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.end();
    });
    socket.on("error", reject);
  });
}

test("wss:// and https:// on one port: clients trusting the CA join and sync, others are refused; SIGHUP serves renewed files", async () => {
  // The files come from the environment, as a systemd unit's EnvironmentFile would give them.
  const p = spawnCli(["--port", "0", "--host", "127.0.0.1", "--memory"], { LOCKSTEP_TLS_CERT: certFile, LOCKSTEP_TLS_KEY: keyFile });
  processes.push(p);
  const url = await p.ready;
  expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/$/);
  const listening = await p.waitFor((l) => l.event === "listening");
  expect(listening.fields).toMatchObject({ url, tls: true, metrics: url.replace("wss://", "https://") + "metrics" });
  const port = Number(new URL(url).port);

  const health = await httpsGet(url.replace("wss://", "https://") + "health");
  expect(health.status).toBe(200);
  expect(JSON.parse(health.body)).toMatchObject({ status: "ok" });

  const [a, b] = [await joinTally(url, "tls", trusting), await joinTally(url, "tls", trusting)];
  sessions.push(a, b);
  const points = hashesWhen([a, b], (s) => s.model.items.length === 2);
  add(a, "over");
  add(b, "tls");
  expectSame(await points);
  expect(a.model.items.slice().sort()).toEqual(["over", "tls"]);

  // Without the CA the handshake fails: it really is TLS with this certificate.
  const untrusting = new WebSocket(url);
  const refused = await new Promise<Error>((resolve) => untrusting.once("error", resolve));
  expect(refused.message).toMatch(/self[- ]signed/i);

  const metrics = await httpsGet(url.replace("wss://", "https://") + "metrics");
  expect(metrics.status).toBe(200);
  expect(metrics.body).toMatch(/^lockstep_connections_open 2$/m);

  // A renewal (as certbot does it): new files in place, then SIGHUP. Open connections keep going.
  const before = await servedFingerprint(port);
  expect(before).toBe(new X509Certificate(readFileSync(join(dir, "a.crt"))).fingerprint256);
  copyFileSync(join(dir, "b.crt"), certFile);
  copyFileSync(join(dir, "b.key"), keyFile);
  p.child.kill("SIGHUP");
  await p.waitFor((l) => l.event === "tls.reloaded");
  expect(await servedFingerprint(port)).toBe(new X509Certificate(readFileSync(join(dir, "b.crt"))).fingerprint256);
  const after = hashesWhen([a, b], (s) => s.model.items.length === 3);
  add(a, "renewed");
  expectSame(await after);

  await Promise.all(sessions.splice(0).map((s) => s.leave()));
  p.child.kill("SIGTERM");
  expect(await p.exited).toBe(0);
  expect(p.stderr).toEqual([]);
  // Renew back for the tests after this one.
  copyFileSync(join(dir, "a.crt"), certFile);
  copyFileSync(join(dir, "a.key"), keyFile);
});

test.each([
  ["a key that is not the certificate's", () => [join(dir, "a.crt"), join(dir, "b.key")], /the TLS key file .*b\.key does not belong to the certificate in the TLS certificate file .*a\.crt/],
  ["a certificate file that does not exist", () => [join(dir, "missing.crt"), join(dir, "a.key")], /cannot read TLS certificate file .*missing\.crt: no such file/],
  ["a key where the certificate should be", () => [join(dir, "a.key"), join(dir, "a.key")], /the TLS certificate file .*a\.key is not a PEM certificate/],
])("%s fails the start with exit 1 and one JSON line saying so", async (_what, files, message) => {
  const [cert, key] = files();
  const f = fakeIo();
  await main(["--port", "0", "--host", "127.0.0.1", "--memory", "--tls-cert", cert!, "--tls-key", key!], f.io);
  expect(await f.exit).toBe(1);
  expect(f.out).toEqual([]);
  expect(f.err).toHaveLength(1);
  const line = JSON.parse(f.err[0]!) as { level: string; event: string; fields: { message: string } };
  expect(line).toMatchObject({ level: "error", event: "start.failed" });
  expect(line.fields.message).toMatch(message);
});
