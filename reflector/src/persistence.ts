import {
  CloseCode,
  MessageType,
  PersistOutcome,
  ProtocolError,
  encodeServerMessage,
  equalBytes,
  type PersistLoadMessage,
  type PersistUploadMessage,
} from "@lockstep/protocol";
import type { Logger } from "./logger";
import type { Session, SessionMember } from "./session";
import type { PersistStore } from "./storage/index";

const EMPTY: Uint8Array = new Uint8Array(0);
/** PersistLoad requests a session remembers having answered (older ones may be answered twice; clients ignore repeats). */
const ANSWERED_LOADS_KEPT = 256;

/**
 * The reflector's side of persistence across code versions (PROTOCOL.md §13): stores uploads
 * as slot versions and acknowledges them in the stream, answers loads of keyed slots, and gives
 * a new session its starting data. It checks slot tokens but never sees plaintext.
 */
export class PersistService {
  readonly #store: PersistStore;
  readonly #logger: Logger;
  readonly #answered = new WeakMap<Session, Set<string>>();

  constructor(store: PersistStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /**
   * The data a new session of `slot` starts from: the slot's latest version, or empty.
   * @throws {ProtocolError} `AuthFailed` if `token` is not the slot's (another password).
   */
  async startingPoint(sessionId: string, slot: string, token: Uint8Array): Promise<Uint8Array> {
    if (!(await this.#store.authorize(slot, token))) {
      this.#logger.warn("persist.auth.failed", { sessionId, slot });
      throw new ProtocolError(
        `the password does not match the persisted data of ${slot}: join with the password its sessions used`,
        CloseCode.AuthFailed,
      );
    }
    const latest = await this.#store.latest(slot);
    if (latest !== undefined) {
      this.#logger.info("persist.fixed", { sessionId, slot, version: latest.version, bytes: latest.bytesLength });
    }
    return latest?.bytes ?? EMPTY;
  }

  /** Stores an upload (unless denied, superseded or unchanged), acknowledges it in the stream, and answers the uploader. */
  async upload(session: Session, member: SessionMember, msg: PersistUploadMessage): Promise<void> {
    const { slot, seq } = msg;
    const reply = (outcome: number, version = 0, message = ""): void =>
      member.send(encodeServerMessage({ type: MessageType.PersistAck, slot, seq, outcome, version, message }));
    // The frame's buffer is reused once this handler yields; keep copies.
    const token = new Uint8Array(msg.token);
    const hash = new Uint8Array(msg.hash);
    const bytes = new Uint8Array(msg.blob);
    let result: { outcome: number; version: number; message?: string };
    try {
      result = await this.#store.exclusive(slot, async () => {
        if (!(await this.#store.authorize(slot, token, true))) {
          return { outcome: PersistOutcome.Denied, version: 0, message: `slot ${slot} belongs to another password; nothing was stored` };
        }
        const latest = await this.#store.latest(slot);
        if (latest !== undefined && latest.sessionId === session.id && latest.seq > seq) return { outcome: PersistOutcome.Superseded, version: 0 };
        if (latest !== undefined && equalBytes(latest.hash, hash)) return { outcome: PersistOutcome.Unchanged, version: latest.version };
        const version = await this.#store.append(slot, { sessionId: session.id, seq, size: msg.size, hash, bytes });
        return { outcome: PersistOutcome.Stored, version };
      });
    } catch (error) {
      this.#logger.error("persist.store.failed", { sessionId: session.id, slot, seq, error });
      reply(PersistOutcome.Failed, 0, "the reflector could not store the data; it is not durable, retry later");
      return;
    }
    const fields = { sessionId: session.id, viewId: member.viewId, slot, seq, version: result.version, size: msg.size, bytes: bytes.length };
    switch (result.outcome) {
      case PersistOutcome.Stored:
        this.#logger.info("persist.stored", fields);
        break;
      case PersistOutcome.Unchanged:
        this.#logger.info("persist.unchanged", fields);
        break;
      case PersistOutcome.Superseded:
        this.#logger.info("persist.superseded", fields);
        break;
      default:
        this.#logger.warn("persist.denied", fields);
    }
    if (result.outcome === PersistOutcome.Stored || result.outcome === PersistOutcome.Unchanged) session.appendPersisted(slot, seq, msg.size, hash);
    reply(result.outcome, result.version, result.message);
  }

  /** Answers a PersistLoad once per (slot, requestSeq): appends the slot's latest data to the stream. */
  async load(session: Session, msg: PersistLoadMessage): Promise<void> {
    let answered = this.#answered.get(session);
    if (answered === undefined) this.#answered.set(session, (answered = new Set()));
    const key = `${msg.slot}@${msg.requestSeq}`;
    if (answered.has(key) || msg.requestSeq > session.lastSeq) return;
    answered.add(key);
    if (answered.size > ANSWERED_LOADS_KEPT) answered.delete(answered.values().next().value as string);
    const token = new Uint8Array(msg.token);
    let blob: Uint8Array = EMPTY;
    try {
      if (await this.#store.authorize(msg.slot, token)) {
        blob = (await this.#store.latest(msg.slot))?.bytes ?? EMPTY;
      } else {
        // Every member shares the session's password, so this is a slot made under another one.
        this.#logger.warn("persist.load.denied", { sessionId: session.id, slot: msg.slot, requestSeq: msg.requestSeq });
      }
    } catch (error) {
      answered.delete(key); // let a later request retry
      this.#logger.error("persist.load.failed", { sessionId: session.id, slot: msg.slot, requestSeq: msg.requestSeq, error });
      return;
    }
    if (!session.appendPersistData(msg.slot, msg.requestSeq, blob)) {
      // The session's log is full (or it ended): not answered, so a later request may be.
      answered.delete(key);
      this.#logger.warn("persist.load.refused", { sessionId: session.id, slot: msg.slot, requestSeq: msg.requestSeq, reason: "log full" });
      return;
    }
    this.#logger.info("persist.loaded", { sessionId: session.id, slot: msg.slot, requestSeq: msg.requestSeq, bytes: blob.length });
  }
}
