import { MessageType, decodeServerMessage, encodeClientMessage, type ClientMessage, type ServerMessage } from "@lockstep/protocol";
import type { MemoryLink } from "@lockstep/test-support";
import { randomId, sessionPersistentId, testAuth } from "./helpers";

/** A raw protocol client on a link: decoded frames and how it closed. */
export class RawClient {
  readonly frames: ServerMessage[] = [];
  closed: { code: number; reason: string } | undefined;
  opened = false;
  viewId = "";

  constructor(readonly link: MemoryLink) {
    const ws = link.client;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => (this.opened = true);
    ws.onmessage = (ev) => this.frames.push(decodeServerMessage(new Uint8Array(ev.data as ArrayBuffer)));
    ws.onclose = (ev) => (this.closed = { code: ev.code, reason: ev.reason });
  }

  send(msg: ClientMessage): void {
    this.link.client.send(encodeClientMessage(msg));
  }

  /** Sends a Join as `viewId` (default: a new random one), resuming from `resumeSeq` if given. */
  join(sessionId: string, tps = 20, viewId = randomId(), resumeSeq = 0): void {
    this.viewId = viewId;
    this.send({ type: MessageType.Join, sessionId, persistentId: sessionPersistentId(sessionId), viewId: this.viewId, tps, auth: testAuth(), viewData: new Uint8Array(0), resumeSeq });
  }

  of<T extends ServerMessage["type"]>(type: T): Extract<ServerMessage, { type: T }>[] {
    return this.frames.filter((f) => f.type === type) as Extract<ServerMessage, { type: T }>[];
  }
}

