/**
 * A cluster of reflector nodes in memory, for the routing tests (cluster.link.test.ts): real
 * reflector cores on one shared store, each reached at its own ws:// URL through in-memory links,
 * plus the kinds of node a client meets in a cluster — one that redirects every Join elsewhere, a
 * dead one (refused) and a paused one (accepts, never answers) — and a drain that closes a node's
 * connections with `SessionMoved`. Every timer of clients and nodes runs on one ManualClock.
 */
import { CloseCode, MessageType, encodeServerMessage } from "@lockstep/protocol";
import { createMemoryStore } from "@lockstep/reflector";
import { ManualClock, createMemoryReflector, keepOpen, type MemoryLink, type MemoryReflector } from "@lockstep/test-support";
import { Session, View, type JoinOptions, type LockstepSession, type SocketFactory, type SocketLike } from "../src/index";
import { FakeSocket } from "./fake-socket";
import { sha256 } from "./int-helpers";
import { Room } from "./room-model";

/** Counts root views built per viewId: a resumed rejoin builds none. */
export class ClusterView extends View {
  static built = new Map<string, number>();
  constructor(model: Room) {
    super(model);
    ClusterView.built.set(this.viewId, (ClusterView.built.get(this.viewId) ?? 0) + 1);
  }
}

export type R = LockstepSession<Room, ClusterView>;
const base = { appId: "test.lockstep.cluster", password: "pw", model: Room, view: ClusterView, tps: 20, autoSleep: false };

/** One socket the factory made: where to, when (clock time), and what became of it. */
export interface Opened {
  readonly url: string;
  readonly at: number;
  readonly socket: SocketLike;
  /** The in-memory link, for a socket to a node. */
  readonly link: MemoryLink | undefined;
}

/** A node that answers a Join with a Redirect frame, then closes with `CloseCode.Redirect` (without a target: closes with `SessionMoved`). */
class RedirectingSocket extends FakeSocket {
  constructor(
    url: string,
    readonly target: () => string | undefined,
    readonly clock: ManualClock,
  ) {
    super(url);
  }

  override send(data: Uint8Array): void {
    super.send(data);
    if (this.sent.length !== 1 || this.sent[0]!.type !== MessageType.Join) return;
    this.clock.noteActivity();
    setImmediate(() => {
      this.clock.noteActivity();
      if (this.readyState !== 1) return;
      const target = this.target();
      if (target === undefined) return this.closed(CloseCode.SessionMoved, "SessionMoved");
      this.deliverBytes(encodeServerMessage({ type: MessageType.Redirect, url: target }));
      this.closed(CloseCode.Redirect, "Redirect");
    });
  }
}

/** Replaces an event handler property of `socket` so that the handler the client sets is wrapped. */
function intercept(socket: SocketLike, key: "onmessage" | "onclose", wrap: (h: (ev: any) => void) => (ev: any) => void): void {
  let handler: ((ev: any) => void) | null = null;
  Object.defineProperty(socket, key, {
    configurable: true,
    get: () => handler,
    set: (h: ((ev: any) => void) | null) => {
      handler = h && wrap(h);
    },
  });
}

export class Cluster {
  readonly clock = new ManualClock();
  readonly store = keepOpen(createMemoryStore());
  readonly nodes = new Map<string, MemoryReflector>();
  /** Redirecting nodes: their URL → the URL each Join is redirected to. */
  readonly redirectors = new Map<string, string>();
  /** Nodes that close every connection with SessionMoved right after its Join (the session moved on meanwhile). */
  readonly movers = new Set<string>();
  /** URLs where nobody listens: sockets fail to open. */
  readonly dead = new Set<string>();
  /** URLs of a paused node: sockets never open (nor fail). */
  readonly paused = new Set<string>();
  /** Every socket made, in order. */
  readonly opened: Opened[] = [];
  readonly #lastSeq = new WeakMap<R, number>();
  readonly #waiters: { n: number; resolve: () => void }[] = [];
  /** Nodes being drained: what their connections' close events wait for. */
  readonly #held = new Map<string, Array<() => void>>();

  /** Nodes at `urls`, all on the cluster's one store. */
  async start(urls: readonly string[], viewGraceMs = 10_000): Promise<void> {
    for (const url of urls) this.nodes.set(url, await createMemoryReflector({ clock: this.clock, reflector: { storage: this.store, viewGraceMs } }));
  }

  /** The URLs the client opened sockets to, in order. */
  get urls(): string[] {
    return this.opened.map((o) => o.url);
  }

  readonly factory: SocketFactory = (url) => {
    const made = this.#make(url);
    const socket = "client" in made ? made.client : made;
    this.opened.push({ url, at: this.clock.now(), socket, link: "client" in made ? made : undefined });
    for (const w of this.#waiters.filter((w) => this.opened.length >= w.n)) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve();
    }
    return socket;
  };

  #make(url: string): SocketLike | MemoryLink {
    const node = this.dead.has(url) ? undefined : this.nodes.get(url);
    const redirecting = !this.dead.has(url) && (this.redirectors.has(url) || this.movers.has(url));
    if (node === undefined) {
      const socket = redirecting ? new RedirectingSocket(url, () => this.redirectors.get(url), this.clock) : new FakeSocket(url);
      if (this.paused.has(url)) return socket;
      this.clock.noteActivity();
      setImmediate(() => {
        this.clock.noteActivity();
        if (socket.readyState !== 0) return;
        if (redirecting) socket.open();
        else socket.closed(1006); // nobody listens there
      });
      return socket;
    }
    const link = node.open({ url });
    const end = link.client;
    // A drained node's connections: the Error frame of its shutdown is not passed on, and the
    // close reaches the client as SessionMoved once the node is gone (see drain()).
    intercept(end, "onmessage", (h) => (ev: { data: unknown }) => {
      if (this.#held.has(url) && new Uint8Array(ev.data as ArrayBuffer)[1] === MessageType.Error) return;
      h(ev);
    });
    intercept(end, "onclose", (h) => (ev: { code: number; reason: string }) => {
      const held = this.#held.get(url);
      if (held) held.push(() => h({ code: CloseCode.SessionMoved, reason: "SessionMoved" }));
      else h(ev);
    });
    return link;
  }

  /**
   * Drains the node at `url`: it stops (storing everything), nobody listens there any more, and
   * only then do its clients see their connections close, with `SessionMoved`.
   */
  async drain(url: string): Promise<void> {
    const node = this.nodes.get(url);
    if (!node) throw new Error(`no node at ${url}`);
    this.#held.set(url, []);
    await node.close();
    this.nodes.delete(url);
    this.dead.add(url);
    const held = this.#held.get(url)!;
    this.#held.delete(url);
    for (const deliver of held) deliver();
  }

  /**
   * The node of a live connection sends a Redirect to `url` and closes with `CloseCode.Redirect`,
   * as a node does when the session's owner changed under a proxied connection.
   */
  redirectLive(o: Opened, url: string): void {
    if (!o.link) throw new Error(`${o.url} is not a node's connection`);
    o.socket.onmessage?.({ data: encodeServerMessage({ type: MessageType.Redirect, url }).slice().buffer });
    o.link.drop(CloseCode.Redirect);
  }

  /** Joins a client through `reflector` (joining needs no clock time, unless a backoff is on the way). */
  join(name: string, reflector: string | readonly string[], extra: Partial<JoinOptions<Room, ClusterView>> = {}): Promise<R> {
    const joining = Session.join({ ...base, name, reflector, socket: this.factory, timers: this.clock, ...extra } as JoinOptions<Room, ClusterView>) as Promise<R>;
    return joining.then((s) => {
      s.afterEntry((seq) => this.#lastSeq.set(s, seq));
      return s;
    });
  }

  /** The seq of the last entry `s` processed. */
  lastSeq(s: R): number {
    return this.#lastSeq.get(s) ?? 0;
  }

  /** Advances the clock until `promise` settles; returns what it resolved to. */
  async finish<T>(promise: Promise<T>, maxMs = 30_000): Promise<T> {
    let done = false;
    promise.then(
      () => (done = true),
      () => (done = true),
    );
    await this.clock.runUntil(() => done, { maxMs, stepMs: 50 });
    return promise;
  }

  /** `from` writes `line`; every session in `all` applies it as the same entry, with the same state after it. */
  async write(from: R, line: string, all: readonly R[]): Promise<void> {
    const points = all.map(
      (s) =>
        new Promise<{ seq: number; hash: string }>((resolve) => {
          const stop = s.afterEntry((seq) => {
            if (!s.model.lines.includes(line)) return;
            stop();
            resolve({ seq, hash: sha256(s.stateBytes()) });
          });
        }),
    );
    from.view.publish("room", "write", line);
    const reached = await this.finish(Promise.all(points), 10_000);
    expect(new Set(reached.map((r) => r.seq)).size).toBe(1);
    expect(new Set(reached.map((r) => r.hash)).size).toBe(1);
  }

  /** Resolves once the factory has made `n` sockets (and the work that followed settled). */
  async whenOpened(n: number): Promise<void> {
    if (this.opened.length < n) await new Promise<void>((resolve) => this.#waiters.push({ n, resolve }));
    await this.clock.settle();
  }

  /** Every session is live, at the same entry, with identical state. */
  async expectSame(sessions: readonly R[]): Promise<void> {
    await this.clock.runUntil(() => sessions.every((s) => s.status === "connected") && new Set(sessions.map((s) => this.lastSeq(s))).size === 1, { maxMs: 10_000, stepMs: 50 });
    const hashes = await Promise.all(sessions.map((s) => s.stateHash()));
    expect(new Set(hashes).size).toBe(1);
  }

  async end(sessions: readonly R[]): Promise<void> {
    await this.finish(Promise.all(sessions.map((s) => s.leave())));
    for (const node of this.nodes.values()) await node.close();
    this.nodes.clear();
  }
}
