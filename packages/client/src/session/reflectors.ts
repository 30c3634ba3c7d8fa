import { JoinError } from "../errors";
import { OFFLINE_REFLECTOR_URL } from "./offline";
import { urlOptions } from "./url-options";

/**
 * Redirects and moved sessions followed at once in a row, without a successful join between them;
 * after that each one waits the backoff delay first, so two nodes that disagree about a session's
 * owner cannot keep a client bouncing between them at network speed.
 */
export const MAX_HOPS_AT_ONCE = 5;

/**
 * How long a socket may take to open before it is abandoned, in ms. A paused node (SIGSTOP, a
 * hung VM) still accepts the TCP connection but never answers the WebSocket upgrade: without a
 * limit the client would wait for the operating system's own timeout, minutes later.
 */
export const OPEN_TIMEOUT_MS = 4000;

/**
 * The reflector URLs of a join, in order: the `reflector` option (or `?reflector=`) is one URL,
 * several in one string separated by commas or whitespace, or an array of such strings. Each must
 * be a `ws://` or `wss://` URL (a comma or space inside one must be percent-encoded); a custom
 * socket factory may use a scheme of its own (`mem://…`). Repeats are dropped.
 * @throws {JoinError} naming the entry that is not a reflector URL.
 *
 * @example
 * ```ts
 * reflectorList("ws://10.0.0.1:8787/, ws://10.0.0.2:8787/"); // ["ws://10.0.0.1:8787/", "ws://10.0.0.2:8787/"]
 * ```
 */
export function reflectorList(value: unknown, options: { readonly webSocketOnly?: boolean } = {}): readonly string[] {
  const parts = typeof value === "string" ? [value] : Array.isArray(value) ? (value as unknown[]) : undefined;
  if (parts === undefined || parts.some((p) => typeof p !== "string")) {
    throw new JoinError(`Session.join: reflector must be a ws:// or wss:// URL, several of them in one string (separated by commas or spaces), or an array of them; got ${describe(value)}`);
  }
  const urls: string[] = [];
  for (const entry of (parts as string[]).flatMap((p) => p.split(/[\s,]+/))) {
    if (entry === "") continue;
    const problem = urlProblem(entry, options.webSocketOnly === true);
    if (problem !== undefined) throw new JoinError(`Session.join: reflector ${JSON.stringify(entry)} ${problem}`);
    if (!urls.includes(entry)) urls.push(entry);
  }
  if (urls.length === 0) throw new JoinError(`Session.join: reflector names no URL (got ${describe(value)}); give one like ws://127.0.0.1:8787/`);
  return urls;
}

/**
 * The `reflector` option as `JoinParameters` keep it: the URLs of {@link reflectorList},
 * checked, in one string (`"ws://a/, ws://b/"`).
 * @throws {JoinError} as {@link reflectorList} does.
 */
export function reflectorOption(value: unknown, options: { readonly webSocketOnly?: boolean } = {}): string {
  return reflectorList(value, options).join(", ");
}

/** Why `entry` is not a reflector URL, or undefined if it is one (`webSocketOnly`: ws:// and wss:// only). */
function urlProblem(entry: string, webSocketOnly: boolean): string | undefined {
  if (entry === OFFLINE_REFLECTOR_URL && !webSocketOnly) return undefined;
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return "is not a URL: give ws://host:port/ or wss://host/";
  }
  if (url.protocol === "ws:" || url.protocol === "wss:") return url.host === "" ? "names no host" : undefined;
  if (url.protocol === "http:" || url.protocol === "https:") return `is an HTTP URL: a reflector is reached over WebSocket, ${url.protocol === "https:" ? "wss" : "ws"}://${url.host}${url.pathname}`;
  // Another scheme is for a custom socket factory (tests use mem://); "host:port" without one is a mistake.
  return !webSocketOnly && /^[a-z][a-z0-9+.-]*:\/\//i.test(entry) ? undefined : "is not a ws:// or wss:// URL";
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (!Array.isArray(value)) return String(value);
  return value.every((v) => typeof v === "string") ? JSON.stringify(value) : "an array with a non-string entry";
}

/**
 * The URL a Redirect frame names, if a client may follow it: a `ws://` or `wss://` URL with a
 * host, and never from a `wss://` node to a plain `ws://` one (a redirect must not take the
 * connection off TLS). Undefined otherwise: the close is then an ordinary lost connection.
 */
export function redirectTarget(url: string | undefined, from: string | undefined): string | undefined {
  if (url === undefined || url.length > 2048) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if ((parsed.protocol !== "ws:" && parsed.protocol !== "wss:") || parsed.host === "") return undefined;
  if (parsed.protocol === "ws:" && from?.toLowerCase().startsWith("wss:")) return undefined;
  return url;
}

/** What the attempt the route last handed out went to. */
type Attempt =
  /** One of the configured URLs, at this index. */
  | { readonly url: string; readonly kind: "listed"; readonly index: number }
  /** Where a Redirect sent this one attempt. */
  | { readonly url: string; readonly kind: "redirect" }
  /** A redirect's target that the session was live on: rejoins go back there first. */
  | { readonly url: string; readonly kind: "owner" };

/**
 * Where a session's connections go, among its reflector URLs (several nodes of a cluster, or one
 * reflector). The first join tries them in order; rejoins start at the URL the session was last
 * live on and move to the next one after an attempt that failed. Sockets that do not open move on
 * to the next URL at once, until the whole list failed (see {@link passFailed}). A Redirect sends the next attempt
 * to the node it names (once: if that fails, the configured list again); a moved session goes on
 * at the next URL. It decides *where*; the controller decides *when*.
 */
export class ReflectorRoute {
  readonly urls: readonly string[];
  /** The configured URL the next attempt goes to (unless a redirect or a known owner comes first). */
  #at = 0;
  /** A node outside the list the session was live on (it was redirected there). */
  #owner: string | undefined;
  /** Where a Redirect sends the next attempt. */
  #redirect: string | undefined;
  #attempt: Attempt | undefined;
  /** Redirects and moves followed at once since the last successful join. */
  #hops = 0;
  /** Configured URLs whose sockets failed to open, in a row. */
  #openFailures = 0;

  constructor(urls: readonly string[]) {
    if (urls.length === 0) throw new Error("a route needs at least one URL");
    this.urls = urls;
  }

  /** The URL of the attempt in progress (or the last one). */
  get current(): string | undefined {
    return this.#attempt?.url;
  }

  /** Every configured URL failed to open, one after the other: for a first join, nobody is there. */
  get unreachable(): boolean {
    return this.#openFailures >= this.urls.length;
  }

  /**
   * The configured URLs that failed to open in a row just made a whole pass through the list (or
   * several): time to wait the backoff delay before trying again. Short of that, the next URL is
   * tried at once.
   */
  get passFailed(): boolean {
    return this.#openFailures > 0 && this.#openFailures % this.urls.length === 0;
  }

  /** Where the next attempt goes; it becomes {@link current}. */
  next(): string {
    const redirect = this.#redirect;
    this.#redirect = undefined;
    // A redirect to one of the configured URLs goes on from there in the list.
    const listed = redirect === undefined ? -1 : this.urls.indexOf(redirect);
    if (listed >= 0) this.#attempt = { url: redirect!, kind: "listed", index: listed };
    else if (redirect !== undefined) this.#attempt = { url: redirect, kind: "redirect" };
    else if (this.#owner !== undefined) this.#attempt = { url: this.#owner, kind: "owner" };
    else this.#attempt = { url: this.urls[this.#at]!, kind: "listed", index: this.#at };
    return this.#attempt.url;
  }

  /** The current attempt's socket opened. */
  opened(): void {
    this.#openFailures = 0;
  }

  /**
   * The current attempt failed: its socket did not open (`opened` false), or the connection ended
   * before the session was live on it, or went silent. The next attempt goes to the next configured
   * URL; after a redirect's target or a former owner, back to the list where it was.
   * @returns whether the attempt was at a configured URL (a first join moves on to the next at once).
   */
  failed(opened: boolean): boolean {
    const attempt = this.#attempt;
    if (attempt?.kind !== "listed") {
      this.#owner = undefined;
      return false;
    }
    if (!opened) this.#openFailures++;
    this.#at = (attempt.index + 1) % this.urls.length;
    return true;
  }

  /** The session is live on the current attempt's URL: rejoins start there. */
  joined(): void {
    this.#hops = 0;
    const attempt = this.#attempt;
    if (attempt?.kind === "redirect") this.#owner = attempt.url;
    else if (attempt?.kind === "listed") {
      this.#owner = undefined;
      this.#at = attempt.index;
    }
  }

  /**
   * The node answered with a Redirect to `url` (validated): the next attempt goes there.
   * @returns whether to follow at once (false after {@link MAX_HOPS_AT_ONCE} without a join: back off first).
   */
  redirect(url: string): boolean {
    this.#redirect = url;
    return this.#hop();
  }

  /**
   * The session moved off the current node: the next attempt goes to the next configured URL (the
   * same one, with one URL), where the session's new owner is, or a node that redirects there.
   * @returns whether to reconnect at once (see {@link redirect}).
   */
  moved(): boolean {
    const attempt = this.#attempt;
    this.#owner = undefined;
    this.#redirect = undefined;
    if (attempt?.kind === "listed") this.#at = (attempt.index + 1) % this.urls.length;
    else this.#at = (this.#at + 1) % this.urls.length;
    return this.#hop();
  }

  #hop(): boolean {
    this.#hops++;
    return this.#hops <= MAX_HOPS_AT_ONCE;
  }
}

/**
 * `?reflector=ws(s)://…` in the page's URL (`--reflector=…` in Node) overrides the join's
 * `reflector`, as in Croquet: one build of an app can be pointed at another reflector (or at
 * several nodes: URLs separated by commas). Anything but ws:// or wss:// URLs is ignored with a
 * warning.
 */
export function reflectorFromUrl(): string | undefined {
  const value = urlOptions().reflector;
  if (value === undefined) return undefined;
  try {
    return reflectorOption(value, { webSocketOnly: true });
  } catch (error) {
    console.warn(`[Lockstep] ignoring the URL's reflector=${String(value)}: it must be a ws:// or wss:// URL, or several separated by commas (${(error as Error).message})`);
    return undefined;
  }
}
