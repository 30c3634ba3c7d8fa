import { createHash } from "node:crypto";
import { DEFAULT_LIMITS, MessageType, decodeClientMessage, type ClientMessage, type JoinMessage } from "@lockstep/protocol";
import { defaultSocketFactory, type SocketFactory, type SocketLike } from "../src/session/connection";
import { deriveSessionKeys } from "../src/session/crypto";
import { sessionSlotOf } from "../src/session/persist-uploads";
import type { LockstepSession } from "../src/index";


export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("base64url");
}

/**
 * Resolves with the seq and state hash of the first stream entry after which `reached()` is true:
 * the same point of the stream on every replica, whatever ticks each one saw afterwards.
 */
export function captureWhen(session: LockstepSession, reached: () => boolean): Promise<{ seq: number; hash: string }> {
  return new Promise((resolve) => {
    const stop = session.afterEntry((seq) => {
      if (!reached()) return;
      stop();
      resolve({ seq, hash: sha256(session.stateBytes()) });
    });
  });
}

/** A socket factory for `Session.join({ socket })` that records every frame the client sends, decoded. */
export interface RecordingSockets {
  readonly factory: SocketFactory;
  /** Every frame sent so far, over every socket, in order. */
  readonly sent: ClientMessage[];
  /** Every socket made so far (the last one is the current connection). */
  readonly sockets: SocketLike[];
  /** The Join frames sent so far (one per connection). */
  joins(): JoinMessage[];
}

export function recordingSockets(): RecordingSockets {
  const sent: ClientMessage[] = [];
  const sockets: SocketLike[] = [];
  // Uploads travel in chunks within maxFrameBytes; nothing a client sends should need more.
  const factory: SocketFactory = async (url) => {
    const socket = await defaultSocketFactory(url);
    const send = socket.send.bind(socket);
    socket.send = (data: Uint8Array) => {
      sent.push(decodeClientMessage(data, DEFAULT_LIMITS));
      send(data);
    };
    sockets.push(socket);
    return socket;
  };
  return { factory, sent, sockets, joins: () => sent.filter((m): m is JoinMessage => m.type === MessageType.Join) };
}

/** The persistence slot of a session name's data under `password` (what the reflector stores it under). */
export async function sessionSlot(password: string, persistentId: string): Promise<string> {
  // persistMaster does not depend on the sessionId.
  const keys = await deriveSessionKeys(password, persistentId, "any-session");
  return sessionSlotOf(keys.persistMaster);
}

/** Resolves once `session` is connected again after losing its connection (call it before the loss). */
export function backOnline(session: { readonly status: string; on(event: "status", listener: (status: string) => void): () => void }): Promise<void> {
  return new Promise((resolve) => {
    let lost = session.status !== "connected";
    const stop = session.on("status", (status) => {
      if (status !== "connected") lost = true;
      else if (lost) {
        stop();
        resolve();
      }
    });
  });
}
