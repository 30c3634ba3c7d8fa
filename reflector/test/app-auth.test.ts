import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { CloseCode, ProtocolError, type JoinAuth } from "@lockstep/protocol";
import { ReflectorError } from "../src/errors";
import { createAppAuth, loadAppAuth, type AppAuthVerifier } from "../src/app-auth";

const SECRET = "an app backend secret of 32+ bytes, for tests";
const SECRET_BYTES = new TextEncoder().encode(SECRET);
const APP = "com.example.chat";
const NAME = "room-1";

/** base64url(SHA-256(appId + "/" + name)), as the client computes a persistentId. */
function persistentIdOf(appId: string, name: string): string {
  return createHash("sha256").update(`${appId}/${name}`).digest("base64url");
}

function joinAuth(appToken: string, appId = APP, name = NAME): JoinAuth {
  const zero = new Uint8Array(32);
  return { token: zero, verifier: zero, check: new Uint8Array(1), slot: "", slotToken: new Uint8Array(0), appToken, appId, name };
}

interface SignOptions {
  readonly alg?: string;
  readonly kid?: string;
  readonly exp?: string | number;
  readonly nbf?: string | number;
  readonly iss?: string;
  readonly aud?: string;
}

async function sign(claims: Record<string, unknown>, key: Uint8Array | CryptoKey = SECRET_BYTES, options: SignOptions = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? "HS256", ...(options.kid !== undefined ? { kid: options.kid } : {}) }).setIssuedAt();
  if (options.exp !== undefined) jwt.setExpirationTime(options.exp);
  if (options.nbf !== undefined) jwt.setNotBefore(options.nbf);
  if (options.iss !== undefined) jwt.setIssuer(options.iss);
  if (options.aud !== undefined) jwt.setAudience(options.aud);
  return jwt.sign(key);
}

/** Verifies and returns the ProtocolError it failed with (the test fails if it did not). */
async function failure(verifier: AppAuthVerifier, auth: JoinAuth, persistentId = persistentIdOf(auth.appId, auth.name)): Promise<ProtocolError> {
  let caught: unknown;
  try {
    await verifier.verify(auth, persistentId);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  const error = caught as ProtocolError;
  // Messages go to clients and logs: they must never quote the token (nor its signature).
  if (auth.appToken !== "") {
    expect(error.message).not.toContain(auth.appToken);
    for (const part of auth.appToken.split(".")) if (part.length > 8) expect(error.message).not.toContain(part);
  }
  return error;
}

async function rejectedWith(verifier: AppAuthVerifier, auth: JoinAuth, pattern: RegExp, persistentId?: string): Promise<void> {
  const error = await failure(verifier, auth, persistentId);
  expect(error.code).toBe(CloseCode.TokenRejected);
  expect(error.message).toMatch(pattern);
}

async function expiredWith(verifier: AppAuthVerifier, auth: JoinAuth, pattern: RegExp): Promise<void> {
  const error = await failure(verifier, auth);
  expect(error.code).toBe(CloseCode.TokenExpired);
  expect(error.message).toMatch(pattern);
}

async function publicJwk(key: CryptoKey, extra: Partial<JWK> = {}): Promise<JsonWebKey> {
  return { ...(await exportJWK(key)), ...extra } as JsonWebKey;
}

describe("createAppAuth with a shared secret", () => {
  const verifier = createAppAuth({ secret: SECRET });

  test("a valid token for this app and name is accepted", async () => {
    const token = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { exp: "1h" });
    await expect(verifier.verify(joinAuth(token), persistentIdOf(APP, NAME))).resolves.toBeUndefined();
  });

  test.each(["HS384", "HS512"])("%s is accepted too", async (alg) => {
    const token = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { alg, exp: "1h" });
    await expect(verifier.verify(joinAuth(token), persistentIdOf(APP, NAME))).resolves.toBeUndefined();
  });

  test("the secret may be given as bytes", async () => {
    const bytes = new Uint8Array(SECRET_BYTES);
    const fromBytes = createAppAuth({ secret: bytes });
    bytes.fill(0); // the verifier keeps its own copy
    const token = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { exp: "1h" });
    await expect(fromBytes.verify(joinAuth(token), persistentIdOf(APP, NAME))).resolves.toBeUndefined();
  });

  test("a token without appId and name claims is accepted for any name, bound by the persistentId only", async () => {
    const token = await sign({}, SECRET_BYTES, { exp: "1h" });
    for (const [appId, name] of [[APP, NAME], [APP, "room-2"], ["another.app", "x"]] as const) {
      await expect(verifier.verify(joinAuth(token, appId, name), persistentIdOf(appId, name))).resolves.toBeUndefined();
    }
    await rejectedWith(verifier, joinAuth(token, APP, "room-2"), /persistentId/, persistentIdOf(APP, NAME));
  });

  test("a token with only an appId claim opens any name of that app", async () => {
    const token = await sign({ appId: APP }, SECRET_BYTES, { exp: "1h" });
    await expect(verifier.verify(joinAuth(token, APP, "room-9"), persistentIdOf(APP, "room-9"))).resolves.toBeUndefined();
    await rejectedWith(verifier, joinAuth(token, "another.app", "room-9"), /another app/);
  });

  test("an expired token gets TokenExpired", async () => {
    const token = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { exp: Math.floor(Date.now() / 1000) - 60 });
    await expiredWith(verifier, joinAuth(token), /expired at .*Z: get a fresh token/);
  });

  test("a token not valid yet (nbf) gets TokenExpired", async () => {
    const token = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { nbf: "10 min", exp: "1h" });
    await expiredWith(verifier, joinAuth(token), /not valid until .*Z \(claim nbf\)/);
  });

  test("exp and nbf are checked against the injected clock, with clockToleranceSec of skew", async () => {
    const exp = 2_000_000_000;
    const token = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { exp, nbf: exp - 100 });
    const at = (ms: number, clockToleranceSec?: number) => createAppAuth({ secret: SECRET, now: () => ms, ...(clockToleranceSec !== undefined ? { clockToleranceSec } : {}) });
    const id = persistentIdOf(APP, NAME);
    await expect(at(exp * 1000 - 1000).verify(joinAuth(token), id)).resolves.toBeUndefined();
    await expect(at(exp * 1000 + 4000).verify(joinAuth(token), id)).resolves.toBeUndefined(); // default tolerance 5 s
    await expiredWith(at(exp * 1000 + 6000), joinAuth(token), /expired/);
    await expiredWith(at(exp * 1000, 0), joinAuth(token), /expired/);
    await expect(at((exp - 104) * 1000).verify(joinAuth(token), id)).resolves.toBeUndefined();
    await expiredWith(at((exp - 106) * 1000), joinAuth(token), /not valid until/);
  });

  test("a token signed with another secret gets TokenRejected", async () => {
    const token = await sign({ appId: APP, name: NAME }, new TextEncoder().encode("another secret, also at least 32 bytes"), { exp: "1h" });
    await rejectedWith(verifier, joinAuth(token), /signature does not verify/);
  });

  test("an altered token gets TokenRejected", async () => {
    const token = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { exp: "1h" });
    const [header, , signature] = token.split(".");
    const payload = Buffer.from(JSON.stringify({ appId: APP, name: "room-2" })).toString("base64url");
    await rejectedWith(verifier, joinAuth(`${header}.${payload}.${signature}`, APP, "room-2"), /signature does not verify/);
  });

  test("a wrong appId claim gets TokenRejected", async () => {
    const token = await sign({ appId: "another.app", name: NAME }, SECRET_BYTES, { exp: "1h" });
    await rejectedWith(verifier, joinAuth(token), /another app \(its claim appId differs/);
  });

  test("a wrong name claim gets TokenRejected", async () => {
    const token = await sign({ appId: APP, name: "room-2" }, SECRET_BYTES, { exp: "1h" });
    await rejectedWith(verifier, joinAuth(token), /another session name \(its claim name differs/);
  });

  test("claims of the wrong type get TokenRejected", async () => {
    await rejectedWith(verifier, joinAuth(await sign({ appId: 7, name: NAME })), /claim appId must be a string/);
    await rejectedWith(verifier, joinAuth(await sign({ appId: APP, name: [NAME] })), /claim name must be a string/);
    await rejectedWith(verifier, joinAuth(await sign({ appId: APP, name: NAME, exp: "tomorrow" })), /claim exp is invalid/);
  });

  test("a persistentId that is not H(appId/name) gets TokenRejected, even with matching claims", async () => {
    const token = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { exp: "1h" });
    await rejectedWith(verifier, joinAuth(token), /persistentId is not base64url\(SHA-256/, persistentIdOf(APP, "room-2"));
    await rejectedWith(verifier, joinAuth(token), /persistentId/, persistentIdOf(APP, NAME).slice(1));
  });

  test("a token without the appId and name fields of the join gets TokenRejected", async () => {
    const token = await sign({}, SECRET_BYTES, { exp: "1h" });
    await rejectedWith(verifier, joinAuth(token, "", ""), /no appId or session name/, persistentIdOf("", ""));
  });

  test("a join without a token gets TokenRejected", async () => {
    await rejectedWith(verifier, joinAuth("", "", ""), /carries none/, persistentIdOf(APP, NAME));
  });

  test.each([
    ["not a JWT", "garbage"],
    ["three empty parts", ".."],
    ["bad base64", "a.b.c"],
    ["JSON that is no claims object", `${Buffer.from('{"alg":"HS256"}').toString("base64url")}.${Buffer.from("[1]").toString("base64url")}.sig`],
    ["five parts (a JWE)", "a.b.c.d.e"],
  ])("a malformed token (%s) gets TokenRejected", async (_what, token) => {
    const error = await failure(verifier, joinAuth(token));
    expect(error.code).toBe(CloseCode.TokenRejected);
    expect(error.message).toMatch(/^app token (is malformed|could not be verified|signature)/);
  });

  test("an unsigned token (alg none) gets TokenRejected", async () => {
    const header = Buffer.from('{"alg":"none"}').toString("base64url");
    const payload = Buffer.from(JSON.stringify({ appId: APP, name: NAME })).toString("base64url");
    await rejectedWith(verifier, joinAuth(`${header}.${payload}.`), /algorithm none is not accepted here; this reflector accepts HS256, HS384, HS512/);
  });

  test("a token with an unsupported critical header extension gets TokenRejected", async () => {
    // jose refuses to sign with an unknown crit extension, so the header is built by hand (the signature is never reached).
    const header = Buffer.from(JSON.stringify({ alg: "HS256", crit: ["x-ext"], "x-ext": 1 })).toString("base64url");
    const payload = Buffer.from(JSON.stringify({ appId: APP, name: NAME })).toString("base64url");
    await rejectedWith(verifier, joinAuth(`${header}.${payload}.c2ln`), /does not support \(such as a crit header extension\)/);
  });

  test("an RS256 token gets TokenRejected by a secret-only verifier", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    const token = await sign({ appId: APP, name: NAME }, privateKey, { alg: "RS256", exp: "1h" });
    await rejectedWith(verifier, joinAuth(token), /algorithm RS256 is not accepted/);
  });

  test("issuer and audience, when configured, must match", async () => {
    const strict = createAppAuth({ secret: SECRET, issuer: "https://app.example", audience: "lockstep" });
    const good = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { iss: "https://app.example", aud: "lockstep", exp: "1h" });
    await expect(strict.verify(joinAuth(good), persistentIdOf(APP, NAME))).resolves.toBeUndefined();
    const wrongIssuer = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { iss: "https://evil.example", aud: "lockstep", exp: "1h" });
    await rejectedWith(strict, joinAuth(wrongIssuer), /not issued by "https:\/\/app.example".*claim iss differs/);
    const noIssuer = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { aud: "lockstep", exp: "1h" });
    await rejectedWith(strict, joinAuth(noIssuer), /claim iss missing/);
    const wrongAudience = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { iss: "https://app.example", aud: "other", exp: "1h" });
    await rejectedWith(strict, joinAuth(wrongAudience), /not for audience "lockstep".*claim aud differs/);
    // Without issuer/audience configured, any are accepted.
    await expect(verifier.verify(joinAuth(wrongIssuer), persistentIdOf(APP, NAME))).resolves.toBeUndefined();
  });
});

describe("createAppAuth with a JWKS", () => {
  let rsa: CryptoKeyPair;
  let ec: CryptoKeyPair;
  let verifier: AppAuthVerifier;

  beforeAll(async () => {
    rsa = await generateKeyPair("RS256");
    ec = await generateKeyPair("ES256");
    verifier = createAppAuth({ jwks: { keys: [await publicJwk(rsa.publicKey, { kid: "rsa-1" }), await publicJwk(ec.publicKey, { kid: "ec-1" })] } });
  });

  test.each([
    ["RS256", "rsa-1"],
    ["ES256", "ec-1"],
  ])("a valid %s token is accepted (kid %s)", async (alg, kid) => {
    const key = alg === "RS256" ? rsa.privateKey : ec.privateKey;
    const token = await sign({ appId: APP, name: NAME }, key, { alg, kid, exp: "1h" });
    await expect(verifier.verify(joinAuth(token), persistentIdOf(APP, NAME))).resolves.toBeUndefined();
  });

  test("without a kid, the one key that fits the alg verifies it", async () => {
    const token = await sign({ appId: APP, name: NAME }, ec.privateKey, { alg: "ES256", exp: "1h" });
    await expect(verifier.verify(joinAuth(token), persistentIdOf(APP, NAME))).resolves.toBeUndefined();
  });

  test("an expired token gets TokenExpired", async () => {
    const token = await sign({ appId: APP, name: NAME }, rsa.privateKey, { alg: "RS256", kid: "rsa-1", exp: Math.floor(Date.now() / 1000) - 60 });
    await expiredWith(verifier, joinAuth(token), /expired/);
  });

  test("a token signed by another key under a known kid gets TokenRejected", async () => {
    const other = await generateKeyPair("ES256");
    const token = await sign({ appId: APP, name: NAME }, other.privateKey, { alg: "ES256", kid: "ec-1", exp: "1h" });
    await rejectedWith(verifier, joinAuth(token), /signature does not verify/);
    const rsaOther = await generateKeyPair("RS256");
    const rsaToken = await sign({ appId: APP, name: NAME }, rsaOther.privateKey, { alg: "RS256", exp: "1h" });
    await rejectedWith(verifier, joinAuth(rsaToken), /signature does not verify/);
  });

  test("a token of an unknown key id gets TokenRejected", async () => {
    const token = await sign({ appId: APP, name: NAME }, ec.privateKey, { alg: "ES256", kid: "ec-2", exp: "1h" });
    await rejectedWith(verifier, joinAuth(token), /key this reflector does not know/);
  });

  test("an HS256 token gets TokenRejected by a JWKS-only verifier (no algorithm confusion)", async () => {
    const token = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { exp: "1h" });
    await rejectedWith(verifier, joinAuth(token), /algorithm HS256 is not accepted here; this reflector accepts RS256, PS256, ES256/);
  });

  test("an algorithm outside the accepted list gets TokenRejected", async () => {
    const es512 = await generateKeyPair("ES512");
    const token = await sign({ appId: APP, name: NAME }, es512.privateKey, { alg: "ES512", exp: "1h" });
    await rejectedWith(verifier, joinAuth(token), /algorithm ES512 is not accepted/);
  });

  test("claims are checked as with a secret", async () => {
    const token = await sign({ appId: APP, name: "room-2" }, ec.privateKey, { alg: "ES256", kid: "ec-1", exp: "1h" });
    await rejectedWith(verifier, joinAuth(token), /another session name/);
  });

  test("with both a secret and a JWKS, tokens of either kind are accepted", async () => {
    const both = createAppAuth({ secret: SECRET, jwks: { keys: [await publicJwk(ec.publicKey)] } });
    const id = persistentIdOf(APP, NAME);
    await expect(both.verify(joinAuth(await sign({ appId: APP, name: NAME }, SECRET_BYTES, { exp: "1h" })), id)).resolves.toBeUndefined();
    await expect(both.verify(joinAuth(await sign({ appId: APP, name: NAME }, ec.privateKey, { alg: "ES256", exp: "1h" })), id)).resolves.toBeUndefined();
  });
});

describe("createAppAuth options", () => {
  test.each([
    ["no key", {}, /needs a secret .* or a jwks/],
    ["a short secret", { secret: "short" }, /at least 32 bytes .*got 5.*openssl rand/],
    ["a short secret of bytes", { secret: new Uint8Array(31) }, /at least 32 bytes/],
    ["an empty JWKS", { jwks: { keys: [] } }, /at least one key/],
    ["a symmetric key in the JWKS", { jwks: { keys: [{ kty: "oct", k: "AAAA" }] } }, /symmetric key/],
    ["a private key in the JWKS", { jwks: { keys: [{ kty: "EC", crv: "P-256", x: "x", y: "y", d: "d", kid: "k" }] } }, /key 0 \(kid "k"\) is a private key/],
    ["a JWKS key for an unaccepted algorithm", { jwks: { keys: [{ kty: "EC", crv: "P-256", x: "x", y: "y", alg: "ES512" }] } }, /algorithm "ES512", which this reflector does not accept/],
    ["an unknown key type", { jwks: { keys: [{ kty: "X" }] } }, /key type "X"/],
    ["an empty issuer", { secret: SECRET, issuer: "" }, /issuer must be a non-empty string/],
    ["a negative clock tolerance", { secret: SECRET, clockToleranceSec: -1 }, /clockToleranceSec must be a non-negative number/],
  ])("%s is refused", (_what, options, message) => {
    expect(() => createAppAuth(options as Parameters<typeof createAppAuth>[0])).toThrow(ReflectorError);
    expect(() => createAppAuth(options as Parameters<typeof createAppAuth>[0])).toThrow(message);
  });
});

describe("loadAppAuth", () => {
  let dir: string;
  let ec: CryptoKeyPair;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "lockstep-app-auth-"));
    ec = await generateKeyPair("ES256", { extractable: true });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function file(name: string, text: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  }

  test("nothing given: no app auth", async () => {
    await expect(loadAppAuth({})).resolves.toBeUndefined();
  });

  test("a secret given directly", async () => {
    await expect(loadAppAuth({ secret: SECRET, issuer: "i", audience: "a" })).resolves.toEqual({ secret: SECRET, issuer: "i", audience: "a" });
  });

  test("a secret file, its trailing line break ignored", async () => {
    const options = await loadAppAuth({ secretFile: await file("secret", `${SECRET}\n`) });
    expect(options).toEqual({ secret: SECRET });
    const token = await sign({ appId: APP, name: NAME }, SECRET_BYTES, { exp: "1h" });
    await expect(createAppAuth(options!).verify(joinAuth(token), persistentIdOf(APP, NAME))).resolves.toBeUndefined();
  });

  test("a JWKS file, or a file of one JWK", async () => {
    const jwk = await publicJwk(ec.publicKey);
    const token = await sign({ appId: APP, name: NAME }, ec.privateKey, { alg: "ES256", exp: "1h" });
    for (const text of [JSON.stringify({ keys: [jwk] }), JSON.stringify(jwk)]) {
      const options = await loadAppAuth({ jwksFile: await file("jwks.json", text) });
      expect(options?.jwks?.keys).toHaveLength(1);
      await expect(createAppAuth(options!).verify(joinAuth(token), persistentIdOf(APP, NAME))).resolves.toBeUndefined();
    }
  });

  test.each([
    ["a missing secret file", async () => ({ secretFile: join(dir, "nope") }), /cannot read app token secret file .*nope.*no such file/],
    ["an empty secret file", async () => ({ secretFile: await file("empty", "\n") }), /secret file .*empty \(--auth-secret-file\) is empty/],
    ["a short secret file", async () => ({ secretFile: await file("short", "abc\n") }), /secret file .*short \(--auth-secret-file\) must be at least 32 bytes/],
    ["a missing JWKS file", async () => ({ jwksFile: join(dir, "nope.json") }), /cannot read app token JWKS file .*nope\.json/],
    ["a JWKS file that is not JSON", async () => ({ jwksFile: await file("bad.json", "{keys:") }), /JWKS file .*bad\.json \(--auth-jwks\) is not JSON/],
    ["a JWKS file that is no key set", async () => ({ jwksFile: await file("list.json", "[1,2]") }), /must hold a JSON Web Key Set/],
    ["a JWKS file with a private key", async () => ({ jwksFile: await file("private.json", JSON.stringify({ keys: [await exportJWK(ec.privateKey)] })) }), /private\.json \(--auth-jwks\): key 0 is a private key/],
    ["a secret and a secret file", async () => ({ secret: SECRET, secretFile: await file("s2", SECRET) }), /either directly .* or in a file/],
    ["an issuer without keys", async () => ({ issuer: "https://app.example" }), /needs a secret or keys/],
  ])("%s is refused with a clear error", async (_what, files, message) => {
    const promise = loadAppAuth(await files());
    await expect(promise).rejects.toThrow(ReflectorError);
    await expect(promise).rejects.toThrow(message);
  });
});
