/** A client's persistence uploads (session/persist-uploads.ts, `Persister`): which client uploads, how the encrypted data travels, acknowledgements, retries and flush. */
import { DEFAULT_LIMITS, MessageType, PersistOutcome, type PersistAckMessage } from "@lockstep/protocol";
import { sameBytes, testRng } from "@lockstep/test-support";
import { FLUSH_TIMEOUT_MS, sessionSlotOf } from "../src/session/persist-uploads";
import { BULK_ENVELOPE_VERSION, ENVELOPE_VERSION, open, seal, sealBulk } from "../src/session/crypto";
import { DELAY_MS, ME, OTHER, keys, openedText, reassemble, setup, usePersistHarness, utf8 } from "./persist-harness";

usePersistHarness();

describe("who uploads", () => {
  test("the first view uploads what waits for acknowledgement", async () => {
    const s = await setup();
    expect(s.vm.firstView).toBe(ME);
    s.save("hello");
    expect(s.vm.persistence.unacked()).toHaveLength(1);
    expect(s.sent).toHaveLength(0); // nothing goes out until polled
    await s.poll();
    expect(s.chunks()).toHaveLength(1);
    expect(JSON.parse(await openedText(s, s.chunks()))).toEqual({ notes: ["hello"] });
    expect(s.errors).toEqual([]);
    expect(s.vmErrors).toEqual([]);
  });

  test("a view that is not the first uploads nothing, and flushes nothing, until it is first", async () => {
    const s = await setup({ otherFirst: true });
    expect(s.vm.firstView).toBe(OTHER);
    s.save("hello");
    expect(s.vm.persistence.unacked()).toHaveLength(1);
    await s.poll();
    expect(s.sent).toHaveLength(0);
    await expect(s.persister.flush()).resolves.toEqual([]);
    expect(s.sent).toHaveLength(0);
    expect(s.clock.pending).toBe(0);
    s.stream.exit(OTHER);
    expect(s.vm.firstView).toBe(ME);
    await s.poll();
    expect(s.chunks()).toHaveLength(1);
    expect(JSON.parse(await openedText(s, s.chunks()))).toEqual({ notes: ["hello"] });
  });

  test("nothing is uploaded while the session is not live", async () => {
    const s = await setup();
    s.save("hello");
    s.setLive(false);
    await s.poll();
    await expect(s.persister.flush()).resolves.toEqual([]);
    expect(s.sent).toHaveLength(0);
    s.setLive(true);
    await s.poll();
    expect(s.chunks()).toHaveLength(1);
  });
});

describe("what goes out", () => {
  test("a large save travels as PersistChunk frames of at most maxChunkBytes that reassemble to an envelope of the saved JSON", async () => {
    const rng = testRng("persist-uploads.test large save");
    const letters = "abcdefghijklmnopqrstuvwxyz0123456789";
    const big = Array.from(rng.bytes(DEFAULT_LIMITS.maxChunkBytes * 2 + rng.int(100_000)), (b) => letters[b % letters.length]).join("");
    const s = await setup();
    s.save("small");
    s.save(big);
    const [unacked] = s.vm.persistence.unacked();
    expect(unacked).toBeDefined();
    await s.poll();
    const frames = s.chunks();
    expect(s.sent.every((m) => m.type === MessageType.PersistChunk)).toBe(true);
    expect(frames.length).toBe(Math.ceil(frames[0]!.total / DEFAULT_LIMITS.maxChunkBytes));
    expect(frames.length).toBeGreaterThanOrEqual(3);
    const first = frames[0]!;
    expect(first.slot).toBe(s.slot);
    expect(first.slot).toBe(sessionSlotOf(keys.persistMaster));
    expect(first.seq).toBe(unacked!.seq);
    expect(first.size).toBe(utf8.encode(unacked!.json).length);
    expect(sameBytes(first.hash, s.persister.hashOf(s.slot, unacked!.json))).toBe(true);
    expect(sameBytes(first.token, s.persister.keysOf(s.slot).token)).toBe(true);
    const text = await openedText(s, frames);
    expect(text).toBe(unacked!.json);
    expect(JSON.parse(text)).toEqual({ notes: ["small", big] });
    // What it restores from is the same: the starting point of a session joining with it.
    expect(await s.persister.startingPoint(reassemble(frames))).toEqual({ notes: ["small", big] });
  });

  test("the same data is not sent twice while in flight, nor after its acknowledgement", async () => {
    const s = await setup();
    s.save("one");
    await s.poll();
    await s.poll();
    expect(s.chunks()).toHaveLength(1);
    const firstUpload = s.chunks()[0]!;
    s.ack(firstUpload, PersistOutcome.Stored);
    await s.poll();
    await s.poll();
    expect(s.chunks()).toHaveLength(1);
    await s.clock.advance(60_000); // no retry of stored data either
    expect(s.chunks()).toHaveLength(1);
    // New data is new: it goes out once.
    s.save("two");
    await s.poll();
    await s.poll();
    expect(s.chunks()).toHaveLength(2);
    const second = s.chunks()[1]!;
    expect(second.seq).toBeGreaterThan(firstUpload.seq);
    expect(JSON.parse(await openedText(s, [second]))).toEqual({ notes: ["one", "two"] });
    expect(s.errors).toEqual([]);
  });

  test("every outcome but Failed is final; Denied is reported", async () => {
    for (const outcome of [PersistOutcome.Unchanged, PersistOutcome.Superseded, PersistOutcome.Denied]) {
      const s = await setup();
      s.save("x");
      await s.poll();
      s.ack(s.chunks()[0]!, outcome, outcome === PersistOutcome.Denied ? "token mismatch" : "");
      await s.poll();
      await s.clock.advance(10_000);
      await s.poll();
      expect(s.chunks()).toHaveLength(1);
      expect(s.clock.pending).toBe(0);
      if (outcome === PersistOutcome.Denied) {
        expect(s.errors).toHaveLength(1);
        expect(s.errors[0]!.context).toBe("saving persisted data");
        expect((s.errors[0]!.error as Error).message).toBe("token mismatch");
      } else {
        expect(s.errors).toEqual([]);
      }
    }
  });
});

describe("envelopes", () => {
  test("the base slot's data is sealed as a version-2 envelope once its bulk key is derived (a replica booted), asynchronously", async () => {
    const s = await setup();
    s.save("v2");
    s.persister.poll();
    expect(s.chunks()).toHaveLength(0); // being sealed
    await s.persister.sending();
    const envelope = reassemble(s.chunks());
    expect(envelope[0]).toBe(BULK_ENVELOPE_VERSION);
    expect(envelope.length).toBe(s.chunks()[0]!.size + 29);
    expect(() => open(s.persister.keysOf(s.slot).enc, envelope)).toThrow(/unknown envelope version 2/);
    expect(JSON.parse(await openedText(s, s.chunks()))).toEqual({ notes: ["v2"] });
    expect(await s.persister.startingPoint(envelope)).toEqual({ notes: ["v2"] });
  });

  test("before the bulk key is asked for (no replica booted yet) it is a version-1 envelope, sent at once", async () => {
    const s = await setup({ bulk: false });
    s.save("v1");
    s.persister.poll();
    const envelope = reassemble(s.chunks());
    expect(envelope[0]).toBe(ENVELOPE_VERSION);
    expect(envelope.length).toBe(s.chunks()[0]!.size + 41);
    expect(JSON.parse(new TextDecoder().decode(open(s.persister.keysOf(s.slot).enc, envelope)))).toEqual({ notes: ["v1"] });
    expect(await s.persister.startingPoint(envelope)).toEqual({ notes: ["v1"] });
  });

  test("saves being sealed go out in the order they were taken, each as one contiguous upload", async () => {
    const s = await setup();
    const big = "x".repeat(DEFAULT_LIMITS.maxChunkBytes * 2);
    s.save(big);
    s.persister.poll(); // a large seal, still running when the next starts
    s.save("after");
    s.persister.poll();
    await s.persister.sending();
    const seqs = s.chunks().map((c) => c.seq);
    expect(new Set(seqs).size).toBe(2);
    const [first, second] = [...new Set(seqs)];
    expect(first).toBeLessThan(second!);
    expect(seqs).toEqual([...seqs.filter((q) => q === first), ...seqs.filter((q) => q === second)]);
    expect(JSON.parse(await openedText(s, s.chunks().filter((c) => c.seq === second)))).toEqual({ notes: [big, "after"] });
  });

  test("an upload still being sealed when the connection is lost is not sent; the next poll sends it again", async () => {
    const s = await setup();
    s.save("racing");
    s.persister.poll();
    s.persister.connectionLost();
    await s.persister.sending();
    expect(s.chunks()).toHaveLength(0);
    await s.poll();
    expect(s.chunks()).toHaveLength(1);
    expect(JSON.parse(await openedText(s, s.chunks()))).toEqual({ notes: ["racing"] });
  });

  test("openSlotData (keyed slots' data, opened inside model execution) is synchronous and opens version 1 only", async () => {
    const s = await setup();
    const enc = s.persister.keysOf(s.slot).enc;
    expect(s.persister.openSlotData(s.slot, seal(enc, utf8.encode('{"todos":["a"]}')))).toEqual({ todos: ["a"] });
    const v2 = await sealBulk(await s.persister.bulkKey(), utf8.encode("{}"));
    expect(() => s.persister.openSlotData(s.slot, v2)).toThrow(/unknown envelope version 2/);
  });
});

describe("failures", () => {
  test("a Failed acknowledgement is reported and the upload is retried after 2000 ms, not before", async () => {
    const s = await setup();
    s.save("fragile");
    await s.poll();
    expect(s.chunks()).toHaveLength(1);
    s.ack(s.chunks()[0]!, PersistOutcome.Failed, "disk full");
    expect(s.errors).toHaveLength(1);
    expect(s.errors[0]!.context).toBe("saving persisted data");
    expect((s.errors[0]!.error as Error).message).toBe("disk full");
    expect(s.clock.pending).toBe(1);
    // A second failure while the retry waits does not schedule another.
    s.ack(s.chunks()[0]!, PersistOutcome.Failed, "");
    expect((s.errors[1]!.error as Error).message).toBe("the reflector could not store it");
    expect(s.clock.pending).toBe(1);
    await s.clock.advance(1999);
    await s.persister.sending();
    expect(s.chunks()).toHaveLength(1);
    await s.clock.advance(1);
    await s.persister.sending();
    expect(s.chunks()).toHaveLength(2);
    const retry = s.chunks()[1]!;
    expect(retry.seq).toBe(s.chunks()[0]!.seq);
    expect(sameBytes(retry.hash, s.chunks()[0]!.hash)).toBe(true);
    expect(JSON.parse(await openedText(s, [retry]))).toEqual({ notes: ["fragile"] });
    expect(s.clock.pending).toBe(0);
    // Acknowledged this time: nothing more.
    s.ack(retry, PersistOutcome.Stored);
    await s.clock.advance(10_000);
    await s.poll();
    expect(s.chunks()).toHaveLength(2);
  });

  test("dispose() cancels a pending retry", async () => {
    const s = await setup();
    s.save("fragile");
    await s.poll();
    s.ack(s.chunks()[0]!, PersistOutcome.Failed, "disk full");
    expect(s.clock.pending).toBe(1);
    s.persister.dispose();
    expect(s.clock.pending).toBe(0);
    await s.clock.advance(10_000);
    expect(s.chunks()).toHaveLength(1);
  });

  test("connectionLost() resolves in-flight waiters with Failed, and the next poll sends again", async () => {
    const s = await setup();
    s.save("in flight");
    let result: PersistAckMessage[] | undefined;
    void s.persister.flush().then((r) => (result = r));
    await s.persister.sending();
    expect(s.chunks()).toHaveLength(1);
    await s.clock.settle();
    expect(result).toBeUndefined();
    s.persister.connectionLost();
    await s.clock.settle();
    expect(result).toEqual([expect.objectContaining({ type: MessageType.PersistAck, outcome: PersistOutcome.Failed, message: "connection lost" })]);
    expect(s.clock.pending).toBe(0); // the flush's timeout was cleared
    await s.poll();
    expect(s.chunks()).toHaveLength(2);
    expect(JSON.parse(await openedText(s, [s.chunks()[1]!]))).toEqual({ notes: ["in flight"] });
    // In flight again: not a third time.
    await s.poll();
    expect(s.chunks()).toHaveLength(2);
  });

  test("after connectionLost() an acknowledgement that was stored still counts as final", async () => {
    const s = await setup();
    s.save("a");
    await s.poll();
    s.ack(s.chunks()[0]!, PersistOutcome.Stored);
    s.persister.connectionLost();
    await s.poll();
    expect(s.chunks()).toHaveLength(1);
  });
});

describe("flush", () => {
  test("uploads a save still waiting for its delay and resolves with the acknowledgement", async () => {
    const s = await setup();
    s.stream.write("last words"); // asked for, not yet due
    expect(s.vm.persistence.unacked()).toHaveLength(0);
    let result: PersistAckMessage[] | undefined;
    void s.persister.flush().then((r) => (result = r));
    await s.persister.sending();
    expect(s.chunks()).toHaveLength(1);
    const upload = s.chunks()[0]!;
    expect(upload.seq).toBe(s.vm.seq);
    expect(JSON.parse(await openedText(s, [upload]))).toEqual({ notes: ["last words"] });
    await s.clock.advance(1000);
    expect(result).toBeUndefined();
    const answer = s.ack(upload, PersistOutcome.Stored);
    await s.clock.settle();
    expect(result).toEqual([answer]);
    expect(s.clock.pending).toBe(0);
    expect(s.errors).toEqual([]);
    // When the VM takes that save (same seq, same data), it is not uploaded again.
    s.stream.tick(DELAY_MS);
    expect(s.vm.persistence.unacked()).toHaveLength(1);
    await s.poll();
    expect(s.chunks()).toHaveLength(1);
  });

  test("with nothing to upload it resolves [] at once", async () => {
    const s = await setup();
    await expect(s.persister.flush()).resolves.toEqual([]);
    expect(s.sent).toHaveLength(0);
    expect(s.clock.pending).toBe(0);
  });

  test(`without an acknowledgement it resolves [] after FLUSH_TIMEOUT_MS and reports it`, async () => {
    const s = await setup();
    s.save("unheard");
    let result: PersistAckMessage[] | undefined;
    void s.persister.flush().then((r) => (result = r));
    await s.persister.sending();
    expect(s.chunks()).toHaveLength(1);
    await s.clock.advance(FLUSH_TIMEOUT_MS - 1);
    expect(result).toBeUndefined();
    expect(s.errors).toEqual([]);
    await s.clock.advance(1);
    expect(result).toEqual([]);
    expect(s.errors).toHaveLength(1);
    expect(s.errors[0]!.context).toBe("saving persisted data");
    expect((s.errors[0]!.error as Error).message).toMatch(/^no acknowledgement from the reflector within 5000 ms/);
    expect(s.clock.pending).toBe(0);
  });

  test("a shorter timeout can be given", async () => {
    const s = await setup();
    s.save("unheard");
    let result: PersistAckMessage[] | undefined;
    void s.persister.flush(300).then((r) => (result = r));
    await s.clock.advance(299);
    expect(result).toBeUndefined();
    await s.clock.advance(1);
    expect(result).toEqual([]);
    expect((s.errors[0]!.error as Error).message).toMatch(/within 300 ms/);
  });
});
