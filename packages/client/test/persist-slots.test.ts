/** What a join restores (`Persister.startingPoint`) and the session slot's name (`sessionSlotOf`). */
import { testRng } from "@lockstep/test-support";
import { JoinError } from "../src/errors";
import { seal } from "../src/session/crypto";
import { Persister, sessionSlotOf } from "../src/session/persist-uploads";
import { PERSISTENT_ID, contextOf, keys, keysOtherPassword, keysOtherSession, setup, usePersistHarness, utf8 } from "./persist-harness";

usePersistHarness();

describe("startingPoint", () => {
  test("opens the data a session starts from; none is undefined", async () => {
    const s = await setup();
    const data = { notes: ["restored", "ünïcödé"] };
    expect(s.persister.startingPoint(new Uint8Array(0))).toBeUndefined();
    expect(s.persister.startingPoint(seal(s.persister.keysOf(s.slot).enc, utf8.encode(JSON.stringify(data))))).toEqual(data);
  });

  test("a corrupt blob is a JoinError naming the persistentId, and says nothing was overwritten", async () => {
    const s = await setup();
    const rng = testRng("persist-uploads.test corrupt blob");
    const good = seal(s.persister.keysOf(s.slot).enc, utf8.encode(JSON.stringify({ notes: ["x"] })));
    const flipped = good.slice();
    const at = rng.range(1, flipped.length);
    flipped[at] = flipped[at]! ^ (1 + rng.int(255));
    const otherPassword = seal(new Persister({ ...contextOf(s), persistMaster: keysOtherPassword.persistMaster }).keysOf(sessionSlotOf(keysOtherPassword.persistMaster)).enc, utf8.encode("{}"));
    for (const blob of [flipped, rng.bytes(1 + rng.int(200)), good.subarray(0, good.length - 1), otherPassword]) {
      let thrown: unknown;
      try {
        s.persister.startingPoint(blob);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(JoinError);
      const message = (thrown as JoinError).message;
      expect(message).toContain(`persistentId ${PERSISTENT_ID}`);
      expect(message).toContain("Nothing was overwritten");
      expect(message).toContain("could not be decrypted");
      expect(message).toContain(s.slot);
    }
  });

  test("data that decrypts but is not UTF-8 text or not JSON is a JoinError too", async () => {
    const s = await setup();
    const enc = s.persister.keysOf(s.slot).enc;
    expect(() => s.persister.startingPoint(seal(enc, new Uint8Array([0xff, 0xfe, 0x00])))).toThrow(JoinError);
    expect(() => s.persister.startingPoint(seal(enc, new Uint8Array([0xff, 0xfe, 0x00])))).toThrow(/is not UTF-8 text\. Nothing was overwritten/);
    expect(() => s.persister.startingPoint(seal(enc, utf8.encode("{not json")))).toThrow(JoinError);
    expect(() => s.persister.startingPoint(seal(enc, utf8.encode("{not json")))).toThrow(
      new RegExp(`persistentId ${PERSISTENT_ID} \\(slot ${s.slot}\\) is corrupt \\(not JSON\\)\\. Nothing was overwritten`),
    );
  });
});

test("sessionSlotOf is stable per key, the same in every session of a password and persistentId, and differs per key", () => {
  const slot = sessionSlotOf(keys.persistMaster);
  expect(slot).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(sessionSlotOf(keys.persistMaster)).toBe(slot);
  expect(sessionSlotOf(keys.persistMaster.slice())).toBe(slot);
  expect(sessionSlotOf(keysOtherSession.persistMaster)).toBe(slot);
  expect(sessionSlotOf(keysOtherPassword.persistMaster)).not.toBe(slot);
  const rng = testRng("persist-uploads.test slots");
  const seen = new Set([slot]);
  for (let i = 0; i < 20; i++) {
    const other = sessionSlotOf(rng.bytes(32));
    expect(seen.has(other)).toBe(false);
    seen.add(other);
  }
});
