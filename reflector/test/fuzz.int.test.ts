/**
 * Frame fuzzing against a live reflector: joined clients send randomly damaged frames of every
 * client type (chunks included). Whatever arrives, the reflector must close only the offending
 * socket with a documented code (or leave it open), never crash or disturb another session.
 * Replay a failure with LOCKSTEP_TEST_SEED=<the seed the run printed>.
 */
import { CloseCode, MessageType, encodeClientMessage, type ClientMessage } from "@lockstep/protocol";
import { testRng, type Rng } from "@lockstep/test-support";
import { Harness, bytes, randomId } from "./helpers";

const h = new Harness();
afterEach(() => h.teardown());

const token = bytes(32, 3);
const samples: ClientMessage[] = [
  { type: MessageType.Send, payload: bytes(40) },
  { type: MessageType.Ping, id: 7 },
  { type: MessageType.SnapshotVote, seq: 3, hash: bytes(32) },
  { type: MessageType.SnapshotUpload, seq: 3, hash: bytes(32), snapshot: bytes(100) },
  { type: MessageType.SnapshotChunk, seq: 3, hash: bytes(32), total: 300, offset: 0, data: bytes(100) },
  { type: MessageType.PersistUpload, slot: "slotA", token, seq: 2, hash: bytes(32), size: 10, blob: bytes(60) },
  { type: MessageType.PersistChunk, slot: "slotA", token, seq: 2, hash: bytes(32), size: 10, total: 120, offset: 0, data: bytes(60) },
  { type: MessageType.PersistLoad, slot: "slotA", token, requestSeq: 1 },
  { type: MessageType.Leave },
];
const frames = samples.map((m) => encodeClientMessage(m));

/** A random damage of a valid frame: flipped bits, cut or grown, a byte set to an edge value. */
function mutate(rng: Rng, frame: Uint8Array): Uint8Array {
  const out = Array.from(frame);
  const n = 1 + rng.int(3);
  for (let k = 0; k < n; k++) {
    const i = rng.int(Math.max(1, out.length));
    switch (rng.int(5)) {
      case 0:
        out[i] = (out[i] ?? 0) ^ (1 << rng.int(8));
        break;
      case 1:
        out.length = Math.max(0, i);
        break;
      case 2:
        out.splice(i, 0, ...rng.bytes(1 + rng.int(8)));
        break;
      case 3:
        out[i] = rng.pick([0x00, 0x7f, 0x80, 0xff, 0x09, 0x0a]);
        break;
      default:
        // keep the type byte valid more often than chance would
        if (out.length > 1) out[1] = rng.pick([0x02, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a]);
    }
  }
  return Uint8Array.from(out);
}

const DOCUMENTED = new Set<number>([1000, 1002, 1006, 1009, ...Object.values(CloseCode)]);

test("damaged frames of every type close only their sender, with a documented code", async () => {
  const rng = testRng("reflector frame fuzz");
  await h.start({ limits: { maxMessagesPerSecond: 1e6, messageBurst: 1e6 } });
  // A bystander session that must keep working throughout.
  const bystander = await h.connect();
  await bystander.join();
  let sent = 0;
  const codes = new Map<number, number>();
  for (let round = 0; round < 40; round++) {
    const client = await h.connect();
    await client.join({ sessionId: randomId() });
    for (let i = 0; i < 25 && !client.isClosed; i++) {
      client.sendRaw(mutate(rng, rng.pick(frames)));
      sent++;
    }
    // Whatever it did, the socket is either still open and answering, or closed with a known code.
    if (!client.isClosed) client.send({ type: MessageType.Ping, id: 99 });
    const outcome = await Promise.race([client.closed, client.nextOf(MessageType.Pong, (p) => p.id === 99).then(() => undefined)]);
    if (outcome !== undefined) {
      expect(DOCUMENTED.has(outcome.code)).toBe(true);
      codes.set(outcome.code, (codes.get(outcome.code) ?? 0) + 1);
    }
    await client.close();
    bystander.send({ type: MessageType.Send, payload: Uint8Array.of(round) });
    await bystander.nextOf(MessageType.Relay, (r) => r.payload[0] === round);
  }
  expect(sent).toBeGreaterThan(500);
  expect(bystander.isClosed).toBe(false);
  expect(codes.size).toBeGreaterThan(0);
}, 60_000);
