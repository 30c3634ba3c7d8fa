import { toBase64Url } from "@lockstep/protocol";

interface BrowserLocation {
  href: string;
  search: string;
  hash: string;
}

function browserLocation(): BrowserLocation | undefined {
  return (globalThis as { location?: BrowserLocation }).location;
}

function replaceUrl(url: URL): void {
  const history = (globalThis as { history?: { replaceState(data: unknown, unused: string, url: string): void } }).history;
  history?.replaceState(null, "", url.toString());
}

function randomName(): string {
  const alphabet = "abcdefghijkmnopqrstuvwxyz23456789";
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(10));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

function hashParams(hash: string): URLSearchParams {
  return new URLSearchParams(hash.replace(/^#/, ""));
}

/**
 * Browser helpers (Multisynq-compatible). `autoSession` and `autoPassword` return promises, which
 * `Session.join` accepts for `name` and `password`.
 *
 * @example
 * ```ts
 * Session.join({ appId, name: App.autoSession(), password: App.autoPassword(), model, view });
 * ```
 */
export const App = {
  /**
   * The session name from the URL's `?q=` parameter; if there is none, a new random name that is
   * written into the URL, so the link can be shared.
   */
  async autoSession(options: string | { parameter?: string } = {}): Promise<string> {
    const parameter = (typeof options === "string" ? options : options.parameter) ?? "q";
    const location = browserLocation();
    if (!location) return randomName();
    const url = new URL(location.href);
    const existing = url.searchParams.get(parameter);
    if (existing) return existing;
    const name = randomName();
    url.searchParams.set(parameter, name);
    replaceUrl(url);
    return name;
  },

  /**
   * The session password from the URL fragment `#pw=`; if there is none, a new random one that is
   * written into the fragment. Fragments never travel to a server over HTTP, so the reflector and
   * the web server never see it; anyone with the full link can join.
   */
  async autoPassword(options: { parameter?: string } = {}): Promise<string> {
    const parameter = options.parameter ?? "pw";
    const location = browserLocation();
    const fresh = toBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(16)));
    if (!location) return fresh;
    const url = new URL(location.href);
    const params = hashParams(url.hash);
    const existing = params.get(parameter);
    if (existing) return existing;
    params.set(parameter, fresh);
    url.hash = params.toString();
    replaceUrl(url);
    return fresh;
  },

  /** The page's URL (with session name and password): the link to share. */
  get sessionURL(): string {
    return browserLocation()?.href ?? "";
  },
};
