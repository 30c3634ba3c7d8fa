// What a client connection saw of its session's stream, recorded the same way for raw wire clients
// and for real @lockstep/client replicas (whose sockets are tapped): every (seq → entry
// fingerprint) it received, checked on arrival for gaps, repeats and a second version of a seq,
// and per connection the moments the harness's checks and failover figures need.
import { createHash } from "node:crypto";
import { MessageType, decodeServerMessage, encodeEntries } from "@lockstep/protocol";
import { now } from "./time.mjs";

const ENTRY_TYPES = new Set([MessageType.Relay, MessageType.ViewJoin, MessageType.ViewExit, MessageType.SnapshotRequest, MessageType.Persisted, MessageType.PersistData]);

/** Whether a server frame type is a stream entry sent live. */
export const isEntryType = (type) => ENTRY_TYPES.has(type);

/** A stream entry's fingerprint: SHA-256 of its canonical encoding (type, seq, time and every field). */
export function fingerprint(entry) {
  return createHash("sha256").update(encodeEntries([entry])).digest("base64url").slice(0, 24);
}

/** Payload of a raw client's publish: magic "LF", the client's tag and the message number, then filler. */
const MAGIC_0 = 0x4c;
const MAGIC_1 = 0x46;

/** The payload a raw client publishes as its `n`th message. */
export function publishPayload(tag, n, filler = 24) {
  const b = Buffer.alloc(10 + filler, 0x2e);
  b[0] = MAGIC_0;
  b[1] = MAGIC_1;
  b.writeUInt32BE(tag, 2);
  b.writeUInt32BE(n, 6);
  return b;
}

/** `{ tag, n }` of a raw client's publish payload, or undefined for anything else (a real client's ciphertext). */
export function parsePublish(payload) {
  if (payload.length < 10 || payload[0] !== MAGIC_0 || payload[1] !== MAGIC_1) return undefined;
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return { tag: b.readUInt32BE(2), n: b.readUInt32BE(6) };
}

/**
 * Everything one client (across its connections) received: `received` seq → { fp, time, pub },
 * where pub is "tag:n" of a raw publish. `violations` are what the stream must never do.
 */
export class StreamRecord {
  constructor(label, sessionId) {
    this.label = label;
    this.sessionId = sessionId;
    this.received = new Map();
    this.violations = [];
    this.conns = [];
    this.lastSeq = 0;
    /** When the last live entry arrived (monotonic ms; a Sync's entries do not count: they are history). */
    this.lastEntryAt = undefined;
    /** Called with (entry, conn) for each entry received (Sync or live). */
    this.onEntry = undefined;
  }

  /** A new connection to `url` (`node` its name); the returned record is fed with {@link frame} and {@link closed}. */
  open(url, node) {
    const conn = {
      id: this.conns.length + 1,
      url,
      node,
      openedAt: now(),
      syncAt: undefined,
      syncSeq: undefined,
      resumed: undefined,
      resumeSeq: 0,
      expected: undefined,
      firstRelayAt: undefined,
      lastHeard: now(),
      redirect: undefined,
      error: undefined,
      closedAt: undefined,
      code: undefined,
      reason: undefined,
      by: undefined,
      entries: 0,
      watchFrom: undefined,
      after: [],
    };
    this.conns.push(conn);
    return conn;
  }

  /** One frame from the reflector on `conn`; returns the decoded message (or undefined). */
  frame(conn, data) {
    const at = now();
    conn.lastHeard = at;
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    if (conn.watchFrom !== undefined && at >= conn.watchFrom) conn.after.push({ at, type: bytes[1], seq: undefined });
    let msg;
    try {
      msg = decodeServerMessage(bytes);
    } catch (error) {
      this.violations.push(`${this.label}: undecodable frame from ${conn.node}: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
    if (conn.watchFrom !== undefined && at >= conn.watchFrom) {
      const seen = conn.after.at(-1);
      if ("seq" in msg) seen.seq = msg.seq;
      if (msg.type === MessageType.Error) seen.code = msg.code;
    }
    if (msg.type === MessageType.Redirect) conn.redirect = msg.url;
    else if (msg.type === MessageType.Error) conn.error = msg;
    else if (msg.type === MessageType.Sync) this.#sync(conn, msg, at);
    else if (isEntryType(msg.type)) {
      if (conn.expected === undefined) {
        this.violations.push(`${this.label}: entry #${msg.seq} from ${conn.node} before its Sync`);
      } else if (msg.seq !== conn.expected) {
        this.violations.push(`${this.label}: live entry #${msg.seq} from ${conn.node} where #${conn.expected} was next (gap or repeat)`);
      }
      conn.expected = msg.seq + 1;
      this.lastEntryAt = at;
      this.#record(conn, msg);
      if (msg.type === MessageType.Relay) conn.firstRelayAt ??= at;
    }
    return msg;
  }

  #sync(conn, msg, at) {
    conn.syncAt = at;
    conn.syncSeq = msg.seq;
    conn.resumed = msg.resumed === true;
    const entries = msg.entries;
    if (conn.resumed && entries.length > 0 && entries[0].seq !== conn.resumeSeq + 1) {
      this.violations.push(`${this.label}: resumed Sync from ${conn.node} starts at #${entries[0].seq}, not #${conn.resumeSeq + 1}`);
    }
    for (let i = 0; i < entries.length; i++) {
      if (i > 0 && entries[i].seq !== entries[i - 1].seq + 1) this.violations.push(`${this.label}: Sync from ${conn.node} skips from #${entries[i - 1].seq} to #${entries[i].seq}`);
      this.#record(conn, entries[i]);
    }
    if (entries.length > 0 && entries.at(-1).seq !== msg.seq) this.violations.push(`${this.label}: Sync from ${conn.node} ends at #${entries.at(-1).seq} but says #${msg.seq}`);
    // The session's head behind what this client already received: entries it saw were lost.
    if (msg.seq < this.lastSeq) this.violations.push(`${this.label}: Sync from ${conn.node} at #${msg.seq}, behind #${this.lastSeq} already received (entries lost)`);
    conn.expected = msg.seq + 1;
  }

  #record(conn, entry) {
    conn.entries++;
    const fp = fingerprint(entry);
    const previous = this.received.get(entry.seq);
    if (previous !== undefined && previous.fp !== fp) {
      this.violations.push(`${this.label}: #${entry.seq} received twice with different contents (${previous.node} then ${conn.node})`);
    }
    if (previous === undefined) {
      const parsed = entry.type === MessageType.Relay ? parsePublish(entry.payload) : undefined;
      this.received.set(entry.seq, { fp, time: entry.time, pub: parsed ? `${parsed.tag}:${parsed.n}` : undefined, node: conn.node, at: now() });
    }
    if (entry.seq > this.lastSeq) this.lastSeq = entry.seq;
    this.onEntry?.(entry, conn);
  }

  /** The socket of `conn` closed with `code` (`by`: who closed it, if the client did). */
  closed(conn, code, reason, by) {
    if (conn.closedAt !== undefined) return;
    conn.closedAt = now();
    conn.code = code;
    conn.reason = reason;
    conn.by ??= by ?? "server";
  }

  /** The newest connection, if any. */
  get current() {
    return this.conns.at(-1);
  }
}
