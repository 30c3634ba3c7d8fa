import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTHeaderParameters, type JWTPayload, type JWTVerifyOptions, type FlattenedJWSInput } from "jose";
import { CloseCode, ProtocolError, type JoinAuth } from "@lockstep/protocol";
import { ReflectorError } from "./errors";

/**
 * Options of app-level admission (PROTOCOL.md §14): the reflector admits a Join only if it carries
 * an app token (a JWT) that the app's backend signed for that app and session name. Give `secret`,
 * `jwks` or both.
 */
export interface AppAuthOptions {
  /**
   * Shared secret of HS256/HS384/HS512 tokens: a string (its UTF-8 bytes are the key) or bytes, at
   * least 32 bytes long (RFC 7518 §3.2). Generate one with `openssl rand -base64 32`.
   */
  readonly secret?: string | Uint8Array;
  /**
   * Public keys of RS256/PS256/ES256/ES384/EdDSA tokens, as a JSON Web Key Set. A token's `kid`
   * header picks the key (needed only when several keys fit its `alg`). Private or symmetric keys
   * are refused: the reflector only verifies.
   */
  readonly jwks?: { readonly keys: readonly JsonWebKey[] };
  /** Accept only tokens whose `iss` claim is this. Default: any issuer. */
  readonly issuer?: string;
  /** Accept only tokens whose `aud` claim is (or contains) this. Default: any audience. */
  readonly audience?: string;
  /** Seconds of clock skew allowed between the app's backend and the reflector when checking `exp` and `nbf`. Default 5. */
  readonly clockToleranceSec?: number;
  /** Wall-clock time in ms since 1970 that `exp` and `nbf` are checked against. Default `Date.now`. */
  readonly now?: () => number;
}

/** Checks the app token of a Join; made by {@link createAppAuth}. */
export interface AppAuthVerifier {
  /**
   * Resolves when a Join with `auth` and `persistentId` may proceed.
   * @throws {ProtocolError} with `CloseCode.TokenRejected` (4013) if the token is missing,
   *   malformed, badly signed, of an unaccepted algorithm or issuer/audience, or its claims do not
   *   match the Join; with `CloseCode.TokenExpired` (4014) if it has expired or is not valid yet.
   */
  verify(auth: JoinAuth, persistentId: string): Promise<void>;
}

/** Algorithms accepted with a shared secret. */
const HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"] as const;
/** Algorithms accepted with a JWKS ("Ed25519" is the fully specified name of EdDSA over Ed25519, RFC 9864). */
const PUBLIC_KEY_ALGORITHMS = ["RS256", "PS256", "ES256", "ES384", "EdDSA", "Ed25519"] as const;
const HMAC_HASH: Readonly<Record<string, string>> = { HS256: "SHA-256", HS384: "SHA-384", HS512: "SHA-512" };
const MIN_SECRET_BYTES = 32;
const DEFAULT_CLOCK_TOLERANCE_SEC = 5;

type KeyResolver = (header: JWTHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/**
 * Builds the verifier of app tokens. Keys are prepared once here (HMAC keys on first use), so a
 * verification costs one signature check and a SHA-256.
 *
 * A token is accepted if its signature verifies with `secret` (HS256/384/512) or a key of `jwks`
 * (RS256, PS256, ES256, ES384, EdDSA), it has not expired (`exp`) and is valid already (`nbf`),
 * `iss`/`aud` match `issuer`/`audience` if those are set, and its claims match the Join: claim
 * `appId`, if present, equals the JoinAuth's appId; claim `name`, if present, equals its name;
 * and always base64url(SHA-256(appId + "/" + name)) equals the Join's persistentId. So a token
 * without `appId`/`name` claims admits the app's every session, and a token with them only that
 * app's sessions of that name. Tokens should carry an `exp`: one without it never expires.
 *
 * @throws {ReflectorError} if the options are invalid (no key, a short secret, a malformed JWKS…).
 * @example An app backend signs a token for a user who may open session `name` of app `appId`:
 * ```ts
 * import { SignJWT } from "jose";
 * const secret = new TextEncoder().encode(process.env.LOCKSTEP_APP_SECRET); // ≥ 32 bytes
 * const token = await new SignJWT({ appId, name })
 *   .setProtectedHeader({ alg: "HS256" })
 *   .setExpirationTime("1h")
 *   .sign(secret);
 * // The browser passes it on: Session.join({ appId, name, token, … }).
 * ```
 * and the reflector checks it:
 * ```ts
 * const reflector = await startReflector({ appAuth: { secret: process.env.LOCKSTEP_APP_SECRET } });
 * ```
 */
export function createAppAuth(options: AppAuthOptions): AppAuthVerifier {
  return buildVerifier(options, OPTION_LABELS);
}

/** How errors name each setting: the option, or the CLI flag it came from. */
interface Labels {
  readonly secret: string;
  readonly jwks: string;
  readonly issuer: string;
  readonly audience: string;
}

const OPTION_LABELS: Labels = {
  secret: "option appAuth.secret",
  jwks: "option appAuth.jwks",
  issuer: "option appAuth.issuer",
  audience: "option appAuth.audience",
};

function buildVerifier(options: AppAuthOptions, labels: Labels): AppAuthVerifier {
  if (typeof options !== "object" || options === null) throw new ReflectorError("option appAuth must be an object with a secret or a jwks");
  if (options.secret === undefined && options.jwks === undefined) {
    throw new ReflectorError("option appAuth needs a secret (for HS256 tokens) or a jwks (public keys for RS256/ES256… tokens), or both");
  }
  const algorithms: string[] = [];
  let hmacKey: ((alg: string) => Promise<CryptoKey>) | undefined;
  if (options.secret !== undefined) {
    hmacKey = hmacKeys(secretBytes(options.secret, labels.secret));
    algorithms.push(...HMAC_ALGORITHMS);
  }
  let jwks: ReturnType<typeof createLocalJWKSet> | undefined;
  if (options.jwks !== undefined) {
    jwks = localJwks(options.jwks, labels.jwks);
    algorithms.push(...PUBLIC_KEY_ALGORITHMS);
  }
  const issuer = optionalName(labels.issuer, options.issuer);
  const audience = optionalName(labels.audience, options.audience);
  const clockTolerance = options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC;
  if (!(Number.isFinite(clockTolerance) && clockTolerance >= 0)) {
    throw new ReflectorError(`option appAuth.clockToleranceSec must be a non-negative number of seconds, got ${String(clockTolerance)}`);
  }
  const now = options.now;
  // The algorithm list is enforced by jose before the resolver runs, so each branch sees only its own algorithms.
  const resolveKey: KeyResolver = async (header, token) => {
    const alg = header.alg ?? "";
    if (hmacKey !== undefined && Object.hasOwn(HMAC_HASH, alg)) return hmacKey(alg);
    if (jwks !== undefined) return jwks(header, token);
    throw new errors.JOSEAlgNotAllowed(`"alg" ${alg} not allowed`);
  };
  const verifyOptions: JWTVerifyOptions = Object.freeze({
    algorithms,
    clockTolerance,
    ...(issuer !== undefined ? { issuer } : {}),
    ...(audience !== undefined ? { audience } : {}),
  });
  const context: ErrorContext = { algorithms, issuer, audience };

  return {
    async verify(auth: JoinAuth, persistentId: string): Promise<void> {
      const token = auth.appToken;
      if (token === "") {
        throw rejected("this reflector admits only clients with an app token (a JWT signed by the app's backend) and the join carries none: get a token from the backend and pass it to Session.join({ token })");
      }
      let payload: JWTPayload;
      try {
        const opts = now === undefined ? verifyOptions : { ...verifyOptions, currentDate: new Date(now()) };
        ({ payload } = await jwtVerify(token, resolveKey, opts));
      } catch (error) {
        throw tokenError(error, token, context);
      }
      checkClaim(payload, "appId", auth.appId, "app");
      checkClaim(payload, "name", auth.name, "session name");
      if (auth.appId === "" || auth.name === "") {
        throw rejected("the join carries an app token but no appId or session name: the client must send both with the token (JoinAuth version 3), so the reflector can check which sessions the token opens");
      }
      if (persistentIdOf(auth.appId, auth.name) !== persistentId) {
        throw rejected(
          'the join\'s persistentId is not base64url(SHA-256(appId + "/" + name)) of the appId and session name it declares: an app token admits only the sessions of that name; send the appId and name the persistentId was computed from',
        );
      }
    },
  };
}

/** The public persistentId of a session name of an app (as the client computes it). */
function persistentIdOf(appId: string, name: string): string {
  return createHash("sha256").update(`${appId}/${name}`, "utf8").digest("base64url");
}

function rejected(message: string, cause?: unknown): ProtocolError {
  return new ProtocolError(message, CloseCode.TokenRejected, cause === undefined ? undefined : { cause });
}

function checkClaim(payload: JWTPayload, claim: "appId" | "name", actual: string, what: string): void {
  const value = payload[claim];
  if (value === undefined) return;
  if (typeof value !== "string") throw rejected(`app token claim ${claim} must be a string: fix the app's backend`);
  if (value !== actual) {
    throw rejected(`app token is for another ${what} (its claim ${claim} differs from the join's ${claim}): get a token for this ${what} from the app's backend`);
  }
}

interface ErrorContext {
  readonly algorithms: readonly string[];
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
}

/** Turns a jose failure into the close code and an actionable message (never quoting the token). */
function tokenError(error: unknown, token: string, context: ErrorContext): ProtocolError {
  if (error instanceof errors.JWTExpired) {
    const exp = error.payload.exp;
    const when = typeof exp === "number" ? ` at ${isoTime(exp)}` : "";
    return new ProtocolError(`app token expired${when}: get a fresh token from the app's backend and reconnect`, CloseCode.TokenExpired, { cause: error });
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    const { claim, reason } = error;
    if (claim === "nbf" && reason === "check_failed") {
      const nbf = error.payload.nbf;
      const when = typeof nbf === "number" ? ` until ${isoTime(nbf)}` : " yet";
      return new ProtocolError(
        `app token is not valid${when} (claim nbf): reconnect then, or check the clocks of the app's backend and the reflector`,
        CloseCode.TokenExpired,
        { cause: error },
      );
    }
    if (claim === "iss") return rejected(`app token was not issued by ${JSON.stringify(context.issuer)}, the issuer this reflector accepts (claim iss ${reason === "missing" ? "missing" : "differs"}): get a token from that issuer`, error);
    if (claim === "aud") return rejected(`app token is not for audience ${JSON.stringify(context.audience)}, the one this reflector accepts (claim aud ${reason === "missing" ? "missing" : "differs"}): get a token for this reflector's audience`, error);
    return rejected(`app token claim ${claim} is invalid (${reason}): fix the app's backend`, error);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return rejected("app token signature does not verify: it was signed with another secret or key than the ones this reflector trusts, or altered", error);
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return rejected("app token is signed with a key this reflector does not know (no key of its JWKS matches the token's kid and alg): sign with a listed key, or add the backend's public key to the reflector's JWKS", error);
  }
  if (error instanceof errors.JWKSMultipleMatchingKeys) {
    return rejected("app token names no key id (kid) and several keys of the reflector's JWKS fit its alg: sign with a kid header", error);
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    const alg = algorithmOf(token);
    if (error instanceof errors.JOSEAlgNotAllowed || !context.algorithms.includes(alg)) {
      return rejected(`app token algorithm ${alg} is not accepted here; this reflector accepts ${context.algorithms.join(", ")}`, error);
    }
    return rejected("app token uses a JOSE feature this reflector does not support (such as a crit header extension): sign plain JWTs", error);
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return rejected("app token is malformed (not a signed JWT in compact form with a JSON claims object): pass the token exactly as the app's backend issued it", error);
  }
  return rejected("app token could not be verified: pass the token exactly as the app's backend issued it", error);
}

/** The token's `alg` header if it is a plausible algorithm name, for error messages. */
function algorithmOf(token: string): string {
  try {
    const { alg } = decodeProtectedHeader(token);
    if (typeof alg === "string" && /^[A-Za-z0-9+-]{1,20}$/.test(alg)) return alg;
  } catch {
    // A header that does not decode is named as unknown.
  }
  return "(unknown)";
}

function isoTime(seconds: number): string {
  const ms = seconds * 1000;
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(seconds);
}

function secretBytes(secret: string | Uint8Array, label: string): Uint8Array {
  let bytes: Uint8Array;
  if (typeof secret === "string") bytes = new TextEncoder().encode(secret);
  else if (secret instanceof Uint8Array) bytes = new Uint8Array(secret); // a copy: the caller may reuse its buffer
  else throw new ReflectorError(`${label} must be a string or a Uint8Array`);
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new ReflectorError(
      `${label} must be at least ${MIN_SECRET_BYTES} bytes (RFC 7518 §3.2), got ${bytes.length}: generate one with \`openssl rand -base64 32\``,
    );
  }
  return bytes;
}

/** One HMAC verification key per hash, imported on first use and kept. */
function hmacKeys(secret: Uint8Array): (alg: string) => Promise<CryptoKey> {
  const keys = new Map<string, Promise<CryptoKey>>();
  return (alg) => {
    let key = keys.get(alg);
    if (key === undefined) {
      key = globalThis.crypto.subtle.importKey("raw", secret as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: HMAC_HASH[alg]! }, false, ["verify"]);
      keys.set(alg, key);
    }
    return key;
  };
}

function localJwks(jwks: { readonly keys: readonly JsonWebKey[] }, label: string): ReturnType<typeof createLocalJWKSet> {
  if (typeof jwks !== "object" || jwks === null || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
    throw new ReflectorError(`${label} must be a JSON Web Key Set with at least one key: { "keys": [ { "kty": "EC", … } ] }`);
  }
  jwks.keys.forEach((key, i) => {
    const where = `${label}: key ${i}${typeof key?.kid === "string" ? ` (kid ${JSON.stringify(key.kid)})` : ""}`;
    if (typeof key !== "object" || key === null || typeof key.kty !== "string") throw new ReflectorError(`${where} is not a JSON Web Key (no kty)`);
    if (key.kty === "oct") throw new ReflectorError(`${where} is a symmetric key: give a shared secret as the secret instead (option appAuth.secret, --auth-secret-file), and only public keys in the JWKS`);
    if (!["RSA", "EC", "OKP"].includes(key.kty)) throw new ReflectorError(`${where} has key type ${JSON.stringify(key.kty)}; RSA, EC and OKP keys are supported`);
    if ("d" in key) throw new ReflectorError(`${where} is a private key: the reflector only verifies, so give it the public key (without "d") and keep the private key on the app's backend`);
    if (key.alg !== undefined && !(PUBLIC_KEY_ALGORITHMS as readonly string[]).includes(key.alg)) {
      throw new ReflectorError(`${where} is for algorithm ${JSON.stringify(key.alg)}, which this reflector does not accept (${PUBLIC_KEY_ALGORITHMS.join(", ")})`);
    }
  });
  try {
    return createLocalJWKSet({ keys: jwks.keys.map((key) => ({ ...key })) as Parameters<typeof createLocalJWKSet>[0]["keys"] });
  } catch (error) {
    throw new ReflectorError(`${label} is not a valid JSON Web Key Set: ${(error as Error).message}`, { cause: error });
  }
}

function optionalName(label: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length === 0) throw new ReflectorError(`${label} must be a non-empty string`);
  return value;
}

/** Where {@link loadAppAuth} reads the app-token settings from (the CLI's `--auth-*` flags). */
export interface AppAuthFiles {
  /** The shared secret itself (`--auth-secret`). Not with `secretFile`. */
  readonly secret?: string | undefined;
  /** A file holding the shared secret (`--auth-secret-file`); a trailing line break is ignored. */
  readonly secretFile?: string | undefined;
  /** A file holding a JSON Web Key Set, or a single JSON Web Key (`--auth-jwks`). */
  readonly jwksFile?: string | undefined;
  /** Required `iss` claim (`--auth-issuer`). */
  readonly issuer?: string | undefined;
  /** Required `aud` claim (`--auth-audience`). */
  readonly audience?: string | undefined;
}

/**
 * Reads app-token settings from files into {@link AppAuthOptions}, validated as
 * {@link createAppAuth} would. Resolves to `undefined` when no secret, secret file or JWKS is
 * given (app tokens are then not required).
 * @throws {ReflectorError} if a file cannot be read or is not valid, or the settings contradict each other.
 * @example
 * ```ts
 * const appAuth = await loadAppAuth({ jwksFile: "/etc/lockstep/jwks.json", issuer: "https://app.example" });
 * const reflector = await startReflector({ appAuth });
 * ```
 */
export async function loadAppAuth(files: AppAuthFiles): Promise<AppAuthOptions | undefined> {
  const { secret, secretFile, jwksFile, issuer, audience } = files;
  if (secret !== undefined && secretFile !== undefined) {
    throw new ReflectorError("give the app token secret either directly (--auth-secret) or in a file (--auth-secret-file), not both");
  }
  if (secret === undefined && secretFile === undefined && jwksFile === undefined) {
    if (issuer !== undefined || audience !== undefined) {
      throw new ReflectorError("an app token issuer or audience (--auth-issuer, --auth-audience) needs a secret or keys to verify tokens with: add --auth-secret-file or --auth-jwks");
    }
    return undefined;
  }
  let fileSecret: string | undefined;
  if (secretFile !== undefined) {
    fileSecret = (await readText(secretFile, "app token secret file (--auth-secret-file)")).replace(/[\r\n]+$/, "");
    if (fileSecret.length === 0) throw new ReflectorError(`app token secret file ${secretFile} (--auth-secret-file) is empty: write the shared secret into it`);
  }
  let jwks: AppAuthOptions["jwks"];
  if (jwksFile !== undefined) {
    const text = await readText(jwksFile, "app token JWKS file (--auth-jwks)");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ReflectorError(`app token JWKS file ${jwksFile} (--auth-jwks) is not JSON: ${(error as Error).message}`, { cause: error });
    }
    jwks = asJwks(parsed, jwksFile);
  }
  const options: AppAuthOptions = {
    ...(secret !== undefined ? { secret } : fileSecret !== undefined ? { secret: fileSecret } : {}),
    ...(jwks !== undefined ? { jwks } : {}),
    ...(issuer !== undefined ? { issuer } : {}),
    ...(audience !== undefined ? { audience } : {}),
  };
  buildVerifier(options, {
    secret: secretFile !== undefined ? `app token secret file ${secretFile} (--auth-secret-file)` : "app token secret (--auth-secret)",
    jwks: `app token JWKS file ${jwksFile ?? ""} (--auth-jwks)`,
    issuer: "--auth-issuer",
    audience: "--auth-audience",
  });
  return options;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ReflectorError(`cannot read ${what} ${path}: ${code === "ENOENT" ? "no such file" : (error as Error).message}`, { cause: error });
  }
}

function asJwks(parsed: unknown, path: string): { readonly keys: readonly JsonWebKey[] } {
  if (typeof parsed === "object" && parsed !== null) {
    if (Array.isArray((parsed as { keys?: unknown }).keys)) return parsed as { keys: JsonWebKey[] };
    // A file with one key (as `jose`'s exportJWK writes it) is a set of one.
    if (typeof (parsed as { kty?: unknown }).kty === "string") return { keys: [parsed as JsonWebKey] };
  }
  throw new ReflectorError(`app token JWKS file ${path} (--auth-jwks) must hold a JSON Web Key Set { "keys": [ … ] } or one JSON Web Key`);
}
