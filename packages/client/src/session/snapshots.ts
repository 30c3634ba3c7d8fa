import { DEFAULT_LIMITS, MessageType, encodeClientMessage, equalBytes, unrefTimer, type Timers } from "@lockstep/protocol";
import { BULK_ENVELOPE_OVERHEAD, hmac, sealBulk, type SessionKeys } from "./crypto";
import { UsageError } from "../errors";
import { formatBytes, uploadChunks } from "./chunks";
import { NO_DEBUG, type DebugLog } from "../kernel/debug-log";

/** What a {@link Snapshotter} reports when votes differed at a snapshot point. */
export interface DivergenceReport {
  readonly seq: number;
  /** Whether this replica's state differed from the majority's (it diverged): it rebuilds itself from the session's state. */
  readonly diverged: boolean;
  /** The votes had no majority (a tie): nobody's replica is known to be wrong. */
  readonly split: boolean;
  /** This replica diverged earlier and has now been rebuilt from the session's state. */
  readonly repaired?: boolean;
}

/** How long a client keeps a serialized snapshot in case it is elected to upload it, in ms. */
const KEEP_FOR_UPLOAD_MS = 60_000;

interface Taken {
  readonly seq: number;
  bytes: Uint8Array | undefined;
  hash: Uint8Array | undefined;
  uploadWanted: boolean;
}


/**
 * A client's part in snapshots: at each SnapshotRequest it votes with a keyed hash of its state,
 * uploads the encrypted state when elected, and tells divergence reports apart (this replica, or
 * another one, left the majority).
 */
export class Snapshotter {
  readonly #keys: SessionKeys;
  readonly #send: (frame: Uint8Array) => void;
  readonly #onError: (error: unknown) => void;
  readonly #timers: Timers;
  #latest: Taken | undefined;
  #sealedInOrder: Promise<void> = Promise.resolve();
  readonly #debug: DebugLog;
  /** debug=snapshot: how long the last serialization of the state took, in ms. */
  serializeMs = 0;

  constructor(keys: SessionKeys, timers: Timers, send: (frame: Uint8Array) => void, onError: (error: unknown) => void, debug: DebugLog = NO_DEBUG) {
    this.#keys = keys;
    this.#timers = timers;
    this.#send = send;
    this.#onError = onError;
    this.#debug = debug;
  }

  /** The state right after entry `seq` (a SnapshotRequest), serialized: hash it and vote. */
  taken(seq: number, bytes: Uint8Array): void {
    const taken: Taken = { seq, bytes, hash: undefined, uploadWanted: false };
    this.#latest = taken;
    const debug = this.#debug;
    const started = debug.snapshot ? this.#timers.now() : 0;
    hmac(this.#keys.snapshotHash, bytes).then(
      (hash) => {
        taken.hash = hash;
        if (debug.snapshot) debug.log(`snapshot at #${seq}: ${formatBytes(bytes.length)}, serialized in ${Math.round(this.serializeMs)} ms, hashed in ${Math.round(this.#timers.now() - started)} ms; voting`);
        if (this.#latest !== taken) return;
        this.#send(encodeClientMessage({ type: MessageType.SnapshotVote, seq, hash }));
        if (taken.uploadWanted) this.#upload(taken);
        // Most clients are never asked to upload: do not hold a copy of the whole state for long.
        else unrefTimer(this.#timers.setTimeout(() => (taken.bytes = undefined), KEEP_FOR_UPLOAD_MS));
      },
      (error) => this.#onError(error),
    );
  }

  /** The reflector elected this client to upload its snapshot of `seq`. */
  uploadRequested(seq: number): void {
    if (this.#debug.snapshot) this.#debug.log(`snapshot at #${seq}: this client was elected to upload it`);
    const taken = this.#latest;
    if (!taken || taken.seq !== seq) return; // a newer snapshot superseded it; the reflector elects another
    if (taken.hash) this.#upload(taken);
    else taken.uploadWanted = true;
  }

  /**
   * Seals the snapshot (a version-2 envelope: asynchronous) and sends it as chunks, back to back
   * and in order (the reflector reassembles them). The bytes are taken at once, so a repeated
   * request cannot upload twice; a snapshot superseded while being sealed is not sent (the
   * reflector elects an uploader for the newer one, and would reject this upload).
   */
  #upload(taken: Taken): void {
    const { bytes, hash } = taken;
    if (!bytes || !hash) return; // kept too long; the reflector elects another uploader
    taken.bytes = undefined;
    const max = DEFAULT_LIMITS.maxSnapshotBytes;
    const size = bytes.length + BULK_ENVELOPE_OVERHEAD;
    if (size > max) {
      this.#onError(
        new UsageError(
          `the session's state is ${formatBytes(size)} as a snapshot, over the reflector's ${formatBytes(max)} limit: it cannot be stored, ` +
            `so late joiners replay ever more history. Keep less state in models (large media belongs outside the session)`,
        ),
      );
      return;
    }
    // Sealed off the event loop; uploads go out in the order they were asked for.
    const sealed = sealBulk(this.#keys.snapshot, bytes);
    this.#sealedInOrder = this.#sealedInOrder.then(() =>
      sealed.then(
        (snapshot) => this.#sendChunks(taken, hash, snapshot),
        (error: unknown) => this.#onError(error),
      ),
    );
  }

  #sendChunks(taken: Taken, hash: Uint8Array, snapshot: Uint8Array): void {
    if (this.#latest !== taken) return;
    const { seq } = taken;
    const chunks = uploadChunks(snapshot);
    if (this.#debug.snapshot) this.#debug.log(`snapshot at #${seq}: uploading ${formatBytes(snapshot.length)} encrypted in ${chunks.length} chunk(s)`);
    for (const { offset, data } of chunks) {
      this.#send(encodeClientMessage({ type: MessageType.SnapshotChunk, seq, hash, total: snapshot.length, offset, data }));
    }
  }

  /** Votes at `seq` differed; `majority` is the winning hash. */
  divergence(seq: number, majority: Uint8Array): DivergenceReport {
    const mine = this.#latest;
    const diverged = mine !== undefined && mine.seq === seq && mine.hash !== undefined && !equalBytes(mine.hash, majority);
    return { seq, diverged, split: false };
  }
}
