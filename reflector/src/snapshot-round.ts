/**
 * One snapshot point of a session: the votes of the members that were present at the request,
 * the majority hash, and which member is asked to upload. Pure bookkeeping, no I/O.
 */
export class SnapshotRound {
  readonly seq: number;
  readonly time: number;
  readonly #expected: Set<string>;
  readonly #votes = new Map<string, string>(); // viewId → hash (hex), in arrival order
  #majority: string | undefined;
  #asked = new Set<string>();
  #uploader: string | undefined;

  constructor(seq: number, time: number, members: Iterable<string>) {
    this.seq = seq;
    this.time = time;
    this.#expected = new Set(members);
  }

  /** Records a vote; returns true when every expected member has voted. Votes of others are ignored. */
  vote(viewId: string, hash: Uint8Array): boolean {
    if (!this.#expected.has(viewId) || this.#majority !== undefined) return false;
    this.#votes.set(viewId, Buffer.from(hash).toString("hex"));
    return this.complete;
  }

  /**
   * A member left; returns true if the remaining ones have all voted, or none is left to (the round
   * can then be decided, or abandoned at once rather than at its timeout).
   */
  forget(viewId: string): boolean {
    this.#expected.delete(viewId);
    return this.complete;
  }

  get complete(): boolean {
    for (const id of this.#expected) if (!this.#votes.has(id)) return false;
    return true;
  }

  get voteCount(): number {
    return this.#votes.size;
  }

  /**
   * Fixes the majority hash (most votes; a tie goes to the hash voted first). Returns it with the
   * vote counts per hash and whether the vote was `split` (the most votes tied: no majority), or
   * undefined if nobody voted.
   */
  decide(): { majority: string; counts: Map<string, number>; split: boolean } | undefined {
    const counts = new Map<string, number>();
    for (const hash of this.#votes.values()) counts.set(hash, (counts.get(hash) ?? 0) + 1);
    let majority: string | undefined;
    for (const [hash, n] of counts) if (majority === undefined || n > counts.get(majority)!) majority = hash;
    if (majority === undefined) return undefined;
    this.#majority = majority;
    const top = counts.get(majority)!;
    const split = [...counts.values()].filter((n) => n === top).length > 1;
    return { majority, counts, split };
  }

  get majority(): string | undefined {
    return this.#majority;
  }

  /** The next member that voted the majority and was not asked to upload yet (still connected per `isMember`). */
  elect(isMember: (viewId: string) => boolean): string | undefined {
    for (const [viewId, hash] of this.#votes) {
      if (hash === this.#majority && !this.#asked.has(viewId) && isMember(viewId)) {
        this.#asked.add(viewId);
        this.#uploader = viewId;
        return viewId;
      }
    }
    this.#uploader = undefined;
    return undefined;
  }

  /** The member elected last (the only one whose upload is accepted), if any. */
  get uploader(): string | undefined {
    return this.#uploader;
  }

  /** Whether an upload of `hash` for this round is acceptable. */
  accepts(seq: number, hash: Uint8Array): boolean {
    return seq === this.seq && this.#majority !== undefined && Buffer.from(hash).toString("hex") === this.#majority;
  }
}
