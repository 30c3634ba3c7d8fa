/**
 * The harness of the `Persister` unit tests (persist-uploads.test.ts, persist-slots.test.ts). No
 * reflector: the uplink is a fake that decodes what it is given; the VM is real (a root model
 * calling persistSession), with the Persister as its persistence host; time is a ManualClock.
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
import { deriveSessionKeys, openBulk, slotBulkKey, type SessionKeys } from "../src/session/crypto";
import { openPayload } from "../src/session/payload";
import { FLUSH_TIMEOUT_MS, Persister, sessionSlotOf, type PersisterContext, type Uplink } from "../src/session/persist-uploads";
import { testPayload } from "./vm-helpers";

export const utf8 = new TextEncoder();
export const utf8Decoder = new TextDecoder();

export const PASSWORD = "correct horse battery staple";
export const PERSISTENT_ID = "persist-uploads-test";
export const SESSION_ID = "session-A";
export const ME = "view-me";
export const OTHER = "view-other";
/** The root's static persistDelay: a save is taken this long after it was asked for. */
export const DELAY_MS = 100;

export class Notebook extends Model {
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
export let keys: SessionKeys;
/** The same password and persistentId in another session (another code version). */
export let keysOtherSession: SessionKeys;
/** Another password, same persistentId and session. */
export let keysOtherPassword: SessionKeys;

/** Derives this file's keys once per test file (PBKDF2 is slow). */
export function usePersistHarness(): void {
  beforeAll(async () => {
    [keys, keysOtherSession, keysOtherPassword] = await Promise.all([
      deriveSessionKeys(PASSWORD, PERSISTENT_ID, SESSION_ID),
      deriveSessionKeys(PASSWORD, PERSISTENT_ID, "session-B"),
      deriveSessionKeys("another password", PERSISTENT_ID, SESSION_ID),
    ]);
  });
}


/** What this file's Persisters are made with: `me` in the test session, under this file's keys. */
export function persisterContext(timers: ManualClock, uplink: Uplink, reportError: (context: string, error: unknown) => void): PersisterContext {
  return {
    appId: "persist-uploads-app",
    password: PASSWORD,
    persistentId: PERSISTENT_ID,
    viewId: ME,
    debug: false,
    model: Notebook,
    registry,
    persistMaster: keys.persistMaster,
    timers,
    uplink,
    reportError,
  };
}

/** The context a setup's Persister was made with, for another Persister (only keysOf is used). */
export function contextOf(s: Awaited<ReturnType<typeof setup>>): PersisterContext {
  return persisterContext(s.clock, { send: () => undefined, liveVM: () => undefined }, () => undefined);
}

/**
 * A Persister on a fake uplink, the VM it uploads from (root Notebook), and the stream that VM is
 * fed, with the view `me` joined (first, unless `otherFirst`). Its base slot's bulk key is derived
 * (as a replica's boot does: uploads are version-2 envelopes), unless `bulk` is false (version 1).
 */
export async function setup(options: { otherFirst?: boolean; bulk?: boolean } = {}) {
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
  const persister = new Persister(persisterContext(clock, uplink, (context, error) => void errors.push({ context, error })));
  await persister.prepare();
  if (options.bulk !== false) await persister.bulkKey();
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
  /** Polls, and waits until what the poll started is on the wire. */
  const poll = async (): Promise<void> => {
    persister.poll();
    await persister.sending();
  };
  return {
    clock,
    persister,
    poll,
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
export function reassemble(frames: readonly PersistChunkMessage[]): Uint8Array {
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

/** The text an upload's chunks carry (a session-slot upload, either envelope version), opened as a joining client would. */
export async function openedText(setupResult: Awaited<ReturnType<typeof setup>>, frames: readonly PersistChunkMessage[]): Promise<string> {
  const slot = frames[0]!.slot;
  expect(slot).toBe(sessionSlotOf(keys.persistMaster));
  const key = await slotBulkKey(keys.persistMaster, slot, setupResult.persister.keysOf(slot).enc);
  return utf8Decoder.decode(await openBulk(key, reassemble(frames)));
}
