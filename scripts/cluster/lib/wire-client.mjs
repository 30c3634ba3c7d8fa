// A raw protocol client that follows a cluster the way a real client must (PROTOCOL.md §17):
// every node URL listed; a Redirect frame + 4017 → the named node at once; 4018 → another URL at
// once; a socket that does not open in time, a lost connection or a silent one (a SIGSTOPped
// node) → another URL (at random) after a short backoff; rejoins resume from the last seq received. It
// publishes numbered messages at a steady rate while joined and never sends one twice, and
// records everything it received (tap.mjs). A "witness" joins once and then only listens: it
// never gives up on its connection, so it sees whatever a paused node sends after it resumes.
import { randomBytes } from "node:crypto";
import { WebSocket } from "ws";
import { MessageType, encodeClientMessage, encodeSend } from "@lockstep/protocol";
import { StreamRecord, publishPayload } from "./tap.mjs";
import { now } from "./time.mjs";

const randomId = (bytes = 12) => randomBytes(bytes).toString("base64url");
/** The constant hash every raw client votes in snapshot rounds: they hold no state, and agree. */
const VOTE_HASH = randomBytes(32);
/** Redirects followed in a row without a Sync before the backoff applies again. */
const MAX_REDIRECTS = 5;

export class WireClient {
  /**
   * @param {object} o
   * @param {string[]} o.urls every node's URL
   * @param {{ sessionId: string, persistentId: string, auth: Uint8Array }} o.keys the session's keys (wire.mjs newSessionKeys)
   * @param {string} o.label name in reports
   * @param {number} o.tag unique per client, inside every payload it publishes
   * @param {(url: string) => string} o.nodeName name of the node behind a URL
   */
  constructor({ urls, keys, label, tag, nodeName, rate = 8, silenceMs = 3500, openTimeoutMs = 4000, joinTimeoutMs = 15_000, witness = false, startIndex = 0, snapshotBytes = 0 }) {
    Object.assign(this, { urls, keys, label, tag, nodeName, rate, silenceMs, openTimeoutMs, joinTimeoutMs, witness, snapshotBytes });
    this.viewId = randomId();
    this.record = new StreamRecord(label, keys.sessionId);
    this.published = new Map(); // n → { sentAt, conn, ackedAt, seq }
    this.sent = 0;
    this.joined = false;
    this.stopped = false;
    this.everSynced = false;
    this.freshRejoins = 0;
    this.index = startIndex % urls.length;
    this.#redirects = 0;
    this.#failures = 0;
    this.record.onEntry = (entry, conn) => this.#entry(entry, conn);
  }

  #ws = undefined;
  #stopping = false;
  #publishing = false;
  #redirects;
  #failures;
  #watchTimer = undefined;
  #lastWatch = now();
  #publishTimers = [];
  #retryTimer = undefined;
  #firstSync = undefined;

  /** Connects (to `urls[startIndex]`); resolves at the first Sync, rejects if the client is stopped first. */
  start() {
    const synced = new Promise((resolve, reject) => (this.#firstSync = { resolve, reject }));
    this.#connect(this.urls[this.index]);
    this.#watchTimer = setInterval(() => this.#watch(), 250);
    return synced;
  }

  /** Starts publishing (`rate` per second, staggered), while joined. */
  publish() {
    if (this.witness || this.#publishing) return;
    this.#publishing = true;
    const interval = 1000 / this.rate;
    const first = setTimeout(() => {
      this.#send();
      this.#publishTimers.push(setInterval(() => this.#send(), interval));
    }, Math.random() * interval);
    this.#publishTimers.push(first);
  }

  /** Stops publishing (joined connections stay). */
  quiet() {
    this.#publishing = false;
    for (const t of this.#publishTimers.splice(0)) clearInterval(t);
  }

  /** Publishes sent on the current connection and not relayed back yet. */
  get inFlight() {
    let n = 0;
    const conn = this.record.current;
    for (const p of this.published.values()) if (p.ackedAt === undefined && p.conn === conn?.id && conn?.closedAt === undefined) n++;
    return n;
  }

  /** Leaves (Leave frame, close 1000) and stops reconnecting; resolves once the socket closed. */
  async stop() {
    this.#stopping = true;
    this.stopped = true;
    this.#clearTimers();
    this.#firstSync?.reject(new Error(`${this.label} stopped before joining`));
    const ws = this.#ws;
    if (ws === undefined || ws.readyState === WebSocket.CLOSED) return;
    const conn = this.record.current;
    if (conn) conn.by ??= "leave";
    const closed = new Promise((resolve) => ws.once("close", resolve));
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(encodeClientMessage({ type: MessageType.Leave }));
      ws.close(1000);
    } else ws.terminate();
    const timer = setTimeout(() => ws.terminate(), 3000);
    await closed;
    clearTimeout(timer);
  }

  /** Drops the socket without a close handshake (the harness's teardown). */
  terminate() {
    this.#stopping = true;
    this.#clearTimers();
    this.#ws?.terminate();
  }

  #clearTimers() {
    this.quiet();
    clearInterval(this.#watchTimer);
    clearTimeout(this.#retryTimer);
  }

  /** From `at` on, every frame the current connection receives is kept with its time (conn.after). */
  watchFrom(at) {
    const conn = this.record.current;
    if (conn) conn.watchFrom = at;
  }

  #connect(url) {
    if (this.#stopping) return;
    const conn = this.record.open(url, this.nodeName(url));
    conn.resumeSeq = this.everSynced ? this.record.lastSeq : 0;
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: this.openTimeoutMs, maxPayload: 256 << 20 });
    ws.binaryType = "nodebuffer";
    this.#ws = ws;
    let joinTimer;
    ws.on("error", () => undefined);
    ws.once("open", () => {
      conn.openAt = now();
      ws.send(
        encodeClientMessage({
          type: MessageType.Join,
          sessionId: this.keys.sessionId,
          persistentId: this.keys.persistentId,
          viewId: this.viewId,
          tps: 20,
          auth: this.keys.auth,
          viewData: new Uint8Array(0),
          resumeSeq: conn.resumeSeq,
        }),
      );
      joinTimer = setTimeout(() => {
        conn.by ??= "join-timeout";
        ws.terminate();
      }, this.joinTimeoutMs);
    });
    ws.on("message", (data) => {
      const msg = this.record.frame(conn, data);
      if (msg === undefined) return;
      if (msg.type === MessageType.Sync) {
        clearTimeout(joinTimer);
        if (this.everSynced && !conn.resumed) this.freshRejoins++;
        this.everSynced = true;
        this.joined = true;
        this.#redirects = 0;
        this.#failures = 0;
        this.#firstSync?.resolve(conn);
        this.#firstSync = undefined;
      } else if (msg.type === MessageType.UploadRequest && this.snapshotBytes > 0) {
        const data = randomBytes(this.snapshotBytes);
        ws.send(encodeClientMessage({ type: MessageType.SnapshotChunk, seq: msg.seq, hash: VOTE_HASH, total: data.length, offset: 0, data }));
      }
    });
    ws.once("close", (code, reason) => {
      clearTimeout(joinTimer);
      if (conn.openAt === undefined) conn.by ??= "open-failed";
      this.record.closed(conn, code, String(reason));
      if (this.#ws === ws) this.joined = false;
      this.#next(conn);
    });
  }

  /** Where to go after `conn` closed. */
  #next(conn) {
    if (this.#stopping) return;
    if (this.witness && this.everSynced) return;
    const code = conn.code;
    if (code === 4017 && conn.redirect !== undefined && /^wss?:\/\//.test(conn.redirect) && this.#redirects < MAX_REDIRECTS) {
      this.#redirects++;
      this.#connect(conn.redirect);
      return;
    }
    // Any other node than the one this connection was on (it may have been a redirect target),
    // chosen at random: a load balancer's way, and the sessions of a failed node spread out.
    const on = this.urls.indexOf(conn.url);
    if (this.urls.length > 1) {
      const others = this.urls.map((_, i) => i).filter((i) => i !== on);
      this.index = others[Math.floor(Math.random() * others.length)];
    }
    if (code === 4018 && this.#failures === 0) {
      this.#failures++;
      this.#connect(this.urls[this.index]);
      return;
    }
    this.#redirects = 0;
    const delay = Math.min(1000, 100 * 2 ** this.#failures);
    this.#failures++;
    this.#retryTimer = setTimeout(() => this.#connect(this.urls[this.index]), delay);
  }

  /** A silent connection (nothing heard for `silenceMs`, ticks included) is dead: drop it. */
  #watch() {
    // This process itself ran late (a busy harness): frames may be waiting unread, so a silence
    // measured now would be ours, not the node's. Judge at the next tick instead.
    const t = now();
    const late = t - this.#lastWatch > 1000;
    this.#lastWatch = t;
    if (late) return;
    const conn = this.record.current;
    if (this.witness || this.#stopping || conn === undefined || conn.closedAt !== undefined || conn.syncAt === undefined) return;
    if (now() - conn.lastHeard > this.silenceMs) {
      conn.by ??= "silence";
      this.#ws?.terminate();
    }
  }

  #send() {
    if (!this.#publishing || !this.joined || this.#ws?.readyState !== WebSocket.OPEN) return;
    const n = ++this.sent;
    this.#ws.send(encodeSend(publishPayload(this.tag, n)));
    this.published.set(n, { sentAt: now(), conn: this.record.current.id, ackedAt: undefined, seq: undefined });
  }

  #entry(entry, conn) {
    if (entry.type === MessageType.SnapshotRequest && this.snapshotBytes > 0 && conn.closedAt === undefined && this.#ws?.readyState === WebSocket.OPEN) {
      this.#ws.send(encodeClientMessage({ type: MessageType.SnapshotVote, seq: entry.seq, hash: VOTE_HASH }));
    }
    if (entry.type !== MessageType.Relay) return;
    const pub = this.record.received.get(entry.seq)?.pub;
    if (pub === undefined) return;
    const [tag, n] = pub.split(":").map(Number);
    if (tag !== this.tag) return;
    const p = this.published.get(n);
    if (p === undefined) {
      this.record.violations.push(`${this.label}: relay #${entry.seq} carries its message ${n}, which it never sent`);
    } else if (p.seq === undefined) {
      p.seq = entry.seq;
      p.ackedAt = now();
    } else if (p.seq !== entry.seq) {
      this.record.violations.push(`${this.label}: its message ${n} relayed twice, at #${p.seq} and #${entry.seq}`);
    }
  }
}
