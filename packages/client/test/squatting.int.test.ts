/**
 * Squatting, on a real reflector: an outsider who knows the appId, the session name and the code
 * (so every public id) but not the password acts first, and honest clients must not notice.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocket } from "ws";
import { MessageType, PersistOutcome, decodeServerMessage, encodeClientMessage, encodeJoinAuth, type ServerMessage } from "@lockstep/protocol";
import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { captureWhen } from "./int-helpers";
import { add, editor, opts, sessionLog, v1Saves, type Doc } from "./persistence-helpers";

let dataDir: string;
let reflector: Reflector | undefined;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "lockstep-squat-"));
});
afterEach(async () => {
  await reflector?.close();
  reflector = undefined;
  rmSync(dataDir, { recursive: true, force: true });
  jest.restoreAllMocks();
});

async function start(): Promise<string> {
  reflector = await startReflector({ port: 0, logger: silentLogger, dataDir });
  return reflector.url;
}

test("an outsider acting first (knowing the appId, the name and the code, not the password) cannot stop honest clients from creating, joining, saving and loading", async () => {
  const url = await start();
  const name = "squatted";
  // What an outsider can compute: the public ids. Learn them from a throwaway client on another reflector.
  const scout = await startReflector({ port: 0, logger: silentLogger });
  const v1 = editor(1);
  const probe = await v1.client.Session.join({ ...opts, password: "anything", name, model: v1.cls as never, view: v1.client.View, reflector: scout.url });
  const publicIds = { sessionId: probe.id, persistentId: probe.persistentId };
  await probe.leave();
  await scout.close();

  // The outsider, first: it creates the public sessionId with its own verifier, and from there
  // registers its own token on every slot it can name from public information.
  const squatter = await rawClient(url);
  const squatToken = createHash("sha256").update("squatter").digest();
  squatter.send(
    encodeClientMessage({
      type: MessageType.Join,
      ...publicIds,
      viewId: "squatter",
      tps: 20,
      auth: encodeJoinAuth({ token: squatToken, verifier: createHash("sha256").update(squatToken).digest(), check: new Uint8Array(48), slot: "", slotToken: new Uint8Array(0) }),
      viewData: new Uint8Array(0),
    }),
  );
  await squatter.next(MessageType.Sync);
  const token = new Uint8Array(32).fill(7);
  for (const slot of [publicIds.persistentId, publicIds.sessionId]) {
    const blob = new Uint8Array(64).fill(1);
    squatter.send(encodeClientMessage({ type: MessageType.PersistChunk, slot, token, seq: 1, hash: new Uint8Array(32), size: 1, total: blob.length, offset: 0, data: blob }));
    const ack = await squatter.next(MessageType.PersistAck);
    expect(ack.type === MessageType.PersistAck && ack.outcome).toBe(PersistOutcome.Stored); // it now "owns" that slot
  }

  // Honest clients: create, join, save, leave; a new code version loads the saved data.
  const log = sessionLog();
  const honest = await v1Saves(url, name, log);
  expect(honest.sessionId).toBe(publicIds.sessionId); // the same public id the outsider squatted…
  const v2 = editor(2);
  const next = await v2.client.Session.join({ ...opts, name, model: v2.cls as never, view: v2.client.View, reflector: url });
  const model = next.model as unknown as { documents: Map<string, Doc>; metadata: Record<string, unknown> };
  expect([...model.documents.keys()].sort()).toEqual(["d1", "d2", "d3"]); // …yet its data loads
  expect(model.metadata).toEqual({ migratedFrom: 1 });
  // A second honest client joins the live session and ends identical.
  const other = await v2.client.Session.join({ ...opts, name, model: v2.cls as never, view: v2.client.View, reflector: url });
  const points = [next, other].map((s) => captureWhen(s, () => (s.model as unknown as { documents: Map<string, Doc> }).documents.has("d5")));
  add(other, "d5", "after the squat");
  const [pn, po] = await Promise.all(points);
  expect(pn!.seq).toBe(po!.seq);
  expect(pn!.hash).toBe(po!.hash);
  // The outsider's session is its own: it saw none of this.
  expect(squatter.seen.filter((f) => f.type === MessageType.Relay)).toHaveLength(0);
  await Promise.all([next.leave(), other.leave()]);
  squatter.close();
});

/** A bare protocol client (an outsider does not use the library): send frames, await decoded ones by type. */
async function rawClient(url: string): Promise<{ send(frame: Uint8Array): void; next(type: number): Promise<ServerMessage>; seen: ServerMessage[]; close(): void }> {
  const ws = new WebSocket(url);
  ws.binaryType = "nodebuffer";
  const seen: ServerMessage[] = [];
  const waiters: Array<{ type: number; resolve: (m: ServerMessage) => void }> = [];
  ws.on("message", (data: Buffer) => {
    const msg = decodeServerMessage(new Uint8Array(data));
    seen.push(msg);
    const i = waiters.findIndex((w) => w.type === msg.type);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(msg);
  });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  return {
    send: (frame) => ws.send(frame),
    next: (type) => new Promise((resolve) => waiters.push({ type, resolve })),
    seen,
    close: () => ws.close(),
  };
}
