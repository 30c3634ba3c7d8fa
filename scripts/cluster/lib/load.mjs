// The load of a cluster test: sessions of raw wire clients (and of real replicas), each client
// given every node's URL and started at a chosen node, publishing at a steady rate.
import { randomBytes } from "node:crypto";
import { newSessionKeys } from "../../bench/lib/wire.mjs";
import { RealClient } from "./replicas.mjs";
import { WireClient } from "./wire-client.mjs";
import { now } from "./time.mjs";

/** The sessions and clients of one run. */
export class Load {
  constructor(cluster, { rate = 8, realRate = 5, silenceMs = 3500, snapshotBytes = 0 } = {}) {
    this.cluster = cluster;
    Object.assign(this, { rate, realRate, silenceMs, snapshotBytes });
    this.groups = [];
    this.#tag = 0;
    this.nodeName = (url) => cluster.nodeOf(url)?.name ?? url;
  }

  #tag;

  #wire(keys, label, startIndex, extra = {}) {
    return new WireClient({ urls: this.cluster.urls, keys, label, tag: ++this.#tag, nodeName: this.nodeName, rate: this.rate, silenceMs: this.silenceMs, startIndex, snapshotBytes: this.snapshotBytes, ...extra });
  }

  /**
   * A new session of `clients` raw clients: the first creates it on node `ownerIndex` (so it owns
   * it), the others join through random nodes (redirected to the owner).
   */
  async addRaw(clients, ownerIndex, { snapshots = false } = {}) {
    const keys = newSessionKeys();
    const n = this.groups.length + 1;
    const group = { kind: "raw", n, sessionId: keys.sessionId, keys, clients: [] };
    this.groups.push(group);
    const label = (i) => `s${n}.c${i + 1}`;
    const extra = snapshots ? {} : { snapshotBytes: 0 };
    group.clients.push(this.#wire(keys, label(0), ownerIndex, extra));
    await group.clients[0].start();
    for (let i = 1; i < clients; i++) group.clients.push(this.#wire(keys, label(i), Math.floor(Math.random() * this.cluster.size), extra));
    await Promise.all(group.clients.slice(1).map((c) => c.start()));
    return group;
  }

  /** A new session of real replicas: the first creates it on node `ownerIndex`, the others start at random nodes. */
  async addReal(clients, ownerIndex) {
    const n = this.groups.length + 1;
    const name = `faults-${randomBytes(6).toString("hex")}`;
    const group = { kind: "real", n, sessionId: undefined, clients: [] };
    this.groups.push(group);
    const make = (i, startIndex) => new RealClient({ urls: this.cluster.urls, name, label: `s${n}.r${i + 1}`, nodeName: this.nodeName, startIndex, rate: this.realRate });
    group.clients.push(await make(0, ownerIndex).start());
    group.sessionId = group.clients[0].record.sessionId;
    const rest = await Promise.all(Array.from({ length: clients - 1 }, (_, i) => make(i + 1, Math.floor(Math.random() * this.cluster.size)).start()));
    group.clients.push(...rest);
    return group;
  }

  /**
   * A new session whose first joins arrive at once on every node (one raw client per node, all
   * started together): exactly one of them may create it.
   */
  async addSimultaneous({ snapshots = false } = {}) {
    const keys = newSessionKeys();
    const n = this.groups.length + 1;
    const group = { kind: "raw", n, sessionId: keys.sessionId, keys, clients: [], simultaneous: true };
    this.groups.push(group);
    for (let i = 0; i < this.cluster.size; i++) group.clients.push(this.#wire(keys, `s${n}.j${i + 1}`, i, snapshots ? {} : { snapshotBytes: 0 }));
    await Promise.all(group.clients.map((c) => c.start()));
    return group;
  }

  /** A listener joined to `group`'s session directly at `url` (which should own it); see WireClient's witness. */
  async addWitness(group, url) {
    const index = this.cluster.urls.indexOf(url);
    const w = this.#wire(group.keys, `s${group.n}.w`, index, { witness: true, snapshotBytes: 0 });
    await w.start();
    (group.witnesses ??= []).push(w);
    return w;
  }

  /** Every client (witnesses not included). */
  get clients() {
    return this.groups.flatMap((g) => g.clients);
  }

  /** The clients that have not left. */
  get active() {
    return this.clients.filter((c) => !c.stopped);
  }

  /** Every client publishes. */
  publish() {
    for (const c of this.active) c.publish();
  }

  /** The clients of `groups` leave (their records stay for the verdict). */
  async retire(groups) {
    await Promise.all(groups.flatMap((g) => g.clients.map((c) => c.stop().catch(() => undefined))));
  }

  quiet() {
    for (const c of this.clients) c.quiet();
  }

  /** Whether client `c` is joined now and received an entry since `since` (and within the last `freshMs`). */
  static isLive(c, since = -Infinity, freshMs = 1500) {
    const conn = c.record.current;
    if (conn === undefined || conn.syncAt === undefined || conn.closedAt !== undefined) return false;
    const last = c.record.lastEntryAt ?? -Infinity;
    return last >= since && now() - last <= freshMs;
  }

  /** The clients that are not live (see isLive). */
  notLive(since) {
    return this.active.filter((c) => !Load.isLive(c, since));
  }

  /** Leaves every client (and witness). */
  async stop() {
    const all = [...this.clients, ...this.groups.flatMap((g) => g.witnesses ?? [])];
    await Promise.all(all.map((c) => c.stop().catch(() => undefined)));
  }

  /** Drops every socket at once (teardown after a failure). */
  terminate() {
    for (const g of this.groups) {
      for (const c of [...g.clients, ...(g.witnesses ?? [])]) {
        if (c.terminate) c.terminate();
        else c.quiet();
      }
    }
  }
}
