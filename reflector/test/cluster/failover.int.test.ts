/**
 * Two reflector nodes on a real PostgreSQL cluster store, two real client replicas publishing:
 * the owner's lease connection dies (as a killed process's would), the clients move to the other
 * node by themselves and continue the same stream; every item arrives exactly once, in each
 * publisher's order, and the replicas end identical.
 */
import { createServer } from "node:net";
import pg from "pg";
import { expectSame, hashesWhen, until } from "@lockstep/test-support";
import { silentLogger, startReflector, type Reflector } from "../../src/index";
import { createPostgresStore } from "../../src/storage/index";
import { checkClusterLogs } from "../../src/cluster/pg-cluster-audit";
import type { PgClusterStore } from "../../src/cluster/pg-cluster-store";
import { add, joinTally, type TallySession } from "../tally";
import { PG_MISSING, PG_URL, PgCluster } from "./pg-cluster-kit";

jest.setTimeout(30_000);

const maybe = PG_URL === "" ? test.skip : test;
if (PG_URL === "") test.skip(PG_MISSING, () => undefined);

let admin: pg.Pool;
let cluster: PgCluster;
const reflectors: Reflector[] = [];
const sessions: TallySession[] = [];
let warnings: jest.SpyInstance;

beforeEach(() => {
  if (PG_URL === "") return;
  admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
  cluster = new PgCluster(admin);
  // The clients say they are reconnecting: expected here.
  warnings = jest.spyOn(console, "warn").mockImplementation(() => undefined);
});

afterEach(async () => {
  if (PG_URL === "") return;
  warnings.mockRestore();
  await Promise.all(sessions.splice(0).map((s) => s.leave().catch(() => undefined)));
  await Promise.all(reflectors.splice(0).map((r) => r.close()));
  await cluster.close();
  await admin.query(`DROP TABLE IF EXISTS "${cluster.prefix}blobs"`);
  await admin.end();
});

/** A free loopback port (the node's URL must be known before it listens: it is its --node-url). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function node(): Promise<{ reflector: Reflector; store: PgClusterStore }> {
  const port = await freePort();
  const store = await cluster.node({ nodeUrl: `ws://127.0.0.1:${port}/` });
  const storage = await createPostgresStore({ connectionString: PG_URL, table: `${cluster.prefix}blobs` });
  const reflector = await startReflector({ port, host: "127.0.0.1", logger: silentLogger, storage, cluster: { store } });
  reflectors.push(reflector);
  return { reflector, store };
}

maybe("the owner's lease dies under load: clients move to the other node, nothing lost or doubled, replicas identical", async () => {
  const a = await node();
  const b = await node();
  const both = `${a.reflector.url},${b.reflector.url}`;
  const first = await joinTally(both, "failover");
  // The second client lists B first: B redirects it to A, the owner.
  const second = await joinTally(`${b.reflector.url},${a.reflector.url}`, "failover");
  sessions.push(first, second);
  const heads = async (): Promise<{ owner: string; epoch: string }[]> => cluster.query(`SELECT owner, epoch FROM ${cluster.table("heads")}`);
  expect(await heads()).toEqual([{ owner: a.store.node.nodeId, epoch: "1" }]);

  const PER_CLIENT = 100;
  let published = 0;
  const publisher = setInterval(() => {
    if (published === PER_CLIENT) return clearInterval(publisher);
    add(first, `a${published}`);
    add(second, `b${published}`);
    published++;
  }, 2);
  await until(first, () => first.model.items.length >= 40);
  await cluster.killLockConnection(a.store);

  const total = 2 * PER_CLIENT;
  const points = hashesWhen([first, second], (s) => s.model.items.length === total);
  expectSame(await points);
  const items = first.model.items;
  expect(new Set(items).size).toBe(total);
  for (const who of ["a", "b"]) {
    expect(items.filter((i) => i.startsWith(who)).map((i) => Number(i.slice(1)))).toEqual([...Array(PER_CLIENT).keys()]);
  }
  expect(second.model.items).toEqual(items);
  // B took the session over (A's lock was gone), at a higher epoch; A's later writes were fenced.
  const [head] = await heads();
  expect(head?.owner).toBe(b.store.node.nodeId);
  expect(Number(head?.epoch)).toBeGreaterThan(1);
  const audit = await checkClusterLogs(admin, cluster.prefix);
  expect(audit.problems).toEqual([]);
});
