import type { SocketFactory } from "@lockstep/client";
import { createMemoryStore, createReflectorCore, silentLogger, type ReflectorCore, type ReflectorOptions } from "@lockstep/reflector";
import { Link, realSetImmediate, type MemoryLink } from "./link-ends";
import { ManualClock } from "./manual-clock";

export type { LinkState, MemoryLink } from "./link-ends";

/** Options of {@link createMemoryReflector}. */
export interface MemoryReflectorOptions {
  /** The clock every reflector timer runs on (share it with the clients). Default: a new one at 0. */
  readonly clock?: ManualClock;
  /**
   * Reflector options. Defaults here: `silentLogger`, the memory store; `timers` is always the
   * clock (a `clock` option would override only its time stamps).
   */
  readonly reflector?: Partial<ReflectorOptions>;
  /** The client address the reflector sees for sockets made by `socket`. Default `"127.0.0.1"`. */
  readonly address?: string;
}

/** A reflector core in this process, reached through in-memory links instead of WebSockets. */
export interface MemoryReflector {
  readonly clock: ManualClock;
  readonly core: ReflectorCore;
  /** A URL to hand clients (any URL works: the factory ignores it). */
  readonly url: string;
  /** Socket factory for `Session.join({ socket, timers: clock, reflector: url })`. */
  readonly socket: SocketFactory;
  /** A factory whose sockets come from `address` (per-address caps and penalties). */
  socketFrom(address: string): SocketFactory;
  /**
   * Opens a link directly (raw protocol tests use `link.client`). A connection the core refuses
   * (its caps, a penalty, shutting down) closes with 1006 and the reason `"HTTP <status>: <why>"`.
   */
  open(options?: { readonly address?: string; readonly url?: string }): MemoryLink;
  /** Links whose two ends are not both closed yet, oldest first. */
  connections(): MemoryLink[];
  /** Cuts off the matching links as a lost connection would: both ends see a close with `code` (default 1006). Returns how many. */
  drop(predicate: (link: MemoryLink) => boolean, code?: number): number;
  /** {@link drop} for every link. */
  dropAll(code?: number): number;
  /** Closes the core (clients are told ServerShutdown), advancing the clock through its grace period if needed. */
  close(): Promise<void>;
}

let memoryReflectors = 1;

/**
 * Starts a reflector core on a {@link ManualClock} and returns in-memory links to it: real clients
 * (`Session.join({ socket: mem.socket, timers: mem.clock, reflector: mem.url })`) or raw protocol
 * tests (`mem.open().client`) talk to the real core in this process, and nothing happens on the
 * reflector's side until the clock is advanced. Frames are copied and delivered in order, each
 * direction asynchronously, like a socket's; `onopen` fires in a later turn of the event loop.
 */
export async function createMemoryReflector(options: MemoryReflectorOptions = {}): Promise<MemoryReflector> {
  const clock = options.clock ?? new ManualClock();
  const given = options.reflector ?? {};
  const core = await createReflectorCore({
    logger: silentLogger,
    ...(given.storage === undefined && given.dataDir === undefined ? { storage: createMemoryStore() } : {}),
    ...given,
    timers: clock,
  });
  const links = new Set<Link>();
  let nextId = 1;
  const defaultAddress = options.address ?? "127.0.0.1";
  const url = `mem://reflector-${memoryReflectors++}/`;
  const open = (opts: { readonly address?: string; readonly url?: string } = {}): MemoryLink => {
    const link = new Link(nextId++, opts.url ?? url, opts.address ?? defaultAddress, clock, core, () => links.delete(link));
    links.add(link);
    link.connect();
    return link;
  };
  const socketFrom = (address: string): SocketFactory => (target) => open({ address, url: target }).client;
  const drop = (predicate: (link: MemoryLink) => boolean, code?: number): number => {
    let n = 0;
    for (const link of [...links]) {
      if (!predicate(link)) continue;
      link.drop(code);
      n++;
    }
    return n;
  };
  return Object.freeze({
    clock,
    core,
    url,
    socket: socketFrom(defaultAddress),
    socketFrom,
    open,
    connections: () => [...links],
    drop,
    dropAll: (code?: number) => drop(() => true, code),
    close: async () => {
      let done = false;
      const closed = core.close().finally(() => (done = true));
      const settled = closed.catch(() => undefined);
      for (let waited = 0; !done; ) {
        await clock.settle();
        if (done) break;
        const next = clock.nextAt;
        if (next === undefined) {
          // Nothing scheduled: the core waits for real I/O (a filesystem store).
          await Promise.race([settled, new Promise((resolve) => realSetImmediate(resolve))]);
          continue;
        }
        waited += next - clock.now();
        if (waited > 60_000) throw new Error(`the memory reflector did not close within 60 s of clock time (now() = ${clock.now()})`);
        await clock.advance(Math.max(0, next - clock.now()));
      }
      await closed;
    },
  });
}
