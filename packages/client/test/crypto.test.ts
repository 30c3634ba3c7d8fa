import nacl from "tweetnacl";
import { testRng } from "@lockstep/test-support";
import {
  BULK_ENVELOPE_OVERHEAD,
  BULK_ENVELOPE_VERSION,
  DecryptionError,
  ENVELOPE_OVERHEAD,
  ENVELOPE_VERSION,
  NoncePool,
  deriveBulkKey,
  deriveMasterKey,
  deriveSessionKeys,
  deriveSubkey,
  open,
  openBulk,
  seal,
  sealBulk,
  slotBulkKey,
  type BulkKey,
} from "../src/session/crypto";

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

  test("envelopes are NaCl secretboxes both ways, at every size around the reused buffers' limit and past it", () => {
    const rng = testRng("secretbox interop");
    for (const size of [0, 1, 15, 16, 17, 31, 32, 33, 80, 1023, 1024, 1025, 16_352, 16_353, 16_368, 16_369, 16_384, 16_385, 100_000]) {
      const plain = rng.bytes(size);
      const env = seal(key, plain);
      expect(nacl.secretbox.open(env.subarray(25), env.subarray(1, 25), key)).toEqual(plain);
      const nonce = rng.bytes(24);
      const theirs = new Uint8Array([ENVELOPE_VERSION, ...nonce, ...nacl.secretbox(plain, nonce, key)]);
      expect(open(key, theirs)).toEqual(plain);
    }
  });

  test("reusing its buffers, open never returns bytes of another call: small after large, after a failure, and seal outputs stay apart", () => {
    const large = new Uint8Array(9000).fill(0xaa);
    const small = new Uint8Array([1, 2, 3]);
    const a = seal(key, large);
    const b = seal(key, small);
    expect(open(key, a)).toEqual(large);
    const opened = open(key, b);
    expect(opened).toEqual(small);
    expect(opened.byteOffset).toBe(0);
    expect(opened.buffer.byteLength).toBe(3);
    expect(() => open(otherKey, a)).toThrow(DecryptionError);
    expect(open(key, b)).toEqual(small);
    expect(open(key, a)).toEqual(large); // a was not changed by sealing b
  });

  test("a key of the wrong length is refused", () => {
    expect(() => seal(new Uint8Array(16), text)).toThrow(/32 bytes, not 16/);
    expect(() => open(new Uint8Array(31), seal(key, text))).toThrow(/32 bytes, not 31/);
  });

  test("an unknown version fails with a clear message", () => {
    const env = seal(key, text);
    env[0] = 9;
    expect(() => open(key, env)).toThrow(/unknown envelope version 9/);
  });

});

/** A bulk key whose AES key is imported from known bytes (the library's are derived and non-extractable). */
async function bulkKeyOf(box: Uint8Array, aesBytes: Uint8Array): Promise<BulkKey> {
  const aes = await crypto.subtle.importKey("raw", aesBytes as Uint8Array<ArrayBuffer>, "AES-GCM", false, ["encrypt", "decrypt"]);
  return { box, aes };
}

/** Expects `promise` to reject with a DecryptionError (and returns its message). */
async function decryptionFails(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DecryptionError);
  return (error as Error).message;
}

describe("bulk envelope (version 2)", () => {
  let bulk: BulkKey;
  let other: BulkKey;
  beforeAll(async () => {
    bulk = await bulkKeyOf(key, new Uint8Array(32).fill(3));
    other = await bulkKeyOf(otherKey, new Uint8Array(32).fill(4));
  });

  test("round trip, with the documented layout and overhead: [2][12-byte IV][AES-256-GCM ciphertext + tag]", async () => {
    const env = await sealBulk(bulk, text);
    expect(env[0]).toBe(BULK_ENVELOPE_VERSION);
    expect(BULK_ENVELOPE_VERSION).toBe(2);
    expect(BULK_ENVELOPE_OVERHEAD).toBe(1 + 12 + 16);
    expect(env.length).toBe(text.length + BULK_ENVELOPE_OVERHEAD);
    expect(await openBulk(bulk, env)).toEqual(text);
    expect(await openBulk(bulk, await sealBulk(bulk, new Uint8Array(0)))).toEqual(new Uint8Array(0));
    // What a stranger implementing PROTOCOL.md §10.2 computes: AES-256-GCM, the version byte as additional data.
    const raw = await crypto.subtle.importKey("raw", new Uint8Array(32).fill(3), "AES-GCM", false, ["decrypt"]);
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: env.subarray(1, 13) as Uint8Array<ArrayBuffer>, additionalData: new Uint8Array([2]) }, raw, env.subarray(13) as Uint8Array<ArrayBuffer>);
    expect(new Uint8Array(plain)).toEqual(text);
  });

  test("a large payload round-trips, and the plaintext does not appear in the envelope", async () => {
    const big = testRng("crypto.test bulk").bytes(3 * 1024 * 1024 + 17);
    const env = await sealBulk(bulk, big);
    expect(env.length).toBe(big.length + BULK_ENVELOPE_OVERHEAD);
    expect(Buffer.from(env).includes(Buffer.from(big.subarray(1000, 1032)))).toBe(false);
    expect(Buffer.compare(await openBulk(bulk, env), big)).toBe(0);
  });

  test("a version-1 envelope (stored by an earlier release) opens through openBulk with the purpose's version-1 key", async () => {
    const old = seal(key, text);
    expect(old[0]).toBe(ENVELOPE_VERSION);
    expect(await openBulk(bulk, old)).toEqual(text);
    await decryptionFails(openBulk(other, old));
  });

  test("IVs are random: the same plaintext seals differently", async () => {
    const a = await sealBulk(bulk, text);
    const b = await sealBulk(bulk, text);
    expect(Buffer.from(a.subarray(1, 13)).equals(Buffer.from(b.subarray(1, 13)))).toBe(false);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  test("a wrong key fails with DecryptionError", async () => {
    expect(await decryptionFails(openBulk(other, await sealBulk(bulk, text)))).toMatch(/failed authentication/);
  });

  test("every truncation fails", async () => {
    const env = await sealBulk(bulk, text);
    for (let n = 0; n < env.length; n++) await decryptionFails(openBulk(bulk, env.subarray(0, n)));
    expect(await decryptionFails(openBulk(bulk, new Uint8Array(0)))).toMatch(/too short/);
  });

  test("every single bit flip fails", async () => {
    const env = await sealBulk(bulk, text);
    const attempts: Array<Promise<string>> = [];
    for (let i = 0; i < env.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = env.slice();
        bad[i]! ^= 1 << bit;
        attempts.push(decryptionFails(openBulk(bulk, bad)));
      }
    }
    expect(attempts).toHaveLength(env.length * 8);
    await Promise.all(attempts);
  });

  test("an unknown version fails with a clear message", async () => {
    const env = await sealBulk(bulk, text);
    for (const version of [0, 3, 9, 255]) {
      env[0] = version;
      expect(await decryptionFails(openBulk(bulk, env))).toBe(`unknown envelope version ${version}`);
    }
  });

  test("open() (version 1 only, synchronous) refuses a version-2 envelope", async () => {
    expect(() => open(key, seal(key, text))).not.toThrow();
    expect(() => open(key, new Uint8Array(0))).toThrow(DecryptionError);
    const env = await sealBulk(bulk, new Uint8Array(64));
    expect(() => open(key, env)).toThrow(/unknown envelope version 2/);
  });
});

describe("nonce pool", () => {
  test("nonces never repeat across many seals, across many refills of a small pool", () => {
    let refills = 0;
    const pool = new NoncePool(24 * 7 + 5, (into) => {
      refills++;
      crypto.getRandomValues(into);
    });
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const env = seal(key, text, pool);
      expect(open(key, env)).toEqual(text);
      seen.add(Buffer.from(env.subarray(1, 25)).toString("hex"));
    }
    expect(seen.size).toBe(5000);
    // 7 nonces per fill: the 5 bytes left over are dropped, not reused.
    expect(refills).toBe(Math.ceil(5000 / 7));
  });

  test("bytes are handed out in order, each once; a refill replaces the pool at the boundary", () => {
    let next = 0;
    const fills: number[] = [];
    // A counting source makes every byte handed out identifiable.
    const pool = new NoncePool(48, (into) => {
      fills.push(next);
      for (let i = 0; i < into.length; i++) into[i] = next++ & 0xff;
    });
    const nonce = new Uint8Array(24);
    const taken: number[] = [];
    for (let i = 0; i < 5; i++) {
      pool.take(nonce);
      taken.push(...nonce);
    }
    expect(fills).toEqual([0, 48, 96]);
    expect(taken).toEqual(Array.from({ length: 120 }, (_, i) => i));
    // A take that does not fit in what is left starts a fresh pool (the 14 bytes left are skipped).
    pool.take(new Uint8Array(10));
    pool.take(new Uint8Array(24));
    expect(fills).toEqual([0, 48, 96, 144]);
  });

  test("seal() draws its nonce from the pool it is given", () => {
    const pool = new NoncePool(24, (into) => into.fill(0xab));
    const env = seal(key, text, pool);
    expect(Array.from(env.subarray(1, 25))).toEqual(new Array(24).fill(0xab));
    expect(open(key, env)).toEqual(text);
  });

  test("a pool must hold at least one nonce and at most one getRandomValues call", () => {
    expect(() => new NoncePool(23)).toThrow(RangeError);
    expect(() => new NoncePool(65_537)).toThrow(RangeError);
    expect(() => new NoncePool(24).take(new Uint8Array(25))).toThrow(RangeError);
  });

  test("the default pool gives distinct nonces to every seal", () => {
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

  test("the snapshot's AES key is its own (HKDF, another info string), non-extractable; neither key opens the other version's envelope", async () => {
    const keys = await deriveSessionKeys("secret", "pid", "sid");
    expect(keys.snapshot.aes.extractable).toBe(false);
    expect(keys.snapshot.aes.algorithm).toMatchObject({ name: "AES-GCM", length: 256 });
    await expect(crypto.subtle.exportKey("raw", keys.snapshot.aes)).rejects.toThrow();
    // The bits behind the AES key, derived as deriveSessionKeys does (PBKDF2 is cached: same master).
    const master = await deriveMasterKey("secret", "pid");
    const aesBits = await deriveSubkey(master, "lockstep/v2/snapshot-aes/sid");
    expect(await deriveSubkey(master, "lockstep/v1/snapshot/sid")).toEqual(keys.snapshot.box);
    expect(Buffer.from(aesBits).equals(Buffer.from(keys.snapshot.box))).toBe(false);
    const v2 = await sealBulk(keys.snapshot, text);
    // Those bits are the key (so the checks below can fail)...
    expect(await openBulk(await bulkKeyOf(keys.snapshot.box, aesBits), v2)).toEqual(text);
    // ...a v2 envelope does not open under the v1 key's bytes as an AES key...
    await decryptionFails(openBulk(await bulkKeyOf(keys.snapshot.box, keys.snapshot.box), v2));
    // ...nor a v1 envelope under the AES key's bytes as a secretbox key.
    expect(() => open(aesBits, seal(keys.snapshot.box, text))).toThrow(DecryptionError);
    // Another session's snapshot key does not open it.
    const otherSession = await deriveSessionKeys("secret", "pid", "sid2");
    await decryptionFails(openBulk(otherSession.snapshot, v2));
  });

  test("deriveBulkKey is deterministic per master and info, and differs per info", async () => {
    const master = await deriveMasterKey("pw", "pid", 1000);
    const a = await deriveBulkKey(master, "lockstep/v2/snapshot-aes/s1");
    const env = await sealBulk({ box: key, aes: a }, text);
    expect(await openBulk({ box: key, aes: await deriveBulkKey(master, "lockstep/v2/snapshot-aes/s1") }, env)).toEqual(text);
    await decryptionFails(openBulk({ box: key, aes: await deriveBulkKey(master, "lockstep/v2/snapshot-aes/s2") }, env));
  });

  test("a slot's bulk key: box is the given v1 key, the AES key is another derivation of the slot's master", async () => {
    const master = new Uint8Array(32).fill(5);
    const enc = new Uint8Array(32).fill(6);
    const slot = await slotBulkKey(master, "slot-a", enc);
    expect(slot.box).toBe(enc);
    expect(slot.aes.extractable).toBe(false);
    const env = await sealBulk(slot, text);
    expect(await openBulk(await slotBulkKey(master, "slot-a", enc), env)).toEqual(text);
    await decryptionFails(openBulk(await slotBulkKey(master, "slot-b", enc), env));
    await decryptionFails(openBulk(await bulkKeyOf(enc, enc), env));
    expect(await openBulk(slot, seal(enc, text))).toEqual(text);
  });
});
