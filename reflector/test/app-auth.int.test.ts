import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { CloseCode, MessageType, encodeJoinAuth } from "@lockstep/protocol";
import { main } from "../src/cli";
import { Harness, TestClient, randomId, testCheck, type CloseInfo } from "./helpers";
import { fakeIo } from "./cli-io";
import { readyUrl } from "./cli-process";

const SECRET = "the app backend's secret, 32 bytes or more";
const APP = "com.example.chat";
const NAME = "room-1";

function persistentIdOf(appId: string, name: string): string {
  return createHash("sha256").update(`${appId}/${name}`).digest("base64url");
}

function sign(claims: Record<string, unknown>, options: { secret?: string; exp?: string | number } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime(options.exp ?? "1h")
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

/** A JoinAuth as the client sends it, carrying an app token (or none) for `appId`/`name`. */
function authWith(appToken: string, appId = APP, name = NAME): Uint8Array {
  const token = createHash("sha256").update("token:pw").digest();
  const verifier = createHash("sha256").update(token).digest();
  const names = appToken === "" ? {} : { appToken, appId, name };
  return encodeJoinAuth({ token, verifier, check: testCheck(), slot: "", slotToken: new Uint8Array(0), ...names });
}

function sendJoin(client: TestClient, auth: Uint8Array, persistentId = persistentIdOf(APP, NAME), sessionId = randomId()): void {
  client.send({ type: MessageType.Join, sessionId, persistentId, viewId: randomId(), tps: 20, auth, viewData: new Uint8Array(0) });
}

/** Waits for the reflector to refuse the Join: its Error frame, then the close with the same code. */
async function refused(client: TestClient, appToken: string): Promise<CloseInfo & { message: string }> {
  const error = await client.nextOf(MessageType.Error);
  const closed = await client.closed;
  expect(closed.code).toBe(error.code);
  if (appToken !== "") expect(error.message).not.toContain(appToken);
  return { ...closed, message: error.message };
}

describe("a reflector with appAuth", () => {
  const h = new Harness();
  beforeEach(() => h.start({ appAuth: { secret: SECRET } }));
  afterEach(() => h.teardown());

  test("a Join with a valid token is synced", async () => {
    const client = await h.connect();
    const { sync } = await client.join({ persistentId: persistentIdOf(APP, NAME), auth: authWith(await sign({ appId: APP, name: NAME })) });
    expect(sync.seq).toBe(0);
    expect(client.isClosed).toBe(false);
  });

  test("a token without appId/name claims opens sessions of any name", async () => {
    const token = await sign({});
    for (const name of ["room-a", "room-b"]) {
      const client = await h.connect();
      await client.join({ persistentId: persistentIdOf(APP, name), auth: authWith(token, APP, name) });
    }
    expect(h.reflector.stats().sessions).toBe(2);
  });

  test("an expired token is refused with 4014 TokenExpired", async () => {
    const client = await h.connect();
    const token = await sign({ appId: APP, name: NAME }, { exp: Math.floor(Date.now() / 1000) - 60 });
    sendJoin(client, authWith(token));
    const { code, message } = await refused(client, token);
    expect(code).toBe(CloseCode.TokenExpired);
    expect(message).toMatch(/expired/);
  });

  test("a token signed with another secret is refused with 4013 TokenRejected", async () => {
    const client = await h.connect();
    const token = await sign({ appId: APP, name: NAME }, { secret: "some other secret, also 32 bytes long" });
    sendJoin(client, authWith(token));
    const { code, message } = await refused(client, token);
    expect(code).toBe(CloseCode.TokenRejected);
    expect(message).toMatch(/signature does not verify/);
  });

  test("a token for another app is refused with 4013 TokenRejected", async () => {
    const client = await h.connect();
    const token = await sign({ appId: "another.app", name: NAME });
    sendJoin(client, authWith(token));
    const { code, message } = await refused(client, token);
    expect(code).toBe(CloseCode.TokenRejected);
    expect(message).toMatch(/another app/);
  });

  test("a token whose names do not give the Join's persistentId is refused with 4013", async () => {
    const client = await h.connect();
    const token = await sign({});
    sendJoin(client, authWith(token, APP, "room-2"), persistentIdOf(APP, NAME));
    const { code } = await refused(client, token);
    expect(code).toBe(CloseCode.TokenRejected);
  });

  test("a Join without a token is refused with 4013, and no session is created", async () => {
    const client = await h.connect();
    sendJoin(client, authWith(""));
    const { code, message } = await refused(client, "");
    expect(code).toBe(CloseCode.TokenRejected);
    expect(message).toMatch(/app token/);
    expect(h.reflector.stats().sessions).toBe(0);
  });
});

describe("a reflector without appAuth", () => {
  const h = new Harness();
  beforeEach(() => h.start());
  afterEach(() => h.teardown());

  test("admits a Join without a token, as before", async () => {
    const client = await h.connect();
    const { sync } = await client.join({ persistentId: persistentIdOf(APP, NAME), auth: authWith("") });
    expect(sync.seq).toBe(0);
  });

  test("ignores a token, even an expired one", async () => {
    const client = await h.connect();
    const token = await sign({ appId: "another.app" }, { exp: Math.floor(Date.now() / 1000) - 60 });
    await client.join({ persistentId: persistentIdOf(APP, NAME), auth: authWith(token) });
  });
});

describe("the CLI's --auth-* flags", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "lockstep-cli-auth-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test("--auth-secret-file makes the reflector require app tokens signed with that secret", async () => {
    const secretFile = join(dir, "secret");
    await writeFile(secretFile, `${SECRET}\n`);
    const f = fakeIo();
    await main(["--port", "0", "--log-level", "silent", "--memory", "--auth-secret-file", secretFile], f.io);
    const url = readyUrl(f.out[0] ?? "");
    expect(url).toBeDefined();
    try {
      const admitted = await TestClient.connect(url!);
      await admitted.join({ persistentId: persistentIdOf(APP, NAME), auth: authWith(await sign({ appId: APP, name: NAME })) });
      const refusedClient = await TestClient.connect(url!);
      sendJoin(refusedClient, authWith(""));
      expect((await refused(refusedClient, "")).code).toBe(CloseCode.TokenRejected);
      await admitted.close();
    } finally {
      f.signal("SIGTERM");
      expect(await f.exit).toBe(0);
    }
  });

  test("an unreadable secret file exits 1 with a clear message", async () => {
    const f = fakeIo();
    await main(["--port", "0", "--log-level", "silent", "--memory", "--auth-secret-file", join(dir, "missing")], f.io);
    expect(await f.exit).toBe(1);
    expect(f.err.join("\n")).toMatch(/cannot read app token secret file .*missing.*no such file/);
    expect(f.out).toEqual([]);
  });
});
