import {
  CloseCode,
  MessageType,
  PersistOutcome,
  ProtocolError,
  closeCodeName,
  decodeClientMessage,
  decodeJoinAuth,
  encodeServerMessage,
  type JoinMessage,
  type Limits,
  type PersistChunkMessage,
} from "@lockstep/protocol";
import type { AppAuthVerifier } from "./app-auth";
import { SessionElsewhere } from "./cluster/routing";
import { isFenced, type NodeInfo } from "./cluster/types";
import type { Connection } from "./connection";
import type { Instruments } from "./instruments";
import type { Logger } from "./logger";
import type { PersistService } from "./persistence";
import type { Session } from "./session";
import type { SessionRegistry } from "./session-registry";
import { findDamage, isDamaged } from "./storage/index";
import { PersistAssembly, mismatchedChunk } from "./uploads";

/** Options of a {@link Dispatcher}. */
export interface DispatcherOptions {
  readonly registry: SessionRegistry;
  readonly limits: Limits;
  readonly logger: Logger;
  /** Tick rate imposed on new sessions, or `undefined` to use the creating Join's `tps`. */
  readonly tps: number | undefined;
  /** Stores and loads persisted data (PROTOCOL.md §13). */
  readonly persist: PersistService;
  /** Checks app tokens (PROTOCOL.md §14), when the reflector requires them. */
  readonly appAuth: AppAuthVerifier | undefined;
  /** A connection was closed for breaking a rate limit (its address is refused for a while). */
  readonly onRateLimited?: (conn: Connection) => void;
  /** Where frames, relays and joins are counted. */
  readonly instruments: Instruments;
  /**
   * A cluster node in proxy mode: a Join for a session that `owner` holds is forwarded there
   * (given the connection and its Join). Without it, the client is redirected.
   */
  readonly forward?: (conn: Connection, owner: NodeInfo, join: JoinMessage) => void;
}

const NORMAL_CLOSURE = 1000;
/** How often a join re-reads the stored log when it keeps being evicted from memory meanwhile. */
const HISTORY_ATTEMPTS = 3;
/**
 * Close codes after which a client reconnects to the same view (the fault was the connection's or
 * the reflector's, not the client's): its view stays in the stream for the grace period.
 */
const KEEPS_VIEW: ReadonlySet<number> = new Set([CloseCode.Timeout, CloseCode.SlowReader, CloseCode.InternalError, CloseCode.LogFull, CloseCode.ServerShutdown]);

/**
 * The protocol rules for frames arriving on a socket: rate limits, decode and validate at the
 * edge, admit joins, relay sends, answer pings, assemble uploads, and turn every violation into an
 * Error frame plus close code. Nothing thrown while handling a frame escapes {@link Dispatcher.onFrame}.
 */
export class Dispatcher {
  readonly #registry: SessionRegistry;
  readonly #limits: Limits;
  readonly #logger: Logger;
  readonly #tps: number | undefined;
  readonly #persist: PersistService;
  readonly #appAuth: AppAuthVerifier | undefined;
  readonly #onRateLimited: ((conn: Connection) => void) | undefined;
  readonly #instruments: Instruments;
  readonly #forward: DispatcherOptions["forward"];

  constructor(options: DispatcherOptions) {
    this.#registry = options.registry;
    this.#limits = options.limits;
    this.#logger = options.logger;
    this.#tps = options.tps;
    this.#persist = options.persist;
    this.#appAuth = options.appAuth;
    this.#onRateLimited = options.onRateLimited;
    this.#instruments = options.instruments;
    this.#forward = options.forward;
  }

  /** Client messages relayed so far. */
  get relayed(): number {
    return this.#instruments.entriesRelayed;
  }

  /** Handles one message from `conn` (`bytes` views the received frame). Never throws. */
  onFrame(conn: Connection, bytes: Uint8Array, isBinary: boolean): void {
    if (conn.state === "closing" || conn.state === "closed") return;
    conn.alive = true;
    if (conn.state === "proxied") {
      // The owner decodes and rate-limits them; this node only bounds what it buffers (ProxyLink).
      conn.proxy?.fromClient(bytes, isBinary);
      return;
    }
    const instruments = this.#instruments;
    instruments.framesReceived++;
    instruments.bytesReceived += bytes.length;
    try {
      if (!isBinary) throw new ProtocolError("text frames are not part of the Lockstep protocol; send binary frames");
      // Upload chunks are bounded per upload (and only the elected uploader sends them), not by the byte rate.
      const chunk = bytes[1] === MessageType.SnapshotChunk || bytes[1] === MessageType.PersistChunk;
      if (!conn.takeFrame(bytes.length, !chunk)) {
        this.#rateLimited(conn);
        return;
      }
      const msg = decodeClientMessage(bytes, this.#limits);
      switch (msg.type) {
        case MessageType.Join:
          this.#join(conn, msg).catch((error: unknown) => this.#onError(conn, error));
          break;
        case MessageType.Send:
          this.#relay(conn, joinedSession(conn, "Send"), msg.payload);
          break;
        case MessageType.SendBatch: {
          // One frame of the rate limits, however many payloads: a burst of publishes costs one.
          const session = joinedSession(conn, "SendBatch");
          for (const payload of msg.payloads) if (!this.#relay(conn, session, payload)) return;
          break;
        }
        case MessageType.Leave:
          joinedSession(conn, "Leave");
          this.detach(conn, "left", "exit");
          conn.close(NORMAL_CLOSURE, "left");
          break;
        case MessageType.SnapshotVote:
          joinedSession(conn, "SnapshotVote").vote(conn, msg.seq, msg.hash);
          break;
        case MessageType.SnapshotUpload:
          joinedSession(conn, "SnapshotUpload").uploadChunk(conn, msg.seq, msg.hash, msg.snapshot.length, 0, msg.snapshot);
          break;
        case MessageType.SnapshotChunk:
          joinedSession(conn, "SnapshotChunk").uploadChunk(conn, msg.seq, msg.hash, msg.total, msg.offset, msg.data);
          break;
        case MessageType.PersistUpload:
          this.#persistChunk(conn, joinedSession(conn, "PersistUpload"), { ...msg, type: MessageType.PersistChunk, total: msg.blob.length, offset: 0, data: msg.blob });
          break;
        case MessageType.PersistChunk:
          this.#persistChunk(conn, joinedSession(conn, "PersistChunk"), msg);
          break;
        case MessageType.PersistLoad: {
          const session = joinedSession(conn, "PersistLoad");
          this.#persist.load(session, msg).catch((error: unknown) => this.#onError(conn, error));
          break;
        }
        case MessageType.Ping: {
          const session = joinedSession(conn, "Ping");
          if (!conn.takePing()) {
            this.#rateLimited(conn);
            return;
          }
          conn.send(encodeServerMessage({ type: MessageType.Pong, id: msg.id, time: session.now() }));
          break;
        }
      }
    } catch (error) {
      this.#onError(conn, error);
    }
  }

  /** Relays one payload; false (and `conn` closed with LogFull) when the session's log is full. */
  #relay(conn: Connection, session: Session, payload: Uint8Array): boolean {
    const seq = session.relay(payload);
    // 0: the session is being handed to another node; the client sends it again once it rejoined there.
    if (seq === 0) return true;
    if (seq === undefined) {
      this.#logger.warn("log.full", { sessionId: session.id, viewId: conn.viewId, connectionId: conn.id, logBytes: session.logBytes });
      this.fail(conn, CloseCode.LogFull, "the session's log is full because no snapshot succeeded lately; the message was not relayed. Reconnect with backoff");
      return false;
    }
    this.#instruments.entriesRelayed++;
    return true;
  }

  /**
   * Takes a joined connection out of its session. `"exit"` (it left, or was refused for good)
   * stamps its view-exit now; `"away"` (the connection was lost) keeps its view in the stream for
   * the session's grace period, so the client can come back to it. Idempotent.
   */
  detach(conn: Connection, reason: string, how: "exit" | "away"): void {
    const session = conn.session;
    conn.persistUpload = undefined;
    if (session === undefined) return;
    conn.session = undefined;
    if (how === "exit" ? session.exit(conn) : session.away(conn)) {
      const event = how === "exit" ? "view.exited" : "view.away";
      this.#logger.info(event, { sessionId: session.id, viewId: conn.viewId, connectionId: conn.id, reason, views: session.size });
    }
  }

  /** Detaches `conn`, sends it an Error frame with `code` and closes it with the same code (`stopReading`: see {@link Connection.fail}). */
  fail(conn: Connection, code: number, message: string, stopReading = false): void {
    this.detach(conn, closeCodeName(code) ?? `error ${code}`, KEEPS_VIEW.has(code) ? "away" : "exit");
    conn.fail(code, message, stopReading);
  }

  /**
   * A chunk of persisted data. Only the session's first member (the uploader the clients elect)
   * may upload, one upload at a time; the whole upload goes to storage when its last chunk arrives.
   */
  #persistChunk(conn: Connection, session: Session, msg: PersistChunkMessage): void {
    if (msg.offset === 0) {
      if (!session.isFirst(conn)) {
        this.#logger.warn("persist.denied", { sessionId: session.id, viewId: conn.viewId, slot: msg.slot, seq: msg.seq, reason: "not the elected uploader" });
        conn.send(
          encodeServerMessage({
            type: MessageType.PersistAck,
            slot: msg.slot,
            seq: msg.seq,
            outcome: PersistOutcome.Denied,
            version: 0,
            message: "only the view that joined first among those present uploads persisted data; this one was not stored",
          }),
        );
        return;
      }
      conn.persistUpload = new PersistAssembly(msg, msg.total);
    }
    const upload = conn.persistUpload;
    if (upload === undefined) {
      // The upload was abandoned (its first chunk was refused): later chunks are dropped quietly.
      return;
    }
    if (!upload.matches(msg, msg.total)) throw mismatchedChunk("persisted-data");
    const blob = upload.add(msg.offset, msg.data);
    if (blob === undefined) return;
    conn.persistUpload = undefined;
    const { slot, token, seq, hash, size } = upload.header;
    this.#persist.upload(session, conn, { type: MessageType.PersistUpload, slot, token, seq, hash, size, blob }).catch((error: unknown) => this.#onError(conn, error));
  }

  /** Admits a Join: checks the app token, loads or creates the session, checks the access token, syncs the joiner. */
  async #join(conn: Connection, msg: JoinMessage): Promise<void> {
    if (conn.state !== "open") {
      throw new ProtocolError("this socket already joined a session; open a new socket to join again", CloseCode.BadJoin);
    }
    const auth = decodeJoinAuth(msg.auth);
    conn.state = "joining";
    conn.viewId = msg.viewId;
    if (this.#appAuth !== undefined) {
      await this.#appAuth.verify(auth, msg.persistentId);
      if (conn.state !== "joining") return;
    }
    let session: Session;
    try {
      session = await this.#registry.open({
        sessionId: msg.sessionId,
        persistentId: msg.persistentId,
        tps: this.#tps ?? msg.tps,
        access: auth,
        slot: auth.slot,
        slotToken: auth.slotToken,
        address: conn.address,
      });
    } catch (error) {
      if (!(error instanceof SessionElsewhere) || conn.state !== "joining") throw error;
      this.#instruments.redirects++;
      this.#logger.info("session.elsewhere", { sessionId: msg.sessionId, owner: error.owner.nodeId, url: error.owner.url, viewId: msg.viewId, connectionId: conn.id, forwarded: this.#forward !== undefined });
      if (this.#forward !== undefined) this.#forward(conn, error.owner, msg);
      else conn.redirect(error.owner.url);
      return;
    }
    if (conn.state !== "joining") {
      this.#registry.release(session); // the socket went away while the session loaded
      return;
    }
    if (!session.admits(auth.token)) {
      this.#registry.release(session);
      this.#logger.warn("auth.failed", { sessionId: msg.sessionId, viewId: msg.viewId, connectionId: conn.id, remote: conn.remote });
      throw new ProtocolError("access token does not match this session: wrong password?", CloseCode.AuthFailed);
    }
    if (session.persistentId !== "" && session.persistentId !== msg.persistentId) {
      this.#registry.release(session);
      throw new ProtocolError("this Join's persistentId is not the session's; join with the appId and name the session was created with", CloseCode.BadJoin);
    }
    this.#replacePrevious(conn, session, msg.viewId);
    if (session.canResume(msg.viewId, msg.resumeSeq ?? 0)) {
      // Everything the view's old connection sent must reach the resumed Sync: the client learns
      // from it which of its sends got through, and sends the rest again.
      await session.relayedThrough(session.lastSeq);
      if (conn.state !== "joining") {
        this.#registry.release(session);
        return;
      }
    }
    let outcome = this.#admit(conn, session, msg);
    for (let attempt = 0; outcome === "needs-history" && attempt < HISTORY_ATTEMPTS; attempt++) {
      // Older entries left memory: read them back from storage, then admit with them.
      const history = await session.readHistory();
      if (conn.state !== "joining") {
        this.#registry.release(session);
        return;
      }
      outcome = this.#admit(conn, session, msg, history);
    }
    if (outcome !== "joined" && outcome !== "resumed") {
      this.#registry.release(session);
      if (outcome === "taken") {
        throw new ProtocolError(`viewId ${msg.viewId} is already live in this session; every client needs its own random viewId`, CloseCode.DuplicateView);
      }
      throw new Error(`the stored log of session ${session.id} kept changing while a join read it`);
    }
    conn.state = "joined";
    conn.session = session;
    if (outcome === "resumed") this.#instruments.resumes++;
    else this.#instruments.joins++;
    const event = outcome === "resumed" ? "view.resumed" : "view.joined";
    this.#logger.info(event, { sessionId: session.id, viewId: conn.viewId, connectionId: conn.id, views: session.size, seq: session.lastSeq, resumeSeq: msg.resumeSeq || undefined });
  }

  /**
   * The same client rejoining before its old socket was noticed dead (a network drop, a sleeping
   * tab): the newer connection wins. The old one's view goes away, so the new one can resume it;
   * a fresh join stamps its view-exit first, so every view-join still pairs with one view-exit.
   */
  #replacePrevious(conn: Connection, session: Session, viewId: string): void {
    const previous = session.member(viewId);
    if (previous === undefined || previous === conn) return;
    session.away(previous);
    previous.fail(CloseCode.DuplicateView, `viewId ${viewId} rejoined on a newer connection; this one is replaced`);
    this.#logger.info("view.replaced", { sessionId: session.id, viewId, connectionId: conn.id, views: session.size });
  }

  #admit(conn: Connection, session: Session, msg: JoinMessage, history?: Parameters<Session["join"]>[2]): ReturnType<Session["join"]> {
    this.#replacePrevious(conn, session, msg.viewId);
    return session.join(conn, msg.viewData, history, msg.resumeSeq ?? 0);
  }

  #rateLimited(conn: Connection): void {
    const { maxMessagesPerSecond, messageBurst, maxBytesPerSecond, byteBurst, maxPingsPerSecond } = this.#limits;
    this.#logger.warn("rate.limited", { sessionId: conn.session?.id, viewId: conn.viewId || undefined, connectionId: conn.id, remote: conn.remote });
    this.#onRateLimited?.(conn);
    this.fail(
      conn,
      CloseCode.RateLimited,
      `more than ${maxMessagesPerSecond} frames (burst ${messageBurst}), ${maxBytesPerSecond} bytes (burst ${byteBurst}) or ${maxPingsPerSecond} Pings per second; slow down, then reconnect`,
      true,
    );
  }

  #onError(conn: Connection, error: unknown): void {
    try {
      // A Join refused (a socket that went away meanwhile gave up on its own: not a refusal).
      if (conn.state === "joining") {
        this.#instruments.rejected(error instanceof ProtocolError ? (closeCodeName(error.code) ?? String(error.code)) : isDamaged(error) ? "SessionDamaged" : "InternalError");
      }
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
        // Too many new sessions is flooding too: the address waits before it may connect again.
        if (error.code === CloseCode.RateLimited) this.#onRateLimited?.(conn);
        this.fail(conn, error.code, error.message);
      } else if (isFenced(error)) {
        // This node lost its lease (or the session) while admitting: another node serves it.
        this.#logger.info("session.fenced", { sessionId: conn.session?.id, viewId: conn.viewId || undefined, connectionId: conn.id, message: error.message });
        this.fail(conn, CloseCode.SessionMoved, "this reflector node cannot serve the session now; reconnect through another node");
      } else if (isDamaged(error)) {
        // Stored data damaged beyond what loading repairs: retrying cannot help, so the client is told not to.
        const damage = findDamage(error);
        this.#logger.error("storage.damaged", { sessionId: conn.session?.id ?? damage?.sessionId, key: damage?.key, error, viewId: conn.viewId || undefined, connectionId: conn.id });
        this.fail(conn, CloseCode.SessionDamaged, "the session's stored data is damaged and cannot be recovered; do not retry — the reflector's operator must restore it");
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
