/**
 * Seeded multi-client convergence fuzz: real clients joined to a real reflector core over the
 * in-memory link, all time on one manual clock. Each run draws a script of publishes, late joins,
 * leaves, lost connections (clients rejoin by themselves), snapshots and time passing; at the end
 * every replica, and one more client joining from the latest snapshot, must hold identical state
 * (the hash of the serialized VM) at the same seq. The seed is printed (`LOCKSTEP_TEST_SEED`
 * replays a run); `LOCKSTEP_FUZZ_RUNS` sets how many runs (default 200).
 */
import { MessageType, decodeServerMessage, type SyncMessage } from "@lockstep/protocol";
import { Model, Session, type LockstepSession, View } from "@lockstep/client";
import { ManualClock, createMemoryReflector, seedHint, testRng, type MemoryLink, type MemoryReflector, type Rng } from "@lockstep/test-support";

const RUNS = Number(process.env.LOCKSTEP_FUZZ_RUNS ?? 200);
const MAX_CLIENTS = 4;
const STEPS = 24;

/** Replicated state that depends on everything: order of events, model time, futures, the session PRNG and membership. */
class Board extends Model {
  cells: number[] = [];
  members: string[] = [];
  ticks = 0;
  digest = 0;

  override init(): void {
    this.cells = Array.from({ length: 8 }, () => 0);
    this.subscribe("board", "set", this.set);
    this.subscribe("board", "burst", this.burst);
    this.subscribe(this.sessionId, "view-join", this.joined);
    this.subscribe(this.sessionId, "view-exit", this.exited);
    this.future(40).tick();
  }

  set(data: { i: number; v: number }): void {
    const i = data.i % this.cells.length;
    this.cells[i] = (this.cells[i]! * 31 + data.v + Math.floor(this.random() * 1000)) % 1_000_003;
    this.mix(data.v);
  }

  burst(n: number): void {
    for (let k = 1; k <= n; k++) this.future(k * 7).step(k);
  }

  step(k: number): void {
    this.cells[k % this.cells.length]! ^= k;
    this.mix(k);
  }

  tick(): void {
    this.ticks++;
    if (this.random() < 0.3) this.cells[this.ticks % this.cells.length]!++;
    this.mix(this.now());
    this.future(40 + Math.floor(this.random() * 60)).tick();
  }

  joined(viewId: string): void {
    this.members.push(viewId);
  }

  exited(viewId: string): void {
    this.members = this.members.filter((m) => m !== viewId);
  }

  mix(n: number): void {
    this.digest = (Math.imul(this.digest, 16777619) ^ n) >>> 0;
  }
}
Board.register("Convergence.Board");

interface Client {
  readonly session: LockstepSession<Board>;
  lastSeq: number;
  links: MemoryLink[];
}

const trace = process.env.LOCKSTEP_FUZZ_TRACE ? (msg: string) => process.stderr.write(`${msg}\n`) : () => undefined;
/** What the runs exercised, summed: checked at the end so the fuzz cannot quietly test nothing. */
const coverage = { runs: 0, joins: 0, leaves: 0, drops: 0, publishes: 0, snapshotBoots: 0, entries: 0 };

/** The reflector's grace period for a view whose connection dropped (short, so runs stay quick). */
const GRACE_MS = 1000;

async function run(index: number): Promise<void> {
  const rng: Rng = testRng(`convergence #${index}`);
  const clock = new ManualClock();
  const mem: MemoryReflector = await createMemoryReflector({
    clock,
    reflector: { snapshots: { everyMessages: 4 + rng.int(30), everyMs: 200 + rng.int(3000) }, viewGraceMs: GRACE_MS },
  });
  const clients: Client[] = [];
  const where = () => `run ${index} (${seedHint()}) at ${clock.now()} ms`;

  const join = async (): Promise<void> => {
    const links: MemoryLink[] = [];
    const joining = (Session.join({
      appId: "test.convergence",
      name: "board",
      password: "fuzz",
      model: Board,
      view: View,
      reflector: mem.url,
      socket: (url) => {
        const link = mem.open({ url });
        links.push(link);
        // Count what the run exercised: Syncs that booted from a snapshot.
        const end = link.client as unknown as { onmessage: ((ev: { data: unknown }) => void) | null };
        let handler: ((ev: { data: unknown }) => void) | null = null;
        Object.defineProperty(end, "onmessage", {
          get: () => handler,
          set: (h: ((ev: { data: unknown }) => void) | null) => {
            handler = h && ((ev) => {
              const bytes = new Uint8Array(ev.data as ArrayBuffer);
              if (bytes[1] === MessageType.Sync && (decodeServerMessage(bytes) as SyncMessage).snapshot.length > 0) coverage.snapshotBoots++;
              h(ev);
            });
          },
        });
        return link.client;
      },
      timers: clock,
      step: "manual",
      autoSleep: false,
    })) as Promise<LockstepSession<Board>>;
    const session = await joining;
    const client: Client = { session, lastSeq: 0, links };
    coverage.joins++;
    session.afterEntry((seq) => (client.lastSeq = seq));
    clients.push(client);
  };
  const stepAll = (): void => {
    for (const c of clients) c.session.step();
  };
  const advance = async (ms: number): Promise<void> => {
    await clock.advance(ms);
    stepAll();
  };

  await join();
  for (let i = 0; i < STEPS; i++) {
    const roll = rng.next();
    const live = clients.length;
    trace(`run ${index} step ${i} roll ${roll.toFixed(2)} clients ${live} t=${clock.now()}`);
    if (roll < 0.35 && live > 0) {
      const c = rng.pick(clients);
      const event = rng.bool(0.8) ? { scope: "board", event: "set", data: { i: rng.int(64), v: rng.int(1000) } } : { scope: "board", event: "burst", data: 1 + rng.int(5) };
      c.session.view.publish(event.scope, event.event, event.data);
      coverage.publishes++;
    } else if (roll < 0.47 && live < MAX_CLIENTS) {
      await join();
    } else if (roll < 0.53 && live > 1) {
      const c = rng.pick(clients);
      clients.splice(clients.indexOf(c), 1);
      coverage.leaves++;
      const left = c.session.leave();
      await clock.runUntil(() => c.links.every((l) => l.clientState === "closed"), { maxMs: 10_000 });
      await left;
    } else if (roll < 0.62 && live > 0) {
      // A lost connection: the client keeps its views and rejoins after its backoff.
      const c = rng.pick(clients);
      coverage.drops += mem.drop((link) => c.links.includes(link));
    } else {
      await advance(1 + rng.int(rng.bool(0.2) ? 2000 : 200));
    }
    stepAll();
  }

  trace(`run ${index} quiesce`);
  // Quiesce: every client (re)connected and caught up to the same entry.
  const caughtUp = (): boolean => {
    stepAll();
    const connected = clients.every((c) => c.links.at(-1)?.clientState === "open");
    return connected && new Set(clients.map((c) => c.lastSeq)).size === 1;
  };
  await clock.runUntil(caughtUp, { maxMs: 60_000, stepMs: 50 });
  // A late joiner boots from the latest snapshot and the log after it.
  await join();
  await clock.runUntil(caughtUp, { maxMs: 60_000, stepMs: 50 });
  // Views whose connection dropped for good exit once the grace period is over.
  await advance(GRACE_MS + 100);
  await clock.runUntil(caughtUp, { maxMs: 60_000, stepMs: 50 });
  expect({ where: where(), seqs: new Set(clients.map((c) => c.lastSeq)).size }).toEqual({ where: where(), seqs: 1 });
  const hashes = await Promise.all(clients.map((c) => c.session.stateHash()));
  expect({ where: where(), distinct: new Set(hashes).size }).toEqual({ where: where(), distinct: 1 });
  const members = clients.map((c) => c.session.model.members.length);
  expect({ where: where(), members }).toEqual({ where: where(), members: clients.map(() => clients.length) });

  coverage.runs++;
  coverage.entries += clients[0]?.lastSeq ?? 0;
  const leaving = Promise.all(clients.map((c) => c.session.leave()));
  await clock.runUntil(() => mem.connections().length === 0, { maxMs: 10_000 });
  await leaving;
  await mem.close();
}

test(`${RUNS} seeded runs of clients publishing, joining, leaving and losing connections converge to identical state`, async () => {
  // Publishing while disconnected is dropped with a warning, and lost connections are logged: expected here.
  const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
  try {
    for (let i = 0; i < RUNS; i++) await run(i);
  } finally {
    warn.mockRestore();
  }
  console.log(`convergence fuzz (${seedHint()}): ${JSON.stringify(coverage)}`);
  // Every kind of step happened, and late joiners booted from snapshots, not only from the log.
  for (const key of ["joins", "leaves", "drops", "publishes", "snapshotBoots"] as const) expect({ [key]: coverage[key] > RUNS / 10 }).toEqual({ [key]: true });
}, 600_000);
