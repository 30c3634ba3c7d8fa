/**
 * `Session.join({ token })` against a real reflector: what the Join carries, that a token
 * function is called again on every connection, and how a reflector with app-level admission
 * (`appAuth`) answers good, missing, foreign and expired tokens.
 */
import { createHmac } from "node:crypto";
import { CloseCode, decodeJoinAuth } from "@lockstep/protocol";
import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { JoinError, Model, Session, View, type LockstepSession } from "../src/index";
import { backOnline, captureWhen, recordingSockets, type RecordingSockets } from "./int-helpers";
import { startProxy } from "./proxy";

class Tally extends Model {
  n = 0;
  override init(): void {
    this.subscribe("tally", "add", this.add);
  }
  add(k: number): void {
    this.n += k;
  }
}
Tally.register("TokenInt.Tally");

/** Counts root views built per viewId: a rejoin builds a new one once it is live again. */
class TallyView extends View {
  static built = new Map<string, number>();
  constructor(model: Model) {
    super(model);
    TallyView.built.set(this.viewId, (TallyView.built.get(this.viewId) ?? 0) + 1);
  }
}


const APP_ID = "test.lockstep.token";
const SECRET = "a-test-secret-of-at-least-32-bytes-long!";

/** An HS256 JWT, as an app's backend would sign it. */
function jwt(claims: Record<string, unknown>, secret = SECRET): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}
const nowSec = () => Math.floor(Date.now() / 1000);
const valid = (name: string) => jwt({ appId: APP_ID, name, exp: nowSec() + 3600 });

let open: Reflector;
let guarded: Reflector;
beforeAll(async () => {
  open = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });
  guarded = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger, appAuth: { secret: SECRET } });
});
afterAll(async () => {
  await Promise.all([open.close(), guarded.close()]);
});

function join(url: string, name: string, extra: Partial<Parameters<typeof Session.join>[0]> = {}): Promise<LockstepSession<Tally>> {
  return Session.join({ appId: APP_ID, name, password: "pw", model: Tally, view: TallyView, reflector: url, ...extra }) as Promise<LockstepSession<Tally>>;
}

function appFields(sockets: RecordingSockets): Array<{ appToken: string; appId: string; name: string }> {
  return sockets.joins().map((j) => {
    const { appToken, appId, name } = decodeJoinAuth(j.auth);
    return { appToken, appId, name };
  });
}

test("a token string is sent in JoinAuth v3 with the appId and session name", async () => {
  const sockets = recordingSockets();
  const s = await join(open.url, "plain", { token: "the-token", socket: sockets.factory });
  expect(appFields(sockets)).toEqual([{ appToken: "the-token", appId: APP_ID, name: "plain" }]);
  await s.leave();
});

test("an async token function is called again for every connection: the rejoin's Join carries the fresh token", async () => {
  const proxy = await startProxy(open.url);
  const sockets = recordingSockets();
  let calls = 0;
  const token = async () => {
    // Resolves in a later turn of the event loop, like a fetch would (without a fixed sleep).
    await new Promise<void>((resolve) => setImmediate(resolve));
    return `token-${++calls}`;
  };
  jest.spyOn(console, "warn").mockImplementation(() => undefined);
  try {
    const s = await join(proxy.url, "renew", { token, socket: sockets.factory });
    expect(calls).toBe(1);
    const back = backOnline(s);
    proxy.cut();
    await back;
    expect(calls).toBe(2);
    expect(appFields(sockets).map((f) => f.appToken)).toEqual(["token-1", "token-2"]);
    await s.leave();
  } finally {
    jest.restoreAllMocks();
    await proxy.close();
  }
});

test("a reflector with appAuth admits a valid token, and the session works", async () => {
  const a = await join(guarded.url, "room", { token: valid("room") });
  const b = await join(guarded.url, "room", { token: () => valid("room") });
  const seen = [a, b].map((s) => captureWhen(s, () => s.model.n === 5));
  a.view.publish("tally", "add", 5);
  const [pa, pb] = await Promise.all(seen);
  expect(pa!.hash).toBe(pb!.hash);
  await Promise.all([a.leave(), b.leave()]);
});

test("a missing, foreign or badly signed token fails the join with TokenRejected and says what to do", async () => {
  for (const token of [undefined, valid("another-room"), jwt({ appId: APP_ID, name: "room2", exp: nowSec() + 60 }, "not-the-secret-but-also-32-bytes-long")]) {
    const attempt = join(guarded.url, "room2", token === undefined ? {} : { token });
    await expect(attempt).rejects.toThrow(JoinError);
    await expect(attempt).rejects.toMatchObject({ code: CloseCode.TokenRejected, message: expect.stringMatching(/the reflector refused the app token: .*Pass Session\.join\(\{ token \}\)/) });
  }
});

test("an expired token fails the first join with TokenExpired, saying to fetch a fresh one", async () => {
  const attempt = join(guarded.url, "room3", { token: jwt({ appId: APP_ID, name: "room3", exp: nowSec() - 3600 }) });
  await expect(attempt).rejects.toMatchObject({ code: CloseCode.TokenExpired, message: expect.stringMatching(/app token has expired .*a function that fetches a fresh token/) });
});

test("once joined, an expired token on a rejoin is retried with backoff, and the token function's next token gets in", async () => {
  const proxy = await startProxy(guarded.url);
  const sockets = recordingSockets();
  // First a good token, then an expired one (the rejoin is refused with 4014), then a good one again.
  const tokens = [valid("room4"), jwt({ appId: APP_ID, name: "room4", exp: nowSec() - 60 }), valid("room4")];
  let calls = 0;
  jest.spyOn(console, "warn").mockImplementation(() => undefined);
  try {
    const s = await join(proxy.url, "room4", { token: () => tokens[Math.min(calls++, tokens.length - 1)]!, socket: sockets.factory });
    const back = backOnline(s);
    proxy.cut();
    await back;
    expect(sockets.joins()).toHaveLength(3); // the refused rejoin, then the one that got in
    const seen = captureWhen(s, () => s.model.n === 1);
    s.view.publish("tally", "add", 1);
    await seen;
    expect(calls).toBe(3);
    await s.leave();
  } finally {
    jest.restoreAllMocks();
    await proxy.close();
  }
});

test("a token function that throws, or returns no string, fails the join with a clear error", async () => {
  await expect(join(open.url, "bad-fn", { token: () => Promise.reject(new Error("backend down")) })).rejects.toThrow(
    /Session\.join\(\{ token \}\): the token function failed: backend down/,
  );
  await expect(join(open.url, "bad-fn", { token: (() => 7) as never })).rejects.toThrow(/must return \(or resolve to\) a non-empty string, got number/);
});
