/**
 * Mutation fuzzing: randomly damaged frames must either decode or throw a ProtocolError, never any
 * other error and never hang. What does decode must survive a re-encode unchanged.
 * Replay a failure with PROTOCOL_TEST_SEED=<printed seed>.
 */
import {
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
import { mulberry32, randBytes, randInt, sampleClientMessages, sampleEntryLists, sampleServerMessages, testSeed, toHex } from "./helpers";

const ITERATIONS = 4000;

type Rand = () => number;

const specialBytes = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x41, 0x42, 0x48, 0xc3, 0xed, 0xf0];

function mutateOnce(rand: Rand, frame: Uint8Array, donors: readonly Uint8Array[]): Uint8Array {
  const out = Array.from(frame);
  const at = (): number => randInt(rand, out.length + 1);
  switch (randInt(rand, 7)) {
    case 0: {
      // flip one to four bits
      if (out.length === 0) break;
      for (let n = 1 + randInt(rand, 4); n > 0; n--) {
        const i = randInt(rand, out.length);
        out[i] = out[i]! ^ (1 << randInt(rand, 8));
      }
      break;
    }
    case 1: {
      // overwrite a byte with a value that tends to matter (varint edges, type codes, UTF-8 leads)
      if (out.length === 0) break;
      out[randInt(rand, out.length)] = specialBytes[randInt(rand, specialBytes.length)]!;
      break;
    }
    case 2:
      out.length = randInt(rand, out.length + 1);
      break;
    case 3:
      out.splice(at(), 0, ...randBytes(rand, 1 + randInt(rand, 8)));
      break;
    case 4: {
      const start = randInt(rand, out.length + 1);
      out.splice(start, 1 + randInt(rand, 8));
      break;
    }
    case 5: {
      const start = randInt(rand, out.length + 1);
      out.splice(at(), 0, ...out.slice(start, start + 1 + randInt(rand, 16)));
      break;
    }
    default: {
      // graft a piece of another valid frame
      const donor = donors[randInt(rand, donors.length)]!;
      const start = randInt(rand, donor.length);
      out.splice(at(), randInt(rand, 4), ...donor.subarray(start, start + 1 + randInt(rand, 12)));
      break;
    }
  }
  return Uint8Array.from(out);
}

function mutate(rand: Rand, frame: Uint8Array, donors: readonly Uint8Array[]): Uint8Array {
  let out = frame;
  for (let n = 1 + randInt(rand, 3); n > 0; n--) out = mutateOnce(rand, out, donors);
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
  rand: Rand,
  frames: readonly Uint8Array[],
  decode: (frame: Uint8Array) => T,
  encode: (msg: T) => Uint8Array,
): { decoded: number; rejected: number } {
  let decoded = 0;
  let rejected = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const frame = mutate(rand, frames[randInt(rand, frames.length)]!, frames);
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
  const rand = mulberry32(testSeed());
  const { decoded, rejected } = fuzz<ClientMessage>(rand, clientFrames, (f) => decodeClientMessage(f), encodeClientMessage);
  expect(decoded + rejected).toBe(ITERATIONS);
  expect(rejected).toBeGreaterThan(0);
  expect(decoded).toBeGreaterThan(0);
});

test("mutated server frames decode or throw ProtocolError", () => {
  const rand = mulberry32(testSeed() ^ 0x5eed);
  const { decoded, rejected } = fuzz<ServerMessage>(rand, serverFrames, (f) => decodeServerMessage(f), encodeServerMessage);
  expect(decoded + rejected).toBe(ITERATIONS);
  expect(rejected).toBeGreaterThan(0);
  expect(decoded).toBeGreaterThan(0);
});

test("mutated entry lists (a stored message log) decode or throw ProtocolError", () => {
  const rand = mulberry32(testSeed() ^ 0x1065);
  const lists = sampleEntryLists.map((entries) => encodeEntries(entries));
  const { decoded, rejected } = fuzz<StreamEntry[]>(rand, lists, decodeEntries, encodeEntries);
  expect(decoded + rejected).toBe(ITERATIONS);
  expect(rejected).toBeGreaterThan(0);
  expect(decoded).toBeGreaterThan(0);
});

test("frames fed to the wrong decoder, and random noise, throw only ProtocolError", () => {
  const rand = mulberry32(testSeed() ^ 0xbad);
  for (const frame of serverFrames) tryDecode((f) => decodeClientMessage(f), frame);
  for (const frame of clientFrames) tryDecode((f) => decodeServerMessage(f), frame);
  for (let i = 0; i < ITERATIONS; i++) {
    const noise = randBytes(rand, randInt(rand, 40));
    // Half the time give the noise a valid header so decoding gets past it.
    if (noise.length >= 2 && rand() < 0.5) noise[0] = 1;
    tryDecode((f) => decodeClientMessage(f), noise);
    tryDecode((f) => decodeServerMessage(f), noise);
    tryDecode(decodeEntries, noise);
  }
  // A whole frame is not an entry list (its version byte reads as a count), but must still fail cleanly.
  for (const frame of [...serverFrames, ...clientFrames]) tryDecode(decodeEntries, frame);
});
