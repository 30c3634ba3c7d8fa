import { MessageType, ProtocolError, encodeServerMessage, type SnapshotRequestEntry, type TimerHandle, type Timers } from "@lockstep/protocol";
import type { Logger } from "./logger";
import { SnapshotRound } from "./snapshot-round";
import { Assembly } from "./uploads";

/** When a session asks its clients for a snapshot, and how long it waits for them. */
export interface SnapshotPolicy {
  /** Ask after this many entries since the last snapshot. */
  readonly everyMessages: number;
  /** Ask when this much session time (ms) passed since the last snapshot and anything happened. */
  readonly everyMs: number;
  /** How long to wait for votes, and then for each elected uploader (between its chunks), in ms. */
  readonly voteTimeoutMs: number;
}

/** A snapshot the session keeps: the encrypted state right after entry `seq`. */
export interface SessionSnapshot {
  readonly seq: number;
  readonly time: number;
  readonly bytes: Uint8Array;
}

/** What a {@link SessionSnapshots} needs from its session. */
export interface SnapshotHost {
  readonly sessionId: string;
  readonly logger: Logger;
  /** Schedules the vote and upload timeouts. */
  readonly timers: Timers;
  readonly policy: SnapshotPolicy;
  /** Live member view ids, in join order. */
  memberIds(): Iterable<string>;
  isMember(viewId: string): boolean;
  /** Sends a frame to one member (if still there). */
  sendTo(viewId: string, frame: Uint8Array): void;
  broadcast(frame: Uint8Array): void;
  /** Stamps the SnapshotRequest entry (next seq, time now) into the stream. */
  appendRequest(): SnapshotRequestEntry;
  /** A snapshot was accepted: the session trims its log and stores it. */
  stored(snapshot: SessionSnapshot): void;
}

/**
 * A session's snapshot rounds (PROTOCOL.md §11): the request entry, the votes of the members present,
 * divergence reports, the election of one uploader at a time, and its chunked upload. Only the
 * elected member may upload, one upload at a time, bounded by `maxSnapshotBytes` when decoded.
 */
export class SessionSnapshots {
  readonly #host: SnapshotHost;
  #round: SnapshotRound | undefined;
  #timer: TimerHandle | undefined;
  /** The elected member's upload in progress. */
  #upload: Assembly | undefined;
  /** Set while the request entry is being stamped (stamping may ask for a snapshot again). */
  #requesting = false;

  constructor(host: SnapshotHost) {
    this.#host = host;
  }

  /** Whether a round is under way (requested, not yet stored or abandoned). */
  get active(): boolean {
    return this.#round !== undefined || this.#requesting;
  }

  /** Appends a SnapshotRequest and starts a round. Returns its seq, or undefined if one is under way. */
  request(): number | undefined {
    if (this.active) return undefined;
    this.#requesting = true;
    let entry: SnapshotRequestEntry;
    try {
      entry = this.#host.appendRequest();
    } finally {
      this.#requesting = false;
    }
    this.#round = new SnapshotRound(entry.seq, entry.time, this.#host.memberIds());
    this.#setTimer(() => this.#concludeVotes());
    return entry.seq;
  }

  /** A member's vote for the snapshot at `seq`. */
  vote(viewId: string, seq: number, hash: Uint8Array): void {
    const round = this.#round;
    if (round === undefined || round.seq !== seq || round.majority !== undefined) return;
    if (round.vote(viewId, hash)) this.#concludeVotes();
  }

  /** A member left: a round still collecting votes stops waiting for it; its upload is abandoned. */
  left(viewId: string): void {
    const round = this.#round;
    if (round === undefined) return;
    if (round.majority === undefined) {
      if (round.forget(viewId)) this.#concludeVotes();
    } else if (round.uploader === viewId) {
      this.#upload = undefined;
      this.#askForUpload();
    }
  }

  /**
   * A chunk of `viewId`'s snapshot upload. Accepted only from the elected uploader, for the round's
   * seq and majority hash; other uploads are dropped (logged). Returns the snapshot once complete.
   * @throws {ProtocolError} if the elected uploader's chunks do not continue its upload.
   */
  chunk(viewId: string, seq: number, hash: Uint8Array, total: number, offset: number, data: Uint8Array): SessionSnapshot | undefined {
    const round = this.#round;
    if (round === undefined || round.uploader !== viewId || !round.accepts(seq, hash)) {
      // A late upload (a newer round started, or another member was elected meanwhile) is harmless.
      if (offset === 0) this.#host.logger.warn("snapshot.rejected", { sessionId: this.#host.sessionId, viewId, seq, expected: round?.seq, elected: round?.uploader });
      return undefined;
    }
    if (offset === 0) this.#upload = new Assembly(total);
    const upload = this.#upload;
    if (upload === undefined || upload.total !== total) throw new ProtocolError("snapshot chunk does not belong to the upload in progress; start it at offset 0");
    const bytes = upload.add(offset, data);
    // Progress keeps the elected uploader's turn: a large snapshot may take longer than one timeout.
    this.#setTimer(() => this.#askForUpload());
    if (bytes === undefined) return undefined;
    this.#clearTimer();
    this.#round = undefined;
    this.#upload = undefined;
    const snapshot: SessionSnapshot = { seq, time: round.time, bytes };
    this.#host.stored(snapshot);
    return snapshot;
  }

  /** Stops timers (the session is disposed). */
  dispose(): void {
    this.#clearTimer();
    this.#round = undefined;
    this.#upload = undefined;
  }

  #concludeVotes(): void {
    const round = this.#round;
    if (round === undefined) return;
    this.#clearTimer();
    const decision = round.decide();
    if (decision === undefined) {
      this.#host.logger.warn("snapshot.abandoned", { sessionId: this.#host.sessionId, seq: round.seq, reason: "no votes" });
      this.#round = undefined;
      return;
    }
    if (decision.counts.size > 1) {
      const votes = [...decision.counts.values()].sort((a, b) => b - a);
      this.#host.logger.warn("snapshot.divergence", { sessionId: this.#host.sessionId, seq: round.seq, votes, split: decision.split });
      // A tie blames nobody: every replica is told it is a split, and none rebuilds. The session
      // still needs a snapshot (its log would grow until Sends are refused), so the hash voted
      // first is stored, as before.
      const hash = decision.split ? new Uint8Array(0) : Buffer.from(decision.majority, "hex");
      this.#host.broadcast(encodeServerMessage({ type: MessageType.Divergence, seq: round.seq, hash, split: decision.split }));
    }
    this.#askForUpload();
  }

  #askForUpload(): void {
    const round = this.#round;
    if (round === undefined) return;
    this.#upload = undefined;
    const viewId = round.elect((id) => this.#host.isMember(id));
    if (viewId === undefined) {
      this.#host.logger.warn("snapshot.abandoned", { sessionId: this.#host.sessionId, seq: round.seq, reason: "no uploader" });
      this.#round = undefined;
      this.#clearTimer();
      return;
    }
    this.#host.sendTo(viewId, encodeServerMessage({ type: MessageType.UploadRequest, seq: round.seq }));
    this.#setTimer(() => this.#askForUpload());
  }

  #setTimer(fn: () => void): void {
    this.#clearTimer();
    this.#timer = this.#host.timers.setTimeout(() => {
      try {
        fn();
      } catch (error) {
        this.#host.logger.error("snapshot.failed", { sessionId: this.#host.sessionId, error });
      }
    }, this.#host.policy.voteTimeoutMs);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#host.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
