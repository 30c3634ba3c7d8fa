/**
 * checkClusterLogs, the audit the cluster fault tests rely on: silent on a sound cluster, and
 * naming the session and row of every kind of damage. Claims and loads refuse the same damage.
 */
import { checkClusterLogs, entryBytes } from "../../src/cluster/pg-cluster-audit";
import { encodeSegment } from "../../src/storage/records";
import { SessionDamagedError, isDamaged } from "../../src/storage/errors";
import { PG_MISSING, PG_URL, PgCluster, meta, relays, usePgCluster } from "./pg-cluster-kit";

const describePg = PG_URL === "" ? describe.skip : describe;
if (PG_URL === "") test.skip(PG_MISSING, () => undefined);

describePg("checkClusterLogs", () => {
  const current = usePgCluster();
  let cluster: PgCluster;
  beforeEach(() => {
    cluster = current();
  });

  test("a sound cluster has no problems, and every stored entry is listed by seq", async () => {
    const a = await cluster.node();
    await a.create(meta("one"));
    await a.appendEntries("one", relays(1, 2));
    await a.appendEntries("one", relays(3, 5));
    await a.create(meta("two"));
    await a.appendEntries("two", relays(1, 2));
    await a.appendEntries("two", relays(3, 3));
    await a.putSnapshot("two", { seq: 2, time: 20, bytes: new Uint8Array([1]) });
    await a.create(meta("empty"));

    const audit = await checkClusterLogs(PG_URL, cluster.prefix);
    expect(audit.problems).toEqual([]);
    expect(audit.sessions.map((s) => [s.sessionId, s.owner, s.epoch, s.snapshotSeq, s.lastSeq])).toEqual([
      ["empty", a.node.nodeId, 1, 0, 0],
      ["one", a.node.nodeId, 1, 0, 5],
      ["two", a.node.nodeId, 1, 2, 3],
    ]);
    const one = audit.sessions.find((s) => s.sessionId === "one");
    expect(one?.entries).toEqual(new Map(relays(1, 5).map((e) => [e.seq, entryBytes(e)])));
    // The row holding seqs 1..2 of "two" lay under its snapshot and was trimmed.
    expect([...(audit.sessions.find((s) => s.sessionId === "two")?.entries.keys() ?? [])]).toEqual([3]);
  });

  test("every kind of damage is reported, naming the session and row; claims and loads refuse it", async () => {
    const a = await cluster.node();
    const b = await cluster.node();
    const ids = ["gap", "garbage", "epochs", "backwards", "head", "nometa"];
    for (const id of ids) {
      await a.create(meta(id));
      await a.appendEntries(id, relays(1, 2));
      await a.appendEntries(id, relays(3, 3));
      await a.appendEntries(id, relays(4, 4));
      await a.release(id);
    }
    const log = cluster.table("log");
    await cluster.query(`DELETE FROM ${log} WHERE session_id = 'gap' AND first_seq = 3`);
    await cluster.query(`UPDATE ${log} SET segment = '\\x00ff'::bytea WHERE session_id = 'garbage' AND first_seq = 3`);
    await cluster.query(`UPDATE ${log} SET epoch = 5 WHERE session_id = 'epochs' AND first_seq = 1`);
    await cluster.query(`UPDATE ${log} SET segment = $1 WHERE session_id = 'backwards' AND first_seq = 3`, [encodeSegment([{ ...relays(3, 3)[0]!, time: 5 }])]);
    await cluster.query(`UPDATE ${cluster.table("heads")} SET last_seq = 9 WHERE session_id = 'head'`);
    await cluster.query(`DELETE FROM ${cluster.table("sessions")} WHERE session_id = 'nometa'`);

    const { problems } = await checkClusterLogs(cluster.admin, cluster.prefix);
    const prefix = cluster.prefix;
    const expected: [string, RegExp][] = [
      ["gap", new RegExp(`${prefix}log/gap/4: the log jumps from seq 2 to 4`)],
      ["garbage", new RegExp(`${prefix}log/garbage/3: it is not a log segment`)],
      ["epochs", new RegExp(`${prefix}log/epochs/1: its epoch 5 is past the head's 1`)],
      ["epochs", new RegExp(`${prefix}log/epochs/3: its epoch 1 is below the previous row's 5`)],
      ["backwards", new RegExp(`${prefix}log/backwards/3: time goes backwards at seq 3`)],
      ["head", new RegExp(`${prefix}heads/head: last_seq is 9 but the log ends at seq 4`)],
      ["nometa", new RegExp(`${prefix}sessions/nometa: the session has a head row but no sessions row`)],
    ];
    for (const [id, pattern] of expected) expect(problems.filter((p) => p.startsWith(`session ${id}: `)).some((p) => pattern.test(p))).toBe(true);
    expect(problems).toHaveLength(expected.length);

    for (const id of ids) {
      const error = await b.claim(id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SessionDamagedError);
      expect(isDamaged(error)).toBe(true);
      expect((error as SessionDamagedError).sessionId).toBe(id);
      expect((error as Error).message).toContain(`DELETE FROM ${cluster.table("heads")} WHERE session_id = '${id}'`);
      await expect(b.load(id)).rejects.toBeInstanceOf(SessionDamagedError);
    }
    // A refused claim changed nothing: the sessions are still unowned at epoch 1.
    expect(await cluster.query(`SELECT DISTINCT owner, epoch::integer AS epoch FROM ${cluster.table("heads")}`)).toEqual([{ owner: null, epoch: 1 }]);
  });
});
