/**
 * Unit tests of a client's persistence uploads (session/persist-uploads.ts, `Persister`): which
 * client uploads, how the encrypted data travels, acknowledgements, retries, flush and the
 * starting point a join restores. No reflector: the uplink is a fake that decodes what it is
 * given; the VM is real (a root model calling persistSession), with the Persister as its
 * persistence host; time is a ManualClock.
 */
import {
  DEFAULT_LIMITS,
  MessageType,
  PersistOutcome,
  decodeClientMessage,
  type ClientMessage,
  type PersistAckMessage,
  type PersistChunkMessage,
  type PersistOutcomeValue,
  type StreamEntry,
} from "@lockstep/protocol";
import { ManualClock, sameBytes, testRng } from "@lockstep/test-support";
import { JoinError } from "../src/errors";
import { Model } from "../src/kernel/model";
import { registry } from "../src/kernel/registry";
import { VirtualMachine, type ViewEvent } from "../src/kernel/vm";
import { deriveSessionKeys, open, seal, type SessionKeys } from "../src/session/crypto";
import { openPayload } from "../src/session/payload";
import { FLUSH_TIMEOUT_MS, Persister, sessionSlotOf, type Uplink } from "../src/session/persist-uploads";
import { testPayload } from "./vm-helpers";

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

const PASSWORD = "correct horse battery staple";
const PERSISTENT_ID = "persist-uploads-test";
const SESSION_ID = "session-A";
const ME = "view-me";
const OTHER = "view-other";
/** The root's static persistDelay: a save is taken this long after it was asked for. */
const DELAY_MS = 100;

class Notebook extends Model {
  static persistDelay = DELAY_MS;
  notes: string[] = [];
  override init(): void {
    this.subscribe("notes", "write", this.write);
  }
  write(text: string): void {
    this.notes.push(text);
    this.persistSession(() => ({ notes: this.notes }));
  }
}
Notebook.register("PersistUploadsTest.Notebook");

/** Session keys of this file (PBKDF2 is slow: derived once). */
let keys: SessionKeys;
/** The same password and persistentId in another session (another code version). */
let keysOtherSession: SessionKeys;
/** Another password, same persistentId and session. */
let keysOtherPassword: SessionKeys;

beforeAll(async () => {
  [keys, keysOtherSession, keysOtherPassword] = await Promise.all([
    deriveSessionKeys(PASSWORD, PERSISTENT_ID, SESSION_ID),
    deriveSessionKeys(PASSWORD, PERSISTENT_ID, "session-B"),
    deriveSessionKeys("another password", PERSISTENT_ID, SESSION_ID),
  ]);
});

/**
 * A Persister on a fake uplink, the VM it uploads from (root Notebook), and the stream that VM is
 * fed, with the view `me` joined (first, unless `otherFirst`).
 */
async function setup(options: { otherFirst?: boolean } = {}) {
  const clock = new ManualClock();
  const sent: ClientMessage[] = [];
  const errors: Array<{ context: string; error: unknown }> = [];
  const vmErrors: Array<{ context: string; error: unknown }> = [];
  let live = true;
  let vm: VirtualMachine | undefined;
  const uplink: Uplink = {
    send: (frame) => void sent.push(decodeClientMessage(frame)),
    liveVM: () => (live ? vm : undefined),
  };
  const persister = new Persister({
    appId: "persist-uploads-app",
    password: PASSWORD,
    persistentId: PERSISTENT_ID,
    viewId: ME,
    debug: false,
    model: Notebook,
    registry,
    persistMaster: keys.persistMaster,
    timers: clock,
    uplink,
    reportError: (context, error) => void errors.push({ context, error }),
  });
  await persister.prepare();
  const machine = new VirtualMachine({
    sessionId: SESSION_ID,
    registry,
    openPayload: (payload) => openPayload(payload),
    decodeEvent: (event) => JSON.parse(utf8Decoder.decode(event)) as ViewEvent,
    decodeViewData: () => undefined,
    modelEvent: () => undefined,
    reportError: (context, error) => void vmErrors.push({ context, error }),
    persistence: persister,
  });
  vm = machine;
  machine.createRoot(Notebook, {}, undefined);

  let seq = 0;
  let time = 0;
  const joins = new Map<string, { joinSeq: number; counter: number }>();
  const process = (e: StreamEntry): void => machine.processEntry(e);
  const stream = {
    join(viewId: string): void {
      joins.set(viewId, { joinSeq: seq + 1, counter: 0 });
      process({ type: MessageType.ViewJoin, seq: ++seq, time, viewId, viewData: new Uint8Array(0) });
    },
    exit(viewId: string): void {
      joins.delete(viewId);
      process({ type: MessageType.ViewExit, seq: ++seq, time, viewId });
    },
    /** A relayed "notes:write" from `me`, `dt` ms after the last entry. */
    write(text: string, dt = 10): void {
      time += dt;
      const s = joins.get(ME)!;
      process({ type: MessageType.Relay, seq: ++seq, time, payload: testPayload({ viewId: ME, joinSeq: s.joinSeq, counter: ++s.counter }, "notes", "write", text) });
    },
    /** A tick `dt` ms later (takes the saves due by then). */
    tick(dt: number): void {
      time += dt;
      machine.advanceTo(time);
    },
  };
  if (options.otherFirst) stream.join(OTHER);
  stream.join(ME);

  const slot = persister.joinSlot().slot;
  const chunks = (): PersistChunkMessage[] => sent.filter((m): m is PersistChunkMessage => m.type === MessageType.PersistChunk);
  const ack = (c: Pick<PersistChunkMessage, "slot" | "seq">, outcome: PersistOutcomeValue, message = ""): PersistAckMessage => {
    const a: PersistAckMessage = { type: MessageType.PersistAck, slot: c.slot, seq: c.seq, outcome, version: outcome <= PersistOutcome.Unchanged ? 1 : 0, message };
    persister.acknowledged(a);
    return a;
  };
  /** Saves `text` (a write, then a tick past the delay): it waits for upload. */
  const save = (text: string): void => {
    stream.write(text);
    stream.tick(DELAY_MS);
  };
  return {
    clock,
    persister,
    vm: machine,
    stream,
    slot,
    sent,
    chunks,
    ack,
    save,
    errors,
    vmErrors,
    setLive: (v: boolean) => void (live = v),
  };
}

/** The envelope a sequence of chunk frames carries (checking they form one upload, in order). */
function reassemble(frames: readonly PersistChunkMessage[]): Uint8Array {
  expect(frames.length).toBeGreaterThan(0);
  const first = frames[0]!;
  const out = new Uint8Array(first.total);
  let offset = 0;
  for (const f of frames) {
    expect(f.offset).toBe(offset);
    expect(f.data.length).toBeGreaterThan(0);
    expect(f.data.length).toBeLessThanOrEqual(DEFAULT_LIMITS.maxChunkBytes);
    for (const field of ["slot", "seq", "size", "total"] as const) expect(f[field]).toBe(first[field]);
    expect(sameBytes(f.hash, first.hash)).toBe(true);
    expect(sameBytes(f.token, first.token)).toBe(true);
    out.set(f.data, offset);
    offset += f.data.length;
  }
  expect(offset).toBe(first.total);
  return out;
}

function openedText(setupResult: Awaited<ReturnType<typeof setup>>, frames: readonly PersistChunkMessage[]): string {
  return utf8Decoder.decode(open(setupResult.persister.keysOf(frames[0]!.slot).enc, reassemble(frames)));
}

describe("who uploads", () => {
  test("the first view uploads what waits for acknowledgement", async () => {
    const s = await setup();
    expect(s.vm.firstView).toBe(ME);
    s.save("hello");
    expect(s.vm.persistence.unacked()).toHaveLength(1);
    expect(s.sent).toHaveLength(0); // nothing goes out until polled
    s.persister.poll();
    expect(s.chunks()).toHaveLength(1);
    expect(JSON.parse(openedText(s, s.chunks()))).toEqual({ notes: ["hello"] });
    expect(s.errors).toEqual([]);
    expect(s.vmErrors).toEqual([]);
  });

  test("a view that is not the first uploads nothing, and flushes nothing, until it is first", async () => {
    const s = await setup({ otherFirst: true });
    expect(s.vm.firstView).toBe(OTHER);
    s.save("hello");
    expect(s.vm.persistence.unacked()).toHaveLength(1);
    s.persister.poll();
    expect(s.sent).toHaveLength(0);
    await expect(s.persister.flush()).resolves.toEqual([]);
    expect(s.sent).toHaveLength(0);
    expect(s.clock.pending).toBe(0);
    s.stream.exit(OTHER);
    expect(s.vm.firstView).toBe(ME);
    s.persister.poll();
    expect(s.chunks()).toHaveLength(1);
    expect(JSON.parse(openedText(s, s.chunks()))).toEqual({ notes: ["hello"] });
  });

  test("nothing is uploaded while the session is not live", async () => {
    const s = await setup();
    s.save("hello");
    s.setLive(false);
    s.persister.poll();
    await expect(s.persister.flush()).resolves.toEqual([]);
    expect(s.sent).toHaveLength(0);
    s.setLive(true);
    s.persister.poll();
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
    s.persister.poll();
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
    const text = openedText(s, frames);
    expect(text).toBe(unacked!.json);
    expect(JSON.parse(text)).toEqual({ notes: ["small", big] });
    // What it restores from is the same: the starting point of a session joining with it.
    expect(s.persister.startingPoint(reassemble(frames))).toEqual({ notes: ["small", big] });
  });

  test("the same data is not sent twice while in flight, nor after its acknowledgement", async () => {
    const s = await setup();
    s.save("one");
    s.persister.poll();
    s.persister.poll();
    expect(s.chunks()).toHaveLength(1);
    const firstUpload = s.chunks()[0]!;
    s.ack(firstUpload, PersistOutcome.Stored);
    s.persister.poll();
    s.persister.poll();
    expect(s.chunks()).toHaveLength(1);
    await s.clock.advance(60_000); // no retry of stored data either
    expect(s.chunks()).toHaveLength(1);
    // New data is new: it goes out once.
    s.save("two");
    s.persister.poll();
    s.persister.poll();
    expect(s.chunks()).toHaveLength(2);
    const second = s.chunks()[1]!;
    expect(second.seq).toBeGreaterThan(firstUpload.seq);
    expect(JSON.parse(openedText(s, [second]))).toEqual({ notes: ["one", "two"] });
    expect(s.errors).toEqual([]);
  });

  test("every outcome but Failed is final; Denied is reported", async () => {
    for (const outcome of [PersistOutcome.Unchanged, PersistOutcome.Superseded, PersistOutcome.Denied]) {
      const s = await setup();
      s.save("x");
      s.persister.poll();
      s.ack(s.chunks()[0]!, outcome, outcome === PersistOutcome.Denied ? "token mismatch" : "");
      s.persister.poll();
      await s.clock.advance(10_000);
      s.persister.poll();
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

describe("failures", () => {
  test("a Failed acknowledgement is reported and the upload is retried after 2000 ms, not before", async () => {
    const s = await setup();
    s.save("fragile");
    s.persister.poll();
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
    expect(s.chunks()).toHaveLength(1);
    await s.clock.advance(1);
    expect(s.chunks()).toHaveLength(2);
    const retry = s.chunks()[1]!;
    expect(retry.seq).toBe(s.chunks()[0]!.seq);
    expect(sameBytes(retry.hash, s.chunks()[0]!.hash)).toBe(true);
    expect(JSON.parse(openedText(s, [retry]))).toEqual({ notes: ["fragile"] });
    expect(s.clock.pending).toBe(0);
    // Acknowledged this time: nothing more.
    s.ack(retry, PersistOutcome.Stored);
    await s.clock.advance(10_000);
    s.persister.poll();
    expect(s.chunks()).toHaveLength(2);
  });

  test("dispose() cancels a pending retry", async () => {
    const s = await setup();
    s.save("fragile");
    s.persister.poll();
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
    expect(s.chunks()).toHaveLength(1);
    await s.clock.settle();
    expect(result).toBeUndefined();
    s.persister.connectionLost();
    await s.clock.settle();
    expect(result).toEqual([expect.objectContaining({ type: MessageType.PersistAck, outcome: PersistOutcome.Failed, message: "connection lost" })]);
    expect(s.clock.pending).toBe(0); // the flush's timeout was cleared
    s.persister.poll();
    expect(s.chunks()).toHaveLength(2);
    expect(JSON.parse(openedText(s, [s.chunks()[1]!]))).toEqual({ notes: ["in flight"] });
    // In flight again: not a third time.
    s.persister.poll();
    expect(s.chunks()).toHaveLength(2);
  });

  test("after connectionLost() an acknowledgement that was stored still counts as final", async () => {
    const s = await setup();
    s.save("a");
    s.persister.poll();
    s.ack(s.chunks()[0]!, PersistOutcome.Stored);
    s.persister.connectionLost();
    s.persister.poll();
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
    expect(s.chunks()).toHaveLength(1);
    const upload = s.chunks()[0]!;
    expect(upload.seq).toBe(s.vm.seq);
    expect(JSON.parse(openedText(s, [upload]))).toEqual({ notes: ["last words"] });
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
    s.persister.poll();
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

/** The context a setup's Persister was made with, for another Persister (only keysOf is used). */
function contextOf(s: Awaited<ReturnType<typeof setup>>) {
  return {
    appId: "persist-uploads-app",
    password: PASSWORD,
    persistentId: PERSISTENT_ID,
    viewId: ME,
    debug: false,
    model: Notebook,
    registry,
    persistMaster: keys.persistMaster,
    timers: s.clock,
    uplink: { send: () => undefined, liveVM: () => undefined },
    reportError: () => undefined,
  };
}

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
