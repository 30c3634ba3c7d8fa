import { every, type TimerHandle, type Timers } from "@lockstep/protocol";

/** Delay before the first reconnection attempt, in ms. */
export const FIRST_RETRY_MS = 250;
/** The longest wait between reconnection attempts, in ms. */
export const MAX_RETRY_MS = 10_000;

/**
 * Exponential backoff with jitter for reconnection attempts: 250 ms, 500 ms, 1 s … up to 10 s,
 * each ±25 %, so a restarted reflector is not hit by every client at the same instant.
 */
export class Backoff {
  #attempt = 0;
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** Attempts made since the last success. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The wait before the next attempt, in ms. */
  next(): number {
    const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.#attempt);
    this.#attempt++;
    return Math.round(base * (0.75 + this.#random() * 0.5));
  }

  /** A connection worked: start again from the shortest wait. */
  reset(): void {
    this.#attempt = 0;
  }
}

/** Default `autoSleep`: seconds a tab stays hidden before its session disconnects. */
export const DEFAULT_AUTO_SLEEP_S = 10;

interface VisibilityDocument {
  readonly visibilityState?: string;
  addEventListener(type: "visibilitychange", listener: () => void): void;
  removeEventListener(type: "visibilitychange", listener: () => void): void;
}

/**
 * Puts a session to sleep when its page stays hidden for `seconds` and wakes it when the page is
 * visible again. A hidden tab gets no animation frames, so it would only pile up events; asleep,
 * it costs the reflector and the other users nothing. Returns a function that stops watching.
 */
export function watchVisibility(timers: Timers, seconds: number, sleep: () => void, wake: () => void): () => void {
  const doc = (globalThis as { document?: VisibilityDocument }).document;
  if (!doc || typeof doc.addEventListener !== "function" || !(seconds > 0)) return () => {};
  let timer: TimerHandle | undefined;
  const onChange = (): void => {
    if (timer !== undefined) timers.clearTimeout(timer);
    timer = undefined;
    if (doc.visibilityState === "hidden") timer = timers.setTimeout(sleep, seconds * 1000);
    else wake();
  };
  doc.addEventListener("visibilitychange", onChange);
  if (doc.visibilityState === "hidden") onChange();
  return () => {
    if (timer !== undefined) timers.clearTimeout(timer);
    doc.removeEventListener("visibilitychange", onChange);
  };
}

interface PageWindow {
  addEventListener(type: "pagehide" | "pageshow", listener: (event: { readonly persisted?: boolean }) => void): void;
  removeEventListener(type: "pagehide" | "pageshow", listener: (event: { readonly persisted?: boolean }) => void): void;
}

/**
 * Calls `hide` when the page is being unloaded (or put in the back/forward cache): the session
 * says goodbye then, so the others see its view exit at once instead of after the reflector's
 * grace period for lost connections. Returns a function that stops watching.
 */
export function watchPageHide(hide: () => void, restored: () => void): () => void {
  const win = globalThis as Partial<PageWindow> & { document?: unknown };
  if (win.document === undefined || typeof win.addEventListener !== "function" || typeof win.removeEventListener !== "function") return () => {};
  const onHide = (): void => hide();
  // Back from the back/forward cache: the page is live again and reconnects.
  const onShow = (event: { readonly persisted?: boolean }): void => {
    if (event.persisted === true) restored();
  };
  win.addEventListener("pagehide", onHide);
  win.addEventListener("pageshow", onShow);
  return () => {
    win.removeEventListener!("pagehide", onHide);
    win.removeEventListener!("pageshow", onShow);
  };
}

/** How long without any frame from the reflector counts as a dead connection, at `tps` ticks/s. */
export function silenceLimitMs(tps: number): number {
  // Idle sessions get a tick every 1000/tps ms; a few missed ticks are scheduling noise.
  return Math.max(5000, 10 * (1000 / tps));
}

/**
 * Calls `dead()` when `lastHeard()` is older than `limitMs`: a connection that silently died (a
 * laptop lid, a changed network) often never delivers a close event. Returns a stop function.
 */
export function startWatchdog(timers: Timers, lastHeard: () => number, limitMs: number, dead: () => void): () => void {
  const interval = Math.min(1000, limitMs / 2);
  let last = timers.now();
  return every(timers, interval, () => {
    const now = timers.now();
    // A check that runs far too late means this thread was stalled, and what the reflector sent
    // meanwhile may be queued right behind it: judge silence at the next check, not now.
    const stalled = now - last > interval + limitMs / 2;
    last = now;
    if (!stalled && now - lastHeard() > limitMs) dead();
  }, { unref: true });
}

/**
 * What a {@link Rejoiner} reports to its session controller, which decides what each one means
 * for the session's state. Called from timers and page events: must not throw.
 */
export interface RejoinerEvents {
  /** A backoff delay passed: time for the next rejoin attempt. */
  rejoin(): void;
  /** Nothing was heard from the reflector for too long; `reason` says for how long. */
  silent(reason: string): void;
  /** The page stayed hidden for `autoSleep` seconds. */
  sleep(): void;
  /** The page is visible again. */
  wake(): void;
  /** The page is being unloaded. */
  pageHidden(): void;
}

/** How a {@link Rejoiner} is timed. */
export interface RejoinerOptions {
  readonly timers: Timers;
  /** The session's ticks per second: an idle connection hears a tick this often. */
  readonly tps: number;
  /** Seconds a hidden page stays connected (0: never sleeps). */
  readonly autoSleep: number;
  /** Jitter of the backoff (default `Math.random`; tests pass a seeded one). */
  readonly random?: () => number;
}

/**
 * The clocks that keep a session connected: a watchdog that notices a connection gone silent,
 * rejoin attempts spaced by exponential backoff, and the page-visibility watch that puts a hidden
 * session to sleep and wakes it. It decides *when*; the controller, sole owner of the session's
 * state, decides what happens then.
 */
export class Rejoiner {
  readonly #options: RejoinerOptions;
  readonly #events: RejoinerEvents;
  readonly #backoff: Backoff;
  #timer: TimerHandle | undefined;
  #stopWatchdog: (() => void) | undefined;
  #stopSleepWatch: (() => void) | undefined;
  #stopPageWatch: (() => void) | undefined;
  #lastHeard = 0;
  #sleepWanted = false;

  constructor(options: RejoinerOptions, events: RejoinerEvents) {
    this.#options = options;
    this.#events = events;
    this.#backoff = new Backoff(options.random);
  }

  /** Rejoin attempts scheduled since the last successful join (or wake-up). */
  get attempts(): number {
    return this.#backoff.attempts;
  }

  /**
   * Whether the page is still hidden since it last asked to sleep. Saving before sleep takes a
   * while; a page visible again by then must stay awake, and its wake-up came too early to count.
   */
  get sleepWanted(): boolean {
    return this.#sleepWanted;
  }

  /** A socket opened: silence counts from now on. */
  connected(): void {
    const { timers, tps } = this.#options;
    this.#lastHeard = timers.now();
    this.#stopWatchdog?.();
    const limit = silenceLimitMs(tps);
    this.#stopWatchdog = startWatchdog(timers, () => this.#lastHeard, limit, () => {
      this.#events.silent(`nothing heard from the reflector for ${Math.round(limit / 1000)} s`);
    });
  }

  /** A frame arrived from the reflector. */
  heard(): void {
    this.#lastHeard = this.#options.timers.now();
  }

  /** The socket is gone (closed, or closed for sleep): silence means nothing until the next one. */
  disconnected(): void {
    this.#stopWatchdog?.();
  }

  /** The session (re)joined: the next loss starts from the shortest wait; hidden pages sleep. */
  joined(): void {
    this.#backoff.reset();
    this.#stopPageWatch ??= watchPageHide(
      () => this.#events.pageHidden(),
      () => {
        this.#sleepWanted = false;
        this.#events.wake();
      },
    );
    this.#stopSleepWatch ??= watchVisibility(
      this.#options.timers,
      this.#options.autoSleep,
      () => {
        this.#sleepWanted = true;
        this.#events.sleep();
      },
      () => {
        this.#sleepWanted = false;
        this.#events.wake();
      },
    );
  }

  /** Schedules a rejoin attempt after the next backoff delay, unless one is already scheduled. */
  retry(): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.#options.timers.setTimeout(() => {
      this.#timer = undefined;
      this.#events.rejoin();
    }, this.#backoff.next());
  }

  /** The page woke up and rejoins at once: should that fail, retry from the shortest wait. */
  woke(): void {
    this.#backoff.reset();
  }

  /** The session is over: stops every timer and the visibility watch. */
  stop(): void {
    this.#stopWatchdog?.();
    this.#stopSleepWatch?.();
    this.#stopSleepWatch = undefined;
    this.#stopPageWatch?.();
    this.#stopPageWatch = undefined;
    if (this.#timer !== undefined) this.#options.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
