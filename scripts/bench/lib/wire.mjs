// Raw protocol clients for the benches: WebSockets that speak the Lockstep wire protocol directly
// (Join, Send, the snapshot vote and upload), with no client library, or the broadcast baseline's
// (binary messages to a room). One harness, each server's own protocol.
import { createHash, randomBytes } from "node:crypto";
import { WebSocket } from "ws";
import { MessageType, decodeServerMessage, encodeClientMessage, encodeJoinAuth } from "@lockstep/protocol";

export const randomId = (bytes = 16) => randomBytes(bytes).toString("base64url");
/** The constant state hash every bench client votes: raw clients hold no state, and they agree. */
const VOTE_HASH = createHash("sha256").update("lockstep bench state").digest();

/** Opens a WebSocket to `url` (binary frames as Buffers, no compression); resolves once open. */
export function openSocket(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 << 20, handshakeTimeout: 10_000 });
    ws.binaryType = "nodebuffer";
    ws.once("open", () => {
      ws.off("error", reject);
      ws.on("error", () => undefined);
      resolve(ws);
    });
    ws.once("error", reject);
  });
}

/** Runs `fn` over `items` with at most `limit` calls in flight; resolves with the results in order. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Keys of a new session, as a raw client makes them: any token, verifier = SHA-256(token), random check. */
export function newSessionKeys(sessionId = randomId(), persistentId = randomId()) {
  const token = randomBytes(32);
  const verifier = createHash("sha256").update(token).digest();
  const auth = encodeJoinAuth({ token, verifier, check: randomBytes(48), slot: "", slotToken: new Uint8Array(0) });
  return { sessionId, persistentId, auth };
}

/**
 * Answers the reflector's snapshot rounds the way a library client does (PROTOCOL.md §11), with a
 * fixed state: a SnapshotVote with the bench's constant hash for every SnapshotRequest, and, when
 * elected (UploadRequest), one SnapshotChunk carrying `snapshotBytes` opaque bytes.
 */
export function answerSnapshots(ws, snapshotBytes) {
  const snapshot = randomBytes(snapshotBytes);
  ws.on("message", (data) => {
    const type = data[1];
    if (type === MessageType.SnapshotRequest) {
      const { seq } = decodeServerMessage(data);
      ws.send(encodeClientMessage({ type: MessageType.SnapshotVote, seq, hash: VOTE_HASH }));
    } else if (type === MessageType.UploadRequest) {
      const { seq } = decodeServerMessage(data);
      ws.send(encodeClientMessage({ type: MessageType.SnapshotChunk, seq, hash: VOTE_HASH, total: snapshot.length, offset: 0, data: snapshot }));
    }
  });
}

/**
 * Joins `clients` raw clients to a session (`keys` from {@link newSessionKeys}; the first Join
 * creates it, the others follow together). Resolves with their sockets once every member has seen
 * every member's ViewJoin (in its Sync or live), so nothing of the joins is still in flight.
 * `snapshotBytes` > 0: the clients answer snapshot rounds ({@link answerSnapshots}).
 * Rejects if a socket closes or errs first, or after `timeoutMs`.
 */
export async function joinSession(url, keys, clients, { snapshotBytes = 0, timeoutMs = 20_000 } = {}) {
  let timer;
  let everyoneSeen;
  const members = [];
  const seen = new Promise((resolve, reject) => {
    everyoneSeen = resolve;
    timer = setTimeout(() => reject(new Error(`session ${keys.sessionId}: joins not complete within ${timeoutMs} ms`)), timeoutMs);
    members.fail = reject;
  });
  seen.catch(() => undefined);
  const check = () => {
    if (members.length === clients && members.every((m) => m.synced && m.views >= clients)) everyoneSeen();
  };
  const joinOne = async () => {
    const ws = await openSocket(url);
    const member = { ws, views: 0, synced: false };
    member.onMessage = (data) => {
      const type = data[1];
      if (type === MessageType.ViewJoin) member.views++;
      else if (type === MessageType.Sync) {
        member.synced = true;
        member.views += decodeServerMessage(data).entries.filter((e) => e.type === MessageType.ViewJoin).length;
      } else if (type === MessageType.Error) members.fail(new Error(`refused: ${decodeServerMessage(data).message}`));
      check();
    };
    member.onClose = (code, reason) => members.fail(new Error(`closed ${code} ${String(reason)} while joining`));
    ws.on("message", member.onMessage);
    ws.once("close", member.onClose);
    members.push(member);
    ws.send(encodeClientMessage({ type: MessageType.Join, sessionId: keys.sessionId, persistentId: keys.persistentId, viewId: randomId(12), tps: 20, auth: keys.auth, viewData: new Uint8Array(0) }));
    return member;
  };
  const first = await joinOne();
  // The first Join creates the session; the others join it together once it exists.
  await Promise.race([
    new Promise((resolve) => {
      const wait = () => (first.synced ? resolve() : first.ws.once("message", wait));
      wait();
    }),
    seen,
  ]);
  await Promise.all(Array.from({ length: clients - 1 }, joinOne));
  check();
  try {
    await seen;
  } finally {
    clearTimeout(timer);
    for (const m of members) {
      m.ws.off("message", m.onMessage);
      m.ws.off("close", m.onClose);
    }
  }
  if (snapshotBytes > 0) for (const m of members) answerSnapshots(m.ws, snapshotBytes);
  return members.map((m) => m.ws);
}

/** Opens `clients` sockets to room `room` of the broadcast baseline at `url` (ends with "/"). */
export function joinRoom(url, room, clients) {
  return Promise.all(Array.from({ length: clients }, () => openSocket(`${url}${room}`)));
}

/** Closes every socket at once (no closing handshake: the servers are stopped right after). */
export function dropAll(groups) {
  for (const ws of groups.flat()) ws.terminate();
}
