/**
 * The PostgreSQL cluster store against a real server: ownership, fencing after a dead or paused
 * owner, waiting out a stale lease, the group commit, retention, release and close.
 */
import { performance } from "node:perf_hooks";
import { MessageType, type StreamEntry } from "@lockstep/protocol";
import { checkClusterLogs } from "../../src/cluster/pg-cluster-audit";
import { createClusterStore } from "../../src/cluster/pg-cluster-store";
import { FencedError, type Claim } from "../../src/cluster/types";
import { StorageError } from "../../src/storage/errors";
import { LEASE_MS, PG_MISSING, PG_URL, PgCluster, RENEW_MS, meta, nextLeaseLoss, relays, usePgCluster, waitFor } from "./pg-cluster-kit";

const describePg = PG_URL === "" ? describe.skip : describe;
if (PG_URL === "") test.skip(PG_MISSING, () => undefined);

function owned(claim: Claim): Extract<Claim, { kind: "owned" }> {
  if (claim.kind !== "owned") throw new Error(`expected to own the session, got ${JSON.stringify(claim)}`);
  return claim;
}

describePg("PostgreSQL cluster store", () => {
  const current = usePgCluster();
  let cluster: PgCluster;
  beforeEach(() => {
    cluster = current();
  });

  test("a session created on one node is elsewhere for another; the owner appends and the other reads it", async () => {
    const [a, b] = await Promise.all([cluster.node(), cluster.node()]);
    expect(await a.create(meta("s1"), new Uint8Array([9]))).toBe(true);
    expect(await b.claim("s1")).toEqual({ kind: "elsewhere", owner: a.node });
    await a.appendEntries("s1", relays(1, 3));
    await a.appendEntries("s1", relays(4, 4));
    const seen = await b.load("s1");
    expect(seen?.entries).toEqual(relays(1, 4));
    expect(seen).toMatchObject({ lastSeq: 4, lastTime: 40, timeWatermark: 40, persisted: new Uint8Array([9]), liveViews: [], snapshot: undefined });
    expect(seen?.meta).toEqual(meta("s1"));
    expect(await b.claim("absent")).toEqual({ kind: "absent" });
    expect(await b.load("absent")).toBeUndefined();
    expect((await b.liveNodes()).map((n) => n.nodeId).sort()).toEqual([a.node.nodeId, b.node.nodeId].sort());
    expect(await b.sessionIds()).toEqual(["s1"]);
  });

  test("simultaneous creates of one session on two nodes: exactly one wins, the other is sent to it", async () => {
    const [a, b] = await Promise.all([cluster.node(), cluster.node()]);
    for (let i = 0; i < 8; i++) {
      const id = `race-${i}`;
      const [onA, onB] = await Promise.all([a.create(meta(id)), b.create(meta(id))]);
      expect([onA, onB].filter(Boolean)).toHaveLength(1);
      const [winner, loser] = onA ? [a, b] : [b, a];
      expect(await loser.claim(id)).toEqual({ kind: "elsewhere", owner: winner.node });
      await winner.appendEntries(id, relays(1, 1));
      await expect(loser.appendEntries(id, relays(1, 1))).rejects.toBeInstanceOf(FencedError);
    }
  });

  test("a node whose lock connection dies loses its sessions at once, and every write it tries is fenced", async () => {
    const [a, b] = await Promise.all([cluster.node(), cluster.node()]);
    const lost = nextLeaseLoss(a);
    await a.create(meta("s"));
    await a.appendEntries("s", relays(1, 3));
    await a.putTime("s", 500);
    const before = await cluster.query(`SELECT * FROM ${cluster.table("heads")}`);

    await cluster.killLockConnection(a);
    const started = performance.now();
    const claim = owned(await b.claim("s"));
    expect(performance.now() - started).toBeLessThan(LEASE_MS);
    expect(claim.epoch).toBe(2);
    expect(claim.stored.entries).toEqual(relays(1, 3));
    expect(claim.stored.timeWatermark).toBe(500);

    await expect(a.appendEntries("s", relays(4, 4))).rejects.toBeInstanceOf(FencedError);
    await expect(a.putSnapshot("s", { seq: 3, time: 30, bytes: new Uint8Array([1]) })).rejects.toBeInstanceOf(FencedError);
    await expect(a.putTime("s", 9000)).rejects.toBeInstanceOf(FencedError);
    await expect(a.touch("s")).rejects.toBeInstanceOf(FencedError);
    expect(await lost).toMatch(/lock connection/);
    expect(await cluster.query(`SELECT * FROM ${cluster.table("heads")}`)).toEqual([{ ...before[0], owner: b.node.nodeId, epoch: "2" }]);
    expect(await cluster.query(`SELECT count(*)::integer AS n FROM ${cluster.table("snapshots")}`)).toEqual([{ n: 0 }]);

    // The old owner comes back on a new connection, but owns nothing until it claims again.
    await waitFor("the node to renew its lease on a new connection", () => a.alive);
    await expect(a.appendEntries("s", relays(4, 4))).rejects.toBeInstanceOf(FencedError);
    expect(await a.claim("s")).toEqual({ kind: "elsewhere", owner: b.node });
    await b.appendEntries("s", relays(4, 4));
    expect((await checkClusterLogs(cluster.admin, cluster.prefix)).problems).toEqual([]);
  });

  test("a paused owner keeps its sessions until its lease expires, then is fenced, and stays fenced when it resumes", async () => {
    const [a, b] = await Promise.all([cluster.node(), cluster.node()]);
    await a.create(meta("s"));
    await a.appendEntries("s", relays(1, 2));
    // Fresh lease: sent to the owner at once.
    expect(await b.claim("s")).toEqual({ kind: "elsewhere", owner: a.node });
    const losses: string[] = [];
    a.onLeaseLost((reason) => losses.push(reason));

    const resume = a.suspendRenewals();
    // Paused, but its lease is fresh: still the owner.
    expect(await b.claim("s")).toEqual({ kind: "elsewhere", owner: a.node });
    // The paused node gives up before anyone may take over (its deadline precedes the database's).
    await waitFor("the paused node to give its lease up", () => !a.alive);
    const claim = owned(await b.claim("s"));
    // Taken only once the lease had run out by the database's clock.
    expect(await cluster.leaseLeft(a)).toBeLessThanOrEqual(0);
    expect(claim.epoch).toBe(2);
    expect(claim.stored.entries).toEqual(relays(1, 2));
    expect(a.alive).toBe(false);
    await expect(a.appendEntries("s", relays(3, 3))).rejects.toBeInstanceOf(FencedError);

    resume();
    await waitFor("the resumed node to renew its lease", () => a.alive);
    await expect(a.appendEntries("s", relays(3, 3))).rejects.toBeInstanceOf(FencedError);
    await expect(a.putTime("s", 1)).rejects.toBeInstanceOf(FencedError);
    expect(await a.claim("s")).toEqual({ kind: "elsewhere", owner: b.node });
    expect(losses).toHaveLength(1);
    expect(losses[0]).toMatch(/no lease renewal succeeded/);
    await b.appendEntries("s", relays(3, 3));
    expect((await b.load("s"))?.entries).toEqual(relays(1, 3));
  });

  test("a claim waits out an owner whose lease looks stale, then takes the session", async () => {
    const [a, b] = await Promise.all([cluster.node(), cluster.node()]);
    await a.create(meta("s"));
    a.suspendRenewals();
    // Stale (a renewal missed) but not expired: a claim now must neither redirect nor take over yet.
    await waitFor("the owner's lease to look stale", async () => (await cluster.leaseLeft(a)) < LEASE_MS - 2 * RENEW_MS);
    const started = performance.now();
    const left = await cluster.leaseLeft(a);
    const claim = owned(await b.claim("s"));
    const waited = performance.now() - started;
    // Not before the lease ran out (measured on two clocks: a little slack).
    expect(waited).toBeGreaterThan(left - 20);
    expect(waited).toBeLessThan(LEASE_MS + 1000);
    expect(claim.epoch).toBe(2);
  });

  test("appends of many sessions share statements (group commit), and every log stays contiguous", async () => {
    const a = await cluster.node();
    const ids = Array.from({ length: 50 }, (_, i) => `g${String(i).padStart(2, "0")}`);
    await Promise.all(ids.map((id) => a.create(meta(id))));
    const before = a.commitStats;
    await Promise.all(
      ids.map(async (id, i) => {
        let seq = 0;
        for (let round = 0; round < 4; round++) {
          const n = 1 + ((i + round) % 3);
          await a.appendEntries(id, relays(seq + 1, seq + n));
          seq += n;
        }
      }),
    );
    const after = a.commitStats;
    const appends = after.appends - before.appends;
    const flushes = after.flushes - before.flushes;
    expect(appends).toBe(200);
    expect(flushes).toBeLessThan(appends / 4);
    expect(after.largestBatch).toBeGreaterThan(1);
    const audit = await checkClusterLogs(cluster.admin, cluster.prefix);
    expect(audit.problems).toEqual([]);
    expect(audit.sessions).toHaveLength(50);
    for (const session of audit.sessions) expect([...session.entries.keys()]).toEqual(Array.from({ length: session.lastSeq }, (_, i) => i + 1));
  });

  test("retention deletes only inactive sessions that no live node owns", async () => {
    let wall = 1_000_000;
    const now = (): number => wall;
    const [a, b] = await Promise.all([cluster.node({ now, retentionMs: 1000 }), cluster.node({ now, retentionMs: 1000 })]);
    for (const id of ["owned-a", "released", "dead-owner", "kept"]) await a.create(meta(id));
    await b.create(meta("owned-b"));
    await a.appendEntries("released", relays(1, 2));
    await a.release("released");
    await a.release("kept");
    // An owner whose node row is gone (pruned, or never renewed) is not alive.
    await cluster.query(`UPDATE ${cluster.table("heads")} SET owner = 'ghost' WHERE session_id = 'dead-owner'`);
    wall += 5000;
    await a.create(meta("recent"));
    expect(await a.collectGarbage(new Set(["kept"]))).toBe(2);
    expect(await a.sessionIds()).toEqual(["kept", "owned-a", "owned-b", "recent"]);
    expect(await cluster.query(`SELECT count(*)::integer AS n FROM ${cluster.table("log")}`)).toEqual([{ n: 0 }]);
    // Touching keeps a session: after another retention period only the touched one stays.
    wall += 5000;
    await a.touch("owned-a");
    await a.release("recent");
    expect(await b.collectGarbage()).toBe(2);
    expect(await a.sessionIds()).toEqual(["owned-a", "owned-b"]);
  });

  test("a released session is claimed by another node at once", async () => {
    const [a, b] = await Promise.all([cluster.node(), cluster.node()]);
    await a.create(meta("s"));
    await a.appendEntries("s", relays(1, 2));
    await a.release("s");
    await expect(a.appendEntries("s", relays(3, 3))).rejects.toBeInstanceOf(FencedError);
    const started = performance.now();
    const claim = owned(await b.claim("s"));
    expect(performance.now() - started).toBeLessThan(LEASE_MS);
    expect(claim).toMatchObject({ epoch: 2, stored: { lastSeq: 2 } });
    await b.appendEntries("s", relays(3, 3));
  });

  test("a claim reads the snapshot, the entries after it, the time watermark and the live views", async () => {
    const [a, b] = await Promise.all([cluster.node(), cluster.node()]);
    const join = (seq: number, viewId: string): StreamEntry => ({ type: MessageType.ViewJoin, seq, time: seq * 10, viewId, viewData: new Uint8Array([7]) });
    const exit = (seq: number, viewId: string): StreamEntry => ({ type: MessageType.ViewExit, seq, time: seq * 10, viewId });
    expect(await a.create(meta("s"), new Uint8Array([1, 2]))).toBe(true);
    expect(await b.create(meta("s"))).toBe(false);
    await a.appendEntries("s", [join(1, "v1"), join(2, "v2"), ...relays(3, 3)]);
    await expect(a.putSnapshot("s", { seq: 4, time: 40, bytes: new Uint8Array([5]) })).rejects.toThrow(/ahead of the stored log/);
    await a.putSnapshot("s", { seq: 2, time: 20, bytes: new Uint8Array([5, 6]), views: ["v1", "v2"] });
    await expect(a.putSnapshot("s", { seq: 1, time: 10, bytes: new Uint8Array([5]) })).rejects.toThrow(/older than the stored one/);
    await a.appendEntries("s", [exit(4, "v1"), join(5, "v3")]);
    await a.putSnapshot("s", { seq: 3, time: 30, bytes: new Uint8Array([8]), views: ["v1", "v2"] });
    await a.putTime("s", 1000);
    await a.putTime("s", 700); // never lowered unless exact
    await a.release("s");

    const claim = owned(await b.claim("s"));
    expect(claim.epoch).toBe(2);
    expect(claim.stored).toMatchObject({ lastSeq: 5, lastTime: 50, timeWatermark: 1000, liveViews: ["v2", "v3"], persisted: new Uint8Array([1, 2]) });
    expect(claim.stored.snapshot).toEqual({ seq: 3, time: 30, bytes: new Uint8Array([8]), views: ["v1", "v2"] });
    expect(claim.stored.entries).toEqual([exit(4, "v1"), join(5, "v3")]);
    // The first row (seqs 1..3) lay wholly under the snapshot at 3: trimmed with it.
    expect(await cluster.query(`SELECT first_seq::integer AS f, epoch::integer AS e FROM ${cluster.table("log")} ORDER BY first_seq`)).toEqual([{ f: 4, e: 1 }]);
    await b.putTime("s", 60, { exact: true });
    expect((await b.load("s"))?.timeWatermark).toBe(60);
    await expect(b.appendEntries("s", [{ ...relays(6, 6)[0]!, time: 49 }])).rejects.toThrow(/below the previous entry's 50/);
    await b.appendEntries("s", relays(6, 6));
    expect((await checkClusterLogs(cluster.admin, cluster.prefix)).problems).toEqual([]);
  });

  test("close releases the node's sessions, deletes its row and leaves no connection open", async () => {
    const [a, b] = await Promise.all([cluster.node(), cluster.node()]);
    await a.create(meta("s"));
    expect(await cluster.connectionsOf(a)).toBeGreaterThanOrEqual(2);
    await a.close();
    await a.close();
    await waitFor("the closed node's connections to end", async () => (await cluster.connectionsOf(a)) === 0);
    expect(await cluster.query(`SELECT node_id FROM ${cluster.table("nodes")}`)).toEqual([{ node_id: b.node.nodeId }]);
    expect(await cluster.query(`SELECT owner FROM ${cluster.table("heads")}`)).toEqual([{ owner: null }]);
    expect(a.alive).toBe(false);
    await expect(a.appendEntries("s", relays(1, 1))).rejects.toThrow(/was closed/);
    const started = performance.now();
    expect(owned(await b.claim("s")).epoch).toBe(2);
    expect(performance.now() - started).toBeLessThan(LEASE_MS);
  });

  test("bad options are refused before connecting, and an unreachable server with a clear StorageError", async () => {
    const nowhere = "postgres://nobody@127.0.0.1:1/none";
    const refuse = (options: Parameters<typeof createClusterStore>[0]) => createClusterStore(options).catch((e: unknown) => e);
    for (const [options, message] of [
      [{ nodeUrl: "http://x/" }, /invalid nodeUrl/],
      [{ nodeUrl: "ws://x/", prefix: "bad-prefix" }, /invalid cluster table prefix/],
      [{ nodeUrl: "ws://x/", leaseMs: 1000, renewMs: 500 }, /renewMs must be .* below leaseMs \/ 2/],
      [{ nodeUrl: "ws://x/", leaseMs: 0 }, /leaseMs must be/],
    ] as const) {
      const error = await refuse({ connectionString: nowhere, ...options });
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toMatch(message);
    }
    const error = await refuse({ connectionString: "postgres://me:s3cret@127.0.0.1:1/x", nodeUrl: "ws://x/", connectionTimeoutMillis: 2000 });
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/ECONNREFUSED.*check that PostgreSQL is running/);
    expect((error as Error).message).not.toContain("s3cret");
  });
});
