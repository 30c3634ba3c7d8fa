import { DecryptionError, ENVELOPE_OVERHEAD, ENVELOPE_VERSION, deriveMasterKey, deriveSessionKeys, deriveSubkey, open, seal } from "../src/session/crypto";

const key = new Uint8Array(32).fill(7);
const otherKey = new Uint8Array(32).fill(8);
const text = new TextEncoder().encode("the quick brown fox");

describe("envelope", () => {
  test("round trip, with the documented layout and overhead", () => {
    const env = seal(key, text);
    expect(env[0]).toBe(ENVELOPE_VERSION);
    expect(env.length).toBe(text.length + ENVELOPE_OVERHEAD);
    expect(ENVELOPE_OVERHEAD).toBe(1 + 24 + 16);
    expect(open(key, env)).toEqual(text);
    expect(open(key, seal(key, new Uint8Array(0)))).toEqual(new Uint8Array(0));
  });

  test("the plaintext does not appear in the envelope", () => {
    const env = Buffer.from(seal(key, text));
    expect(env.includes(Buffer.from("quick"))).toBe(false);
  });

  test("a wrong key fails with DecryptionError", () => {
    expect(() => open(otherKey, seal(key, text))).toThrow(DecryptionError);
  });

  test("every truncation fails", () => {
    const env = seal(key, text);
    for (let n = 0; n < env.length; n++) expect(() => open(key, env.subarray(0, n))).toThrow(DecryptionError);
  });

  test("every single bit flip fails", () => {
    const env = seal(key, text);
    for (let i = 0; i < env.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = env.slice();
        bad[i]! ^= 1 << bit;
        expect(() => open(key, bad)).toThrow(DecryptionError);
      }
    }
  });

  test("an unknown version fails with a clear message", () => {
    const env = seal(key, text);
    env[0] = 9;
    expect(() => open(key, env)).toThrow(/unknown envelope version 9/);
  });

  test("nonces never repeat across many encryptions", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20000; i++) seen.add(Buffer.from(seal(key, text).subarray(1, 25)).toString("hex"));
    expect(seen.size).toBe(20000);
  });
});

describe("key derivation", () => {
  test("PBKDF2 is deterministic per password and persistentId, and differs otherwise", async () => {
    const a = await deriveMasterKey("pw", "pid", 1000);
    expect(await deriveMasterKey("pw", "pid", 1000)).toEqual(a);
    expect(await deriveMasterKey("pw2", "pid", 1000)).not.toEqual(a);
    expect(await deriveMasterKey("pw", "pid2", 1000)).not.toEqual(a);
    expect(a).toHaveLength(32);
  });

  test("subkeys differ per purpose, and an envelope for one purpose does not open as another", async () => {
    const master = await deriveMasterKey("pw", "pid", 1000);
    const k1 = await deriveSubkey(master, "lockstep/v1/message/s1");
    const k2 = await deriveSubkey(master, "lockstep/v1/message/s2");
    expect(k1).not.toEqual(k2);
    expect(() => open(k2, seal(k1, text))).toThrow(DecryptionError);
  });

  test("session keys: the verifier is SHA-256 of the access token, and nothing equals the password-derived master", async () => {
    const keys = await deriveSessionKeys("secret", "pid", "sid");
    const { createHash } = await import("node:crypto");
    expect(Buffer.from(keys.verifier).toString("hex")).toBe(createHash("sha256").update(keys.accessToken).digest("hex"));
    const all = [keys.message, keys.viewData, keys.check, keys.accessToken].map((k) => Buffer.from(k).toString("hex"));
    expect(new Set(all).size).toBe(4);
  });

  test("the wire session id is keyed: 43 base64url characters, not the sessionId, and another for another password or session", async () => {
    const keys = await deriveSessionKeys("secret", "pid", "sid");
    expect(keys.wireSessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(keys.wireSessionId).not.toBe("sid");
    expect((await deriveSessionKeys("secret", "pid", "sid")).wireSessionId).toBe(keys.wireSessionId);
    expect((await deriveSessionKeys("other", "pid", "sid")).wireSessionId).not.toBe(keys.wireSessionId);
    expect((await deriveSessionKeys("secret", "pid", "sid2")).wireSessionId).not.toBe(keys.wireSessionId);
  });

  test("the session's persistence slot is keyed by the password, not the public persistentId", async () => {
    const { sessionSlotOf } = await import("../src/session/persist-uploads");
    const keys = await deriveSessionKeys("secret", "pid", "sid");
    const slot = sessionSlotOf(keys.persistMaster);
    expect(slot).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(slot).not.toBe("pid");
    // Every code version (sessionId) of the name shares it; another password names another slot.
    expect(sessionSlotOf((await deriveSessionKeys("secret", "pid", "sid2")).persistMaster)).toBe(slot);
    expect(sessionSlotOf((await deriveSessionKeys("other", "pid", "sid")).persistMaster)).not.toBe(slot);
  });
});
