import { MAX_APP_NAME_BYTES, MAX_APP_TOKEN_BYTES, realTimers, type Timers } from "@lockstep/protocol";
import { defaultSocketFactory, type SocketFactory } from "./session/connection";
import { SessionController, type JoinParameters, type SessionStatus } from "./session/controller";
import type { AppToken } from "./session/join";
import { UsageError } from "./errors";
import { hashBytes } from "./kernel/identity";
import { Model } from "./kernel/model";
import { registry } from "./kernel/registry";
import { View } from "./view/view";
import { DEFAULT_AUTO_SLEEP_S } from "./session/rejoin";
import { createBrowserUi } from "./app/browser-ui";
import type { SessionStatsSource, SessionUi } from "./session/ui";
import { DEFAULT_OFFLINE_QUEUE, type OfflineQueueLimits } from "./session/publisher";
import { App } from "./app/app";
import { sessionNames, withUrlOptions } from "./session/join-defaults";
import { parseTickRate } from "./session/tps";
import { debugFlags } from "./session/debug";
import { OFFLINE_REFLECTOR_URL, offlineSocketFactory } from "./session/offline";
import { reflectorFromUrl, reflectorList, reflectorOption } from "./session/reflectors";
import { tracedSockets } from "./session/trace-socket";
import { debugLogOf } from "./kernel/debug-log";
import { Data, httpDataAccess, offlineDataAccess, type DataAccess } from "./data/index";
import { deriveSessionKeys } from "./session/crypto";

/** Where `Session.join` connects when no `reflector` is given. */
export const DEFAULT_REFLECTOR_URL = "ws://127.0.0.1:8787/";

/** Options of {@link Session.join} (Multisynq-compatible, plus a few Lockstep extras). */
export interface JoinOptions<M extends Model = Model, V extends View = View> {
  /** Your app's id, e.g. "com.example.chat" (letters, digits, ".", "_", "-"). Left out (JavaScript apps), it is Croquet's `"no.appId"`, with a warning. */
  appId: string;
  /**
   * The session name: clients with the same appId, name, options and code share a session. Left
   * out, it is `App.autoSession()` (the page URL's `?q=`; in Node `--q=` on the command line, else
   * a new random name, announced on the console), as in Croquet.
   */
  name?: string | Promise<string>;
  /**
   * Session password. Everything the session says is encrypted with a key derived from it; it
   * never leaves this client. Left out together with `name`, it is `App.autoPassword()` (the URL's
   * `#pw=`; in Node `--pw=`); a name without a password is an error.
   */
  password?: string | Promise<string>;
  /**
   * Names of root model options to take from the page URL (`?level=3`; in Node `--level=3`), as in
   * Croquet: a value there overrides the one in `options`, and is part of the sessionId.
   */
  optionsFromUrl?: string[];
  /** Accepted for Multisynq compatibility; Lockstep needs no API key (see `token` for admission control). */
  apiKey?: string;
  /**
   * Lockstep extension: an app token, for reflectors that admit only clients the app's backend
   * vouches for (started with `appAuth`/`--auth-secret`): a JWT whose claims name this appId and
   * session name, or a function that returns (or resolves to) one. A function is called again
   * before every connection (each rejoin, each wake-up), so it can fetch a fresh token when the
   * last one expired; a string is sent as is every time. Without `token`, none is sent, and
   * reflectors that require one refuse the join with a `JoinError` (code 4013, TokenRejected).
   *
   * @example
   * ```ts
   * await Session.join({ ...options, token: async () => (await fetch("/lockstep-token")).text() });
   * ```
   */
  token?: AppToken;
  /**
   * Lockstep extension: what happens to events views publish while the session is not connected
   * (the reflector is unreachable, the page asleep). By default they are queued — at most 1,000
   * events and 1 MiB, `{ maxEvents, maxBytes }` to change that — and sent in order once it is
   * connected again; each is applied exactly once, including events whose first send was lost with
   * the connection. `false` drops them (with one console warning). One event can opt out:
   * `view.publish(scope, event, data, { offline: "drop" })`.
   */
  offline?: boolean | Partial<OfflineQueueLimits>;
  /** The root model class (registered). Left out (JavaScript apps), it is the Model class registered last, as in Croquet. */
  model: new () => M;
  /** The root view class; built with (rootModel, viewOptions) once this client has joined. */
  view?: new (model: M, viewOptions?: any) => V;
  /** Passed to the root model's `init`; part of the session identity. */
  options?: Record<string, unknown>;
  /** Passed to the root view's constructor. */
  viewOptions?: unknown;
  /** Data every replica receives with this client's view-join (`{ viewId, viewData }`). */
  viewData?: unknown;
  /**
   * Reflector ticks per second while idle (default 20; values outside 1–60 are clamped), or
   * `"<ticks>x<multiplier>"` as in Croquet: `"10x3"` has the reflector tick 10 times a second and
   * models step 3 times per tick (futures run spread over the tick period, not in one burst), at
   * the cost of up to 2/3 of a tick of added latency. `options.tps`, if set, takes precedence.
   */
  tps?: number | string;
  /** "auto" (default): frames run by requestAnimationFrame (or a timer in Node). "manual": call `session.step()`. */
  step?: "auto" | "manual";
  /**
   * Accepted for Multisynq compatibility. A Lockstep session that loses its connection keeps its
   * view on screen and rejoins with backoff (250 ms, doubling up to 10 s) until it succeeds or
   * `leave()` is called; the root view is rebuilt from the rejoined state.
   */
  rejoinLimit?: number;
  /**
   * Seconds a hidden page (a background tab) stays connected before its session disconnects; it
   * rejoins when the page is visible again. `true` = 10 (the default), `false` or 0 = never sleep.
   */
  autoSleep?: number | boolean;
  /**
   * Debug flags (Multisynq's): a comma-separated string or an array of `"session"`, `"messages"`,
   * `"sends"`, `"snapshot"`, `"data"`, `"hashing"`, `"subscribe"`, `"publish"`, `"events"`,
   * `"classes"`, `"ticks"` (console output of each), `"write"` (a view writing model state throws)
   * and `"offline"` (no reflector: the session runs alone in this page). Also read from the URL
   * (`?debug=session,ticks`) after the option; `no` + a flag turns it off (`?debug=nosession`).
   */
  debug?: string | string[];
  /**
   * WebSocket URL of the reflector (default ws://127.0.0.1:8787/), or of several nodes of a cluster:
   * one string with the URLs separated by commas or whitespace, or an array of them. The first join
   * tries them in order; a redirect or a moved session is followed at once (PROTOCOL.md §17).
   */
  reflector?: string | readonly string[];
  /** Socket factory (tests, proxies); default: the browser WebSocket or the `ws` package. */
  socket?: SocketFactory;
  /** Local monotonic clock in ms (tests); default `timers.now`, i.e. `performance.now`. */
  clock?: () => number;
  /**
   * Lockstep extension: the local clock and timers every part of the session uses (backoff,
   * watchdog, saves, catching up, frames without `requestAnimationFrame`). Tests pass a manual
   * clock and advance it instead of sleeping; default `performance.now` and the global timers.
   */
  timers?: Timers;
  /** Called with the fraction (0–1) of the history replayed while joining ("catching up"). */
  progressReporter?: (progress: number) => void;
}

/** A joined session, as {@link Session.join} resolves it. */
export interface LockstepSession<M extends Model = Model, V extends View = View> {
  /** The sessionId: changes with any code, option or constant change. */
  readonly id: string;
  /** The persistentId: appId + name only. */
  readonly persistentId: string;
  /** Hash of the model code and Constants. */
  readonly versionId: string;
  /** This client's view id. */
  readonly viewId: string;
  /** The root model (read it; never write it from view code). */
  readonly model: M;
  /** The root view. */
  readonly view: V;
  /**
   * The Data API of this session (Croquet's `session.data`): `store(buffer, { keep, shareable })`
   * → a handle to keep in the model or send in an event, `fetch(handle)` → the bytes. Views reach
   * it as `this.session.data`.
   */
  readonly data: Data;
  /**
   * Lockstep extension: where the session stands — `"connecting"`, `"syncing"` (catching up),
   * `"connected"`, `"reconnecting"` (the connection was lost; input is queued meanwhile),
   * `"disconnected"` (asleep while the page is hidden) or `"ended"`. Views also get Multisynq's
   * `synced` event (`this.subscribe(this.sessionId, "synced", handler)`).
   */
  readonly status: SessionStatus;
  /** Lockstep extension: calls `listener(status)` on every change of {@link status}; returns a function that stops it. */
  on(event: "status", listener: (status: SessionStatus) => void): () => void;
  /**
   * Lockstep extension: calls `listener()` at the end of every frame (after the root view's
   * `update`) in which the replicated state may have changed — events or futures ran, or a rejoin
   * rebuilt the replica — and never in frames where no model code ran. For UI libraries that
   * re-read models themselves (the React bindings subscribe here). Returns a function that stops it.
   */
  on(event: "change", listener: () => void): () => void;
  /** Lockstep extension: the ids of the views in the session now, in the order they joined (as this replica has processed their view-join and view-exit). */
  readonly viewIds: readonly string[];
  /**
   * Lockstep extension: events this client's views published that its replica has not applied
   * yet — in flight, or queued while not connected (they are sent, in order, once it is).
   */
  readonly pendingEvents: number;
  /** Processes received events and runs one frame (for `step: "manual"`). */
  step(time?: number): void;
  /**
   * Leaves the session and detaches the root view. Persisted data not yet acknowledged (including
   * saves still waiting for their delay) is uploaded first, and the reflector's durable
   * acknowledgement awaited (at most 5 s).
   */
  leave(): Promise<void>;
  /**
   * Lockstep extension: uploads persisted data not yet acknowledged now (without waiting for the
   * save delay) and resolves once the reflector stored it durably. Call it before a page unloads.
   * Only the session's first view uploads persisted data: in any other client this resolves at
   * once (the first view saves the same data when it is due).
   */
  flushPersistence(): Promise<void>;
  /** The serialized replicated state now: identical on every replica at the same point of the stream. */
  stateBytes(): Uint8Array;
  /** SHA-256 (base64url) of {@link LockstepSession.stateBytes}. */
  stateHash(): Promise<string>;
  /** Calls `cb(seq)` right after each stream entry is processed; returns an unsubscribe function. */
  afterEntry(cb: (seq: number) => void): () => void;
}

class JoinedSession implements LockstepSession {
  readonly #controller: SessionController;
  readonly #params: JoinParameters;
  #data: Data | undefined;

  constructor(controller: SessionController, params: JoinParameters) {
    this.#controller = controller;
    this.#params = params;
  }

  get data(): Data {
    this.#data ??= new Data(once(() => dataAccess(this.#params, this.#controller.identity)), debugLogOf(this.#params.debug));
    return this.#data;
  }

  get id(): string {
    return this.#controller.identity.sessionId;
  }
  get persistentId(): string {
    return this.#controller.identity.persistentId;
  }
  get versionId(): string {
    return this.#controller.identity.versionId;
  }
  get viewId(): string {
    return this.#controller.viewId;
  }
  get model(): Model {
    const model = this.#controller.rootModel;
    if (model === undefined) throw new Error("the session has no root model");
    return model;
  }
  /** The root view: undefined only while a rejoin catches up (the new one is built once it has). */
  get view(): View {
    return this.#controller.rootView as View;
  }
  get pendingEvents(): number {
    return this.#controller.pendingEvents;
  }
  get status(): SessionStatus {
    return this.#controller.status.status;
  }
  get viewIds(): readonly string[] {
    return this.#controller.vm.viewIds;
  }
  on(event: "status", listener: (status: SessionStatus) => void): () => void;
  on(event: "change", listener: () => void): () => void;
  on(event: "status" | "change", listener: (status: SessionStatus) => void): () => void {
    if (event !== "status" && event !== "change") throw new UsageError(`session.on: unknown event ${JSON.stringify(event)} (there are "status" and "change")`);
    if (typeof listener !== "function") throw new UsageError(`session.on("${event}", listener): listener must be a function`);
    return event === "status" ? this.#controller.status.on(listener) : this.#controller.changes.on(listener as () => void);
  }
  step(time?: number): void {
    this.#controller.step(time);
  }
  leave(): Promise<void> {
    live.delete(this);
    return this.#controller.leave();
  }
  flushPersistence(): Promise<void> {
    return this.#controller.flushPersistence();
  }
  stateBytes(): Uint8Array {
    return this.#controller.stateBytes();
  }
  stateHash(): Promise<string> {
    return hashBytes(this.stateBytes());
  }
  afterEntry(cb: (seq: number) => void): () => void {
    return this.#controller.afterEntry(cb);
  }
}

/**
 * Where a session's Data API stores blobs, with its keys (derived again: the slow PBKDF2 step is
 * cached per runtime, so this costs only the fast subkey derivations).
 */
async function dataAccess(p: JoinParameters, identity: { readonly persistentId: string; readonly sessionId: string }): Promise<DataAccess> {
  const keys = await deriveSessionKeys(p.password, identity.persistentId, identity.sessionId);
  if (p.reflector === OFFLINE_REFLECTOR_URL) return offlineDataAccess(keys.wireSessionId, keys.persistMaster);
  return httpDataAccess({ reflector: reflectorList(p.reflector), wireSessionId: keys.wireSessionId, accessToken: keys.accessToken, persistMaster: keys.persistMaster });
}

/** `fn` called on first use only; a failure is not kept (the next call tries again). */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => {
    result ??= fn().catch((error: unknown) => {
      result = undefined;
      throw error;
    });
    return result;
  };
}

/** Sessions joined in this runtime and not yet left (for `Session.leave(id)`). */
const live = new Set<JoinedSession>();

const utf8 = new TextEncoder();

/** Checks the `token` option: the token is fetched (a function called) only when connecting. */
function parseToken(token: unknown, appId: string, name: string): AppToken | undefined {
  if (token === undefined) return undefined;
  if (typeof token === "string") {
    if (token.length === 0) throw new UsageError("Session.join: token must be a non-empty string (a JWT from your app's backend), a function returning one, or left out");
    if (utf8.encode(token).length > MAX_APP_TOKEN_BYTES) throw new UsageError(`Session.join: token is ${utf8.encode(token).length} bytes; reflectors accept at most ${MAX_APP_TOKEN_BYTES}`);
  } else if (typeof token !== "function") {
    throw new UsageError(`Session.join: token must be a string or a function returning one (or a promise of one), got ${typeof token}`);
  }
  // With a token, the Join names the appId and session name so the reflector can check its claims.
  for (const [what, value] of [["appId", appId], ["name", name]] as const) {
    const bytes = utf8.encode(value).length;
    if (bytes > MAX_APP_NAME_BYTES) throw new UsageError(`Session.join: with a token, ${what} may be at most ${MAX_APP_NAME_BYTES} bytes (UTF-8), got ${bytes}`);
  }
  return token as AppToken;
}

/** The timers a session runs on: `timers` (default the real ones), read through `clock` if one is given. */
function parseTimers(timers: Timers | undefined, clock: (() => number) | undefined): Timers {
  for (const [what, value, fns] of [["timers", timers, ["now", "setTimeout", "clearTimeout"]], ["clock", clock, []]] as const) {
    if (value === undefined) continue;
    if (what === "clock" ? typeof value !== "function" : typeof value !== "object" || value === null || fns.some((f) => typeof (value as unknown as Record<string, unknown>)[f] !== "function")) {
      throw new UsageError(`Session.join: ${what} must be ${what === "clock" ? "a function returning milliseconds" : "an object with now(), setTimeout() and clearTimeout()"}`);
    }
  }
  const t = timers ?? realTimers;
  if (clock === undefined) return t;
  return { now: clock, setTimeout: (fn, ms) => t.setTimeout(fn, ms), clearTimeout: (handle) => t.clearTimeout(handle) };
}

function parseAutoSleep(autoSleep: number | boolean | undefined): number {
  if (autoSleep === undefined || autoSleep === true) return DEFAULT_AUTO_SLEEP_S;
  if (autoSleep === false) return 0;
  if (typeof autoSleep !== "number" || !Number.isFinite(autoSleep) || autoSleep < 0) {
    throw new UsageError(`Session.join: autoSleep must be a number of seconds, true or false, got ${String(autoSleep)}`);
  }
  return autoSleep;
}

async function validate(options: JoinOptions<any, any>, ui: SessionUi | undefined): Promise<JoinParameters> {
  if (typeof options !== "object" || options === null) throw new UsageError("Session.join needs an options object");
  // Croquet's defaults: an app without an appId shares "no.appId"; the root model is the Model class registered last.
  const appId = options.appId ?? (warnOnce("no-appid", 'Session.join: no appId given, using "no.appId": pass appId (like "com.example.app") so that the sessions and persisted data of different apps never mix'), "no.appId");
  const model = options.model ?? lastRegisteredModel();
  const { name, password } = await sessionNames(options, App);
  if (typeof appId !== "string" || !/^[A-Za-z0-9._-]+$/.test(appId)) {
    throw new UsageError(`Session.join: appId must be a non-empty string of letters, digits, ".", "_" or "-" (like "com.example.app"), got ${JSON.stringify(appId)}`);
  }
  if (typeof name !== "string" || name.length === 0) throw new UsageError("Session.join: name must be a non-empty string (try App.autoSession())");
  if (typeof password !== "string" || password.length === 0) {
    throw new UsageError("Session.join: password must be a non-empty string (try App.autoPassword())");
  }
  if (typeof model !== "function" || !(model.prototype instanceof Model)) {
    throw new UsageError("Session.join: model must be a Model subclass");
  }
  if (registry.idOf(model) === undefined) {
    throw new UsageError(`Session.join: ${model.name} is not registered: call ${model.name}.register("${model.name}") after the class definition`);
  }
  const view = options.view ?? View;
  if (typeof view !== "function" || (view !== View && !(view.prototype instanceof View))) {
    throw new UsageError("Session.join: view must be a View subclass");
  }
  const step = options.step ?? "auto";
  if (step !== "auto" && step !== "manual") throw new UsageError(`Session.join: step must be "auto" or "manual", got ${JSON.stringify(step)}`);
  const debug = debugFlags(options.debug);
  const timers = parseTimers(options.timers, options.clock);
  if (typeof (options.options ?? {}) !== "object" || options.options === null) throw new UsageError("Session.join: options must be a plain object");
  const modelOptions = withUrlOptions(options.options ?? {}, options.optionsFromUrl);
  const rate = parseTickRate("tps" in modelOptions ? modelOptions.tps : options.tps);
  return {
    appId,
    name,
    password,
    model: model as JoinParameters["model"],
    view,
    options: modelOptions,
    viewOptions: options.viewOptions,
    viewData: options.viewData,
    tps: rate.tps,
    tickMultiplier: rate.multiplier,
    step,
    debug,
    // debug=offline: a reflector stand-in in this page, whatever reflector or socket was given.
    reflector: debug.has("offline") ? OFFLINE_REFLECTOR_URL : reflectorOption(reflectorFromUrl() ?? options.reflector ?? DEFAULT_REFLECTOR_URL),
    socket: tracedSockets(debug.has("offline") ? offlineSocketFactory(timers) : (options.socket ?? defaultSocketFactory), debugLogOf(debug)),
    timers,
    progressReporter: typeof options.progressReporter === "function" ? options.progressReporter : undefined,
    autoSleep: parseAutoSleep(options.autoSleep),
    ui,
    token: parseToken((options as { token?: unknown }).token, appId, name),
    offline: parseOffline(options.offline),
  };
}

function parseOffline(offline: JoinOptions["offline"]): OfflineQueueLimits | false {
  if (offline === undefined || offline === true) return DEFAULT_OFFLINE_QUEUE;
  if (offline === false) return false;
  if (typeof offline !== "object" || offline === null) throw new UsageError(`Session.join: offline must be false or { maxEvents, maxBytes }, got ${JSON.stringify(offline)}`);
  const limits = { ...DEFAULT_OFFLINE_QUEUE, ...offline };
  for (const key of ["maxEvents", "maxBytes"] as const) {
    const value = limits[key];
    if (!Number.isSafeInteger(value) || value < 0) throw new UsageError(`Session.join: offline.${key} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return Object.freeze(limits);
}

const warned = new Set<string>();
function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  console.warn(`[Lockstep] ${message}`);
}

function lastRegisteredModel(): JoinOptions["model"] | undefined {
  const models = registry.classes().filter(({ cls }) => cls.prototype instanceof Model);
  return models[models.length - 1]?.cls as JoinOptions["model"] | undefined;
}

/**
 * Croquet's first entry point, kept for old apps: `startSession(name, ModelRoot, ViewRoot,
 * options)` joins like `Session.join({ ...options, name, model: ModelRoot, view: ViewRoot })`
 * (and `startSession({ ... })` like `Session.join({ ... })`). It warns once that it is deprecated.
 * @deprecated Use {@link Session.join}.
 */
export function startSession<M extends Model, V extends View>(
  nameOrOptions: string | Promise<string> | JoinOptions<M, V>,
  model?: new () => M,
  view?: new (model: M, viewOptions?: any) => V,
  options: Partial<JoinOptions<M, V>> = {},
): Promise<LockstepSession<M, V>> {
  warnOnce("startSession", "startSession() is deprecated: use Session.join({ appId, name, password, model, view, ... })");
  if (typeof nameOrOptions === "object" && !(nameOrOptions instanceof Promise)) return Session.join(nameOrOptions);
  return Session.join({ ...options, name: nameOrOptions, model: model ?? options.model, view: view ?? options.view } as JoinOptions<M, V>);
}

/** The numbers the stats widget samples, read live from the controller (a rejoin's new replica included). */
function statsSource(controller: SessionController): SessionStatsSource {
  return {
    users: () => controller.vm.viewCount,
    backlog: () => Math.max(0, controller.realm.externalNow() - controller.vm.time),
    starvation: () => Math.max(0, controller.realm.extrapolatedNow() - controller.realm.externalNow()),
  };
}

/**
 * Joining and leaving sessions.
 *
 * @example
 * ```ts
 * const session = await Session.join({
 *   appId: "com.example.counter", name: "room1", password: "secret",
 *   model: Counter, view: CounterView,
 * });
 * ```
 */
export class Session {
  /**
   * Joins (or starts) the session of this appId, name, options and code. Resolves once this
   * client's own view-join has been simulated and its root view built.
   */
  static async join<M extends Model, V extends View>(options: JoinOptions<M, V>): Promise<LockstepSession<M, V>> {
    // In a page: the "catching up" spinner now, and a toast if joining fails (a fatal error must
    // be visible to the user, not only in the console).
    const ui = createBrowserUi();
    ui?.syncing(undefined);
    let controller: SessionController | undefined;
    try {
      const params = await validate(options, ui);
      controller = await SessionController.create(params);
      const session = new JoinedSession(controller, params);
      await controller.start(session);
      ui?.stats?.(controller.identity.sessionId, statsSource(controller));
      live.add(session);
      return session as unknown as LockstepSession<M, V>;
    } catch (error) {
      ui?.message("error", error instanceof Error ? error.message : String(error));
      ui?.ended(controller?.identity.sessionId ?? "");
      throw error;
    }
  }

  /** Leaves every session of this runtime with the given sessionId. */
  static async leave(sessionId: string): Promise<void> {
    await Promise.all([...live].filter((s) => s.id === sessionId).map((s) => s.leave()));
  }
}
