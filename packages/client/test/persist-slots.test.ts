/** What a join restores (`Persister.startingPoint`) and the session slot's name (`sessionSlotOf`). */
import { testRng } from "@lockstep/test-support";
import { JoinError } from "../src/errors";
import { seal, sealBulk } from "../src/session/crypto";
import { Persister, sessionSlotOf } from "../src/session/persist-uploads";
import { PERSISTENT_ID, contextOf, keys, keysOtherPassword, keysOtherSession, setup, usePersistHarness, utf8 } from "./persist-harness";

usePersistHarness();

/** What `promise` rejected with (it must reject). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (error: unknown) => error,
  );
}

describe("startingPoint", () => {
  test("opens the data a session starts from, a version-2 envelope or a version-1 one (stored by an earlier release); none is undefined", async () => {
    const s = await setup();
    const data = { notes: ["restored", "ünïcödé"] };
    const json = utf8.encode(JSON.stringify(data));
    expect(await s.persister.startingPoint(new Uint8Array(0))).toBeUndefined();
    expect(await s.persister.startingPoint(await sealBulk(await s.persister.bulkKey(), json))).toEqual(data);
    expect(await s.persister.startingPoint(seal(s.persister.keysOf(s.slot).enc, json))).toEqual(data);
  });

  test("a corrupt blob is a JoinError naming the persistentId, and says nothing was overwritten", async () => {
    const s = await setup();
    const rng = testRng("persist-uploads.test corrupt blob");
    const json = utf8.encode(JSON.stringify({ notes: ["x"] }));
    const otherPersister = new Persister({ ...contextOf(s), persistMaster: keysOtherPassword.persistMaster });
    await otherPersister.prepare();
    const otherSlot = sessionSlotOf(keysOtherPassword.persistMaster);
    const blobs: Uint8Array[] = [rng.bytes(1 + rng.int(200))];
    for (const good of [await sealBulk(await s.persister.bulkKey(), json), seal(s.persister.keysOf(s.slot).enc, json)]) {
      const flipped = good.slice();
      const at = rng.range(1, flipped.length);
      flipped[at] = flipped[at]! ^ (1 + rng.int(255));
      blobs.push(flipped, good.subarray(0, good.length - 1));
    }
    blobs.push(seal(otherPersister.keysOf(otherSlot).enc, utf8.encode("{}")), await sealBulk(await otherPersister.bulkKey(), utf8.encode("{}")));
    for (const blob of blobs) {
      const thrown = await rejection(s.persister.startingPoint(blob));
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
    const key = await s.persister.bulkKey();
    await expect(s.persister.startingPoint(await sealBulk(key, new Uint8Array([0xff, 0xfe, 0x00])))).rejects.toThrow(JoinError);
    await expect(s.persister.startingPoint(await sealBulk(key, new Uint8Array([0xff, 0xfe, 0x00])))).rejects.toThrow(/is not UTF-8 text\. Nothing was overwritten/);
    await expect(s.persister.startingPoint(await sealBulk(key, utf8.encode("{not json")))).rejects.toThrow(JoinError);
    await expect(s.persister.startingPoint(seal(key.box, utf8.encode("{not json")))).rejects.toThrow(
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
