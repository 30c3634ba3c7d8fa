/**
 * What the reflector counts as it runs, for `/metrics` (see metrics.ts). The hot paths (every
 * frame in, every frame out) only add to plain number fields here: no label objects, no calls into
 * the metrics library per message. The exporter copies these into its registry when scraped.
 * Without metrics the counting costs a few additions and nothing reads them.
 */
export class Instruments {
  /** Frames received from clients. */
  framesReceived = 0;
  /** Bytes of those frames. */
  bytesReceived = 0;
  /** Bytes of every frame sent to clients (relays, ticks, syncs, errors…), counted once per recipient. */
  bytesSent = 0;
  /** Client messages stamped and relayed (each payload of a SendBatch counts). */
  entriesRelayed = 0;
  /** Joins admitted into a session as a new view. */
  joins = 0;
  /** Joins that resumed a view still in the stream (after a blip or a reflector restart). */
  resumes = 0;
  /** Joins sent to the session's owner node (a cluster): redirected, or forwarded in proxy mode. */
  redirects = 0;
  /** Sessions this cluster node took over or claimed (not created). */
  claims = 0;
  /** Sessions created (not loaded from storage) since start. */
  sessionsCreated = 0;
  /** Closed sockets by close code (as the closing handshake reported it; 1006 when cut off). */
  readonly closes = new Map<number, number>();
  /** Joins refused, by the name of the close code they got (`AuthFailed`, `TokenRejected`…). */
  readonly rejectedJoins = new Map<string, number>();
  /** Called with the duration of each storage append (one group commit of entries), in seconds. */
  observeAppend: (seconds: number) => void = () => {};

  /** Counts one closed socket. */
  closed(code: number): void {
    this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
  }

  /** Counts one refused join. */
  rejected(reason: string): void {
    this.rejectedJoins.set(reason, (this.rejectedJoins.get(reason) ?? 0) + 1);
  }
}
