import { Backoff, silenceLimitMs, startWatchdog, watchVisibility } from "./reconnect";

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
}

/** How a {@link Rejoiner} is timed. */
export interface RejoinerOptions {
  readonly clock: () => number;
  /** The session's ticks per second: an idle connection hears a tick this often. */
  readonly tps: number;
  /** Seconds a hidden page stays connected (0: never sleeps). */
  readonly autoSleep: number;
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
  readonly #backoff = new Backoff();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopWatchdog: (() => void) | undefined;
  #stopSleepWatch: (() => void) | undefined;
  #lastHeard = 0;
  #sleepWanted = false;

  constructor(options: RejoinerOptions, events: RejoinerEvents) {
    this.#options = options;
    this.#events = events;
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
    const { clock, tps } = this.#options;
    this.#lastHeard = clock();
    this.#stopWatchdog?.();
    const limit = silenceLimitMs(tps);
    this.#stopWatchdog = startWatchdog(clock, () => this.#lastHeard, limit, () => {
      this.#events.silent(`nothing heard from the reflector for ${Math.round(limit / 1000)} s`);
    });
  }

  /** A frame arrived from the reflector. */
  heard(): void {
    this.#lastHeard = this.#options.clock();
  }

  /** The socket is gone (closed, or closed for sleep): silence means nothing until the next one. */
  disconnected(): void {
    this.#stopWatchdog?.();
  }

  /** The session (re)joined: the next loss starts from the shortest wait; hidden pages sleep. */
  joined(): void {
    this.#backoff.reset();
    this.#stopSleepWatch ??= watchVisibility(
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
    this.#timer = setTimeout(() => {
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
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
