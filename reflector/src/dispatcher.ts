import type { RawData } from "ws";
import {
  CloseCode,
  MessageType,
  ProtocolError,
  closeCodeName,
  decodeClientMessage,
  decodeJoinAuth,
  encodeServerMessage,
  type JoinMessage,
  type Limits,
} from "@lockstep/protocol";
import type { Connection } from "./connection";
import type { Logger } from "./logger";
import type { PersistService } from "./persistence";
import type { Session } from "./session";
import type { SessionRegistry } from "./session-registry";

/** Options of a {@link Dispatcher}. */
export interface DispatcherOptions {
  readonly registry: SessionRegistry;
  readonly limits: Limits;
  readonly logger: Logger;
  /** Tick rate imposed on new sessions, or `undefined` to use the creating Join's `tps`. */
  readonly tps: number | undefined;
  /** Stores and loads persisted data (PROTOCOL.md §13). */
  readonly persist: PersistService;
}

const NORMAL_CLOSURE = 1000;

/**
 * The protocol rules for frames arriving on a socket: decode and validate at the edge, admit joins,
 * relay sends, answer pings, and turn every violation into an Error frame plus close code.
 * Nothing thrown while handling a frame escapes {@link Dispatcher.onFrame}.
 */
export class Dispatcher {
  readonly #registry: SessionRegistry;
  readonly #limits: Limits;
  readonly #logger: Logger;
  readonly #tps: number | undefined;
  readonly #persist: PersistService;
  #relayed = 0;

  constructor(options: DispatcherOptions) {
    this.#registry = options.registry;
    this.#limits = options.limits;
    this.#logger = options.logger;
    this.#tps = options.tps;
    this.#persist = options.persist;
  }

  /** Client messages relayed so far. */
  get relayed(): number {
    return this.#relayed;
  }

  /** Handles one WebSocket message from `conn`. Never throws. */
  onFrame(conn: Connection, data: RawData, isBinary: boolean): void {
    if (conn.state === "closing" || conn.state === "closed") return;
    conn.alive = true;
    try {
      if (!isBinary) throw new ProtocolError("text frames are not part of the Lockstep protocol; send binary frames");
      const msg = decodeClientMessage(toBytes(data), this.#limits);
      switch (msg.type) {
        case MessageType.Join:
          this.#join(conn, msg).catch((error: unknown) => this.#onError(conn, error));
          break;
        case MessageType.Send: {
          const session = joinedSession(conn, "Send");
          if (!conn.takeSendToken()) {
            this.#rateLimited(conn, session);
            return;
          }
          session.relay(msg.payload);
          this.#relayed++;
          break;
        }
        case MessageType.Leave:
          joinedSession(conn, "Leave");
          this.detach(conn, "left");
          conn.close(NORMAL_CLOSURE, "left");
          break;
        case MessageType.SnapshotVote:
          joinedSession(conn, "SnapshotVote").vote(conn, msg.seq, msg.hash);
          break;
        case MessageType.SnapshotUpload:
          joinedSession(conn, "SnapshotUpload").upload(conn, msg.seq, msg.hash, msg.snapshot);
          break;
        case MessageType.PersistUpload: {
          const session = joinedSession(conn, "PersistUpload");
          this.#persist.upload(session, conn, msg).catch((error: unknown) => this.#onError(conn, error));
          break;
        }
        case MessageType.PersistLoad: {
          const session = joinedSession(conn, "PersistLoad");
          this.#persist.load(session, msg).catch((error: unknown) => this.#onError(conn, error));
          break;
        }
        case MessageType.Ping: {
          const session = joinedSession(conn, "Ping");
          conn.send(encodeServerMessage({ type: MessageType.Pong, id: msg.id, time: session.now() }));
          break;
        }
      }
    } catch (error) {
      this.#onError(conn, error);
    }
  }

  /** Takes a joined connection out of its session, stamping and broadcasting its view-exit. Idempotent. */
  detach(conn: Connection, reason: string): void {
    const session = conn.session;
    if (session === undefined) return;
    conn.session = undefined;
    if (session.exit(conn)) {
      this.#logger.info("view.exited", { sessionId: session.id, viewId: conn.viewId, connectionId: conn.id, reason, views: session.size });
    }
  }

  /** Detaches `conn`, sends it an Error frame with `code` and closes it with the same code. */
  fail(conn: Connection, code: number, message: string): void {
    this.detach(conn, closeCodeName(code) ?? `error ${code}`);
    conn.fail(code, message);
  }

  /** Admits a Join: loads or creates the session, checks the access token, syncs the joiner. */
  async #join(conn: Connection, msg: JoinMessage): Promise<void> {
    if (conn.state !== "open") {
      throw new ProtocolError("this socket already joined a session; open a new socket to join again", CloseCode.BadJoin);
    }
    const auth = decodeJoinAuth(msg.auth);
    conn.state = "joining";
    conn.viewId = msg.viewId;
    const session = await this.#registry.open({
      sessionId: msg.sessionId,
      persistentId: msg.persistentId,
      tps: this.#tps ?? msg.tps,
      access: auth,
      slot: auth.slot,
      slotToken: auth.slotToken,
    });
    if (conn.state !== "joining") {
      this.#registry.release(session); // the socket went away while the session loaded
      return;
    }
    if (!session.admits(auth.token)) {
      this.#registry.release(session);
      this.#logger.warn("auth.failed", { sessionId: msg.sessionId, viewId: msg.viewId, connectionId: conn.id, remote: conn.remote });
      throw new ProtocolError("access token does not match this session: wrong password?", CloseCode.AuthFailed);
    }
    const previous = session.member(msg.viewId);
    if (previous !== undefined && previous !== conn) {
      // The same client rejoining before its old socket was noticed dead (a network drop, a
      // sleeping tab): the newer connection wins. The old one's view-exit is stamped first, so
      // every view-join still pairs with one view-exit.
      session.exit(previous);
      previous.fail(CloseCode.DuplicateView, `viewId ${msg.viewId} rejoined on a newer connection; this one is replaced`);
      this.#logger.info("view.replaced", { sessionId: session.id, viewId: msg.viewId, connectionId: conn.id, views: session.size });
    }
    if (!session.join(conn, msg.viewData)) {
      this.#registry.release(session);
      throw new ProtocolError(
        `viewId ${msg.viewId} is already live in this session; every client needs its own random viewId`,
        CloseCode.DuplicateView,
      );
    }
    conn.state = "joined";
    conn.session = session;
    this.#logger.info("view.joined", { sessionId: session.id, viewId: conn.viewId, connectionId: conn.id, views: session.size, seq: session.lastSeq });
  }

  #rateLimited(conn: Connection, session: Session): void {
    const { maxMessagesPerSecond, messageBurst } = this.#limits;
    this.#logger.warn("rate.limited", { sessionId: session.id, viewId: conn.viewId, connectionId: conn.id, remote: conn.remote });
    this.fail(conn, CloseCode.RateLimited, `more than ${maxMessagesPerSecond} messages per second (burst ${messageBurst}); slow down, then reconnect`);
  }

  #onError(conn: Connection, error: unknown): void {
    try {
      if (error instanceof ProtocolError) {
        this.#logger.warn("protocol.error", {
          code: error.code,
          reason: closeCodeName(error.code),
          message: error.message,
          sessionId: conn.session?.id,
          viewId: conn.viewId || undefined,
          connectionId: conn.id,
          remote: conn.remote,
        });
        this.fail(conn, error.code, error.message);
      } else {
        this.#logger.error("internal.error", { error, connectionId: conn.id, sessionId: conn.session?.id });
        this.fail(conn, CloseCode.InternalError, "unexpected reflector fault; the session is unharmed, reconnecting is safe");
      }
    } catch (nested) {
      this.#logger.error("internal.error", { error: nested, connectionId: conn.id });
      conn.terminate();
    }
  }
}

/** The connection's session; a session frame before the join is a protocol error. */
function joinedSession(conn: Connection, frame: string): Session {
  if (conn.state !== "joined" || conn.session === undefined) {
    throw new ProtocolError(`${frame} before Join; the first frame on a socket must be Join`, CloseCode.NotJoined);
  }
  return conn.session;
}

/** The frame as a plain Uint8Array view (no copy), so slices of it behave like Uint8Array, not Buffer. */
function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) {
    const joined = Buffer.concat(data);
    return new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength);
  }
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
