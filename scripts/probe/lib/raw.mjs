// A raw protocol client: Join and frames built by hand from the protocol package, over `ws`, with
// keys of the attacker's choosing. (The real library is in clients.mjs.)
import { randomBytes } from "node:crypto";
import { WebSocket } from "ws";
import { MessageType, decodeServerMessage, encodeClientMessage, encodeJoinAuth } from "@lockstep/protocol";
import { MiB } from "./format.mjs";
import { randomId, sha256 } from "./ids.mjs";

/** Keys of a session an attacker (or raw client) creates: any token, verifier = SHA-256(token), random check. */
export function newIdentity({ sessionId = randomId(), persistentId = randomId() } = {}) {
  const token = randomBytes(32);
  return { sessionId, persistentId, token, verifier: sha256(token), check: randomBytes(48) };
}

function joinFrame(id, viewId) {
  const auth = encodeJoinAuth({ token: id.token, verifier: id.verifier, check: id.check, slot: "", slotToken: new Uint8Array(0) });
  return encodeClientMessage({
    type: MessageType.Join,
    sessionId: id.sessionId,
    persistentId: id.persistentId,
    viewId,
    tps: 20,
    auth,
    viewData: new Uint8Array(0),
  });
}

/** A Join that was refused: the close code (or HTTP status) and the reflector's message. */
export class Refused extends Error {
  constructor(code, message) {
    super(`refused ${code}${message ? `: ${message}` : ""}`);
    this.code = code;
  }
}

/** Opens a WebSocket; rejects with Refused(`HTTP nnn`) if the upgrade is refused. */
export function openWs(url, { maxPayload = 256 * MiB } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload, perMessageDeflate: false, handshakeTimeout: 10_000 });
    ws.on("error", (error) => reject(error));
    ws.once("unexpected-response", (req, res) => {
      reject(new Refused(`HTTP ${res.statusCode}`));
      res.resume();
      req.destroy();
    });
    ws.once("open", () => resolve(ws));
    ws.once("close", (code) => reject(new Refused(code, "closed before open")));
  });
}

/** One raw protocol connection: counts frames by type, remembers the Error frame and the close. */
export class RawClient {
  constructor(ws) {
    this.ws = ws;
    this.received = new Map();
    this.error = undefined;
    this.onFrame = undefined;
    this.closeCode = undefined;
    this.closed = new Promise((resolve) =>
      ws.once("close", (code, reason) => {
        this.closeCode = code;
        resolve({ code, reason: String(reason) });
      }),
    );
    ws.on("message", (data, isBinary) => {
      if (!isBinary || data.length < 2) return;
      const type = data[1];
      this.received.set(type, (this.received.get(type) ?? 0) + 1);
      if (type === MessageType.Error) this.error = decodeServerMessage(data);
      this.onFrame?.(type, data);
    });
  }
  get open() {
    return this.ws.readyState === WebSocket.OPEN;
  }
  /** How many frames of `type` arrived so far. */
  count(type) {
    return this.received.get(type) ?? 0;
  }
  /** Sends `frame` if the socket is open; returns whether it did. */
  send(frame) {
    if (!this.open) return false;
    this.ws.send(frame);
    return true;
  }
  /** The next frame of `type`, decoded; rejects if the socket closes first or after `timeoutMs`. */
  next(type, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const previous = this.onFrame;
      const timer = setTimeout(() => done(new Error(`no frame 0x${type.toString(16)} within ${timeoutMs} ms`)), timeoutMs);
      const done = (error, msg) => {
        clearTimeout(timer);
        this.onFrame = previous;
        if (error) reject(error);
        else resolve(msg);
      };
      this.onFrame = (t, data) => {
        previous?.(t, data);
        if (t === type) done(undefined, decodeServerMessage(data));
      };
      this.closed.then(({ code }) => done(new Refused(code, this.error?.message)));
    });
  }
  /** A Leave frame, then a normal close. */
  leave() {
    this.send(encodeClientMessage({ type: MessageType.Leave }));
    this.ws.close(1000);
  }
  terminate() {
    this.ws.terminate();
  }
}

/**
 * Joins (or creates) the session `id` with a raw Join and resolves with the client once its Sync
 * arrived (`client.sync`); rejects with Refused(close code) if the reflector refuses it.
 * `onFrame(type, bytes)` sees every frame after the Sync, from the first one on.
 */
export async function rawJoin(url, id, { viewId = randomId(12), onFrame, timeoutMs = 10_000 } = {}) {
  const ws = await openWs(url);
  const client = new RawClient(ws);
  client.sync = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Refused("timeout", `no Sync within ${timeoutMs} ms`));
      ws.terminate();
    }, timeoutMs);
    client.onFrame = (type, data) => {
      if (type !== MessageType.Sync) return;
      clearTimeout(timer);
      client.onFrame = onFrame;
      resolve(decodeServerMessage(data));
    };
    client.closed.then(({ code, reason }) => {
      clearTimeout(timer);
      reject(new Refused(code, client.error?.message ?? reason));
    });
    ws.send(joinFrame(id, viewId));
  });
  client.viewId = viewId;
  return client;
}
