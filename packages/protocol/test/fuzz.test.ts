/**
 * Mutation fuzzing: randomly damaged frames must either decode or throw a ProtocolError, never any
 * other error and never hang. What does decode must survive a re-encode unchanged.
 * Replay a failure with LOCKSTEP_TEST_SEED=<the seed the run printed>.
 */
import {
  PROTOCOL_VERSION,
  ProtocolError,
  decodeClientMessage,
  decodeEntries,
  decodeServerMessage,
  encodeClientMessage,
  encodeEntries,
  encodeServerMessage,
  type ClientMessage,
  type ServerMessage,
  type StreamEntry,
} from "../src/index";
import { testRng, toHex, type Rng } from "@lockstep/test-support";
import { sampleClientMessages, sampleEntryLists, sampleServerMessages } from "./helpers";

const ITERATIONS = 4000;

const specialBytes = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x41, 0x42, 0x48, 0xc3, 0xed, 0xf0];

function mutateOnce(rng: Rng, frame: Uint8Array, donors: readonly Uint8Array[]): Uint8Array {
  const out = Array.from(frame);
  const at = (): number => rng.int(out.length + 1);
  switch (rng.int(7)) {
    case 0: {
      // flip one to four bits
      if (out.length === 0) break;
      for (let n = 1 + rng.int(4); n > 0; n--) {
        const i = rng.int(out.length);
        out[i] = out[i]! ^ (1 << rng.int(8));
      }
      break;
    }
    case 1: {
      // overwrite a byte with a value that tends to matter (varint edges, type codes, UTF-8 leads)
      if (out.length === 0) break;
      out[rng.int(out.length)] = specialBytes[rng.int(specialBytes.length)]!;
      break;
    }
    case 2:
      out.length = rng.int(out.length + 1);
      break;
    case 3:
      out.splice(at(), 0, ...rng.bytes(1 + rng.int(8)));
      break;
    case 4: {
      const start = rng.int(out.length + 1);
      out.splice(start, 1 + rng.int(8));
      break;
    }
    case 5: {
      const start = rng.int(out.length + 1);
      out.splice(at(), 0, ...out.slice(start, start + 1 + rng.int(16)));
      break;
    }
    default: {
      // graft a piece of another valid frame
      const donor = donors[rng.int(donors.length)]!;
      const start = rng.int(donor.length);
      out.splice(at(), rng.int(4), ...donor.subarray(start, start + 1 + rng.int(12)));
      break;
    }
  }
  return Uint8Array.from(out);
}

function mutate(rng: Rng, frame: Uint8Array, donors: readonly Uint8Array[]): Uint8Array {
  let out = frame;
  for (let n = 1 + rng.int(3); n > 0; n--) out = mutateOnce(rng, out, donors);
  return out;
}

/** Decodes `frame`; returns the message, or `undefined` if it threw a ProtocolError; rethrows anything else. */
function tryDecode<T>(decode: (frame: Uint8Array) => T, frame: Uint8Array): T | undefined {
  try {
    return decode(frame);
  } catch (error) {
    if (error instanceof ProtocolError) return undefined;
    throw new Error(`decoding ${toHex(frame)} threw a non-ProtocolError: ${String(error)}`, { cause: error });
  }
}

function fuzz<T>(
  rng: Rng,
  frames: readonly Uint8Array[],
  decode: (frame: Uint8Array) => T,
  encode: (msg: T) => Uint8Array,
): { decoded: number; rejected: number } {
  let decoded = 0;
  let rejected = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const frame = mutate(rng, frames[rng.int(frames.length)]!, frames);
    const msg = tryDecode(decode, frame);
    if (msg === undefined) {
      rejected++;
      continue;
    }
    decoded++;
    // Whatever decodes is a well-formed message: encoding it again must give an equal message.
    expect(decode(encode(msg))).toEqual(msg);
  }
  return { decoded, rejected };
}

const clientFrames = sampleClientMessages.map((m) => encodeClientMessage(m));
const serverFrames = sampleServerMessages.map((m) => encodeServerMessage(m));

test("mutated client frames decode or throw ProtocolError", () => {
  const rng = testRng("protocol fuzz client frames");
  const { decoded, rejected } = fuzz<ClientMessage>(rng, clientFrames, (f) => decodeClientMessage(f), encodeClientMessage);
  expect(decoded + rejected).toBe(ITERATIONS);
  expect(rejected).toBeGreaterThan(0);
  expect(decoded).toBeGreaterThan(0);
});

test("mutated server frames decode or throw ProtocolError", () => {
  const rng = testRng("protocol fuzz server frames");
  const { decoded, rejected } = fuzz<ServerMessage>(rng, serverFrames, (f) => decodeServerMessage(f), encodeServerMessage);
  expect(decoded + rejected).toBe(ITERATIONS);
  expect(rejected).toBeGreaterThan(0);
  expect(decoded).toBeGreaterThan(0);
});

test("mutated entry lists (a stored message log) decode or throw ProtocolError", () => {
  const rng = testRng("protocol fuzz entry lists");
  const lists = sampleEntryLists.map((entries) => encodeEntries(entries));
  const { decoded, rejected } = fuzz<StreamEntry[]>(rng, lists, decodeEntries, encodeEntries);
  expect(decoded + rejected).toBe(ITERATIONS);
  expect(rejected).toBeGreaterThan(0);
  expect(decoded).toBeGreaterThan(0);
});

test("frames fed to the wrong decoder, and random noise, throw only ProtocolError", () => {
  const rng = testRng("protocol fuzz noise");
  for (const frame of serverFrames) tryDecode((f) => decodeClientMessage(f), frame);
  for (const frame of clientFrames) tryDecode((f) => decodeServerMessage(f), frame);
  for (let i = 0; i < ITERATIONS; i++) {
    const noise = rng.bytes(rng.int(40));
    // Half the time give the noise a valid header so decoding gets past it.
    if (noise.length >= 2 && rng.bool()) noise[0] = PROTOCOL_VERSION;
    tryDecode((f) => decodeClientMessage(f), noise);
    tryDecode((f) => decodeServerMessage(f), noise);
    tryDecode(decodeEntries, noise);
  }
  // A whole frame is not an entry list (its version byte reads as a count), but must still fail cleanly.
  for (const frame of [...serverFrames, ...clientFrames]) tryDecode(decodeEntries, frame);
});
