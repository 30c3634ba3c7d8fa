import { UsageError } from "../errors";
import { urlOptions } from "./url-options";

/** The two `App` helpers a join without a session name falls back on. */
export interface AutoNames {
  autoSession(): Promise<string>;
  autoPassword(): Promise<string>;
}

/**
 * The session name and password of a join, with Croquet's defaults: without a `name`, the name
 * comes from `App.autoSession()` (the page URL's `?q=`, made up and written there if missing) and,
 * unless a password was given, the password from `App.autoPassword()` (`#pw=`). A name given
 * without a password is the caller's error, as in Croquet. In Node there is no URL: the command
 * line's `--q=` and `--pw=` stand in for it, and a made-up name is announced, so a second process
 * can be pointed at the same session.
 */
export async function sessionNames(options: { readonly name?: unknown; readonly password?: unknown }, app: AutoNames): Promise<{ name: unknown; password: unknown }> {
  if (options.name) {
    const [name, password] = await Promise.all([options.name, options.password]);
    return { name, password };
  }
  if ((globalThis as { location?: unknown }).location !== undefined) {
    const [name, password] = await Promise.all([app.autoSession(), options.password || app.autoPassword()]);
    return { name, password };
  }
  const cli = urlOptions();
  const fromCli = (key: string): string | undefined => (typeof cli[key] === "string" && cli[key] !== "" ? (cli[key] as string) : typeof cli[key] === "number" ? String(cli[key]) : undefined);
  const name = fromCli("q") ?? (await app.autoSession());
  const password = (await options.password) || fromCli("pw") || (await app.autoPassword());
  if (fromCli("q") === undefined) {
    const pw = options.password ? "" : ` --pw=${String(password)}`;
    console.warn(`[Lockstep] Session.join: no session name given, and no page URL to take one from: joined new session "${name}". Run another client with --q=${name}${pw} (or pass name and password) to join it.`);
  }
  return { name, password };
}

/**
 * The root model's options with the URL's values for the keys `optionsFromUrl` names (Croquet's
 * join option): a key the URL has overrides the app's value; like every option, it is part of the
 * sessionId, so `?level=2` and `?level=3` are different sessions.
 * @throws {UsageError} if `optionsFromUrl` is not a list of names.
 */
export function withUrlOptions(options: Record<string, unknown>, optionsFromUrl: unknown): Record<string, unknown> {
  if (optionsFromUrl === undefined || optionsFromUrl === null) return options;
  if (!Array.isArray(optionsFromUrl) || optionsFromUrl.some((k) => typeof k !== "string")) {
    throw new UsageError(`Session.join: optionsFromUrl must be a list of option names, like ["level"], got ${JSON.stringify(optionsFromUrl)}`);
  }
  const url = urlOptions();
  const out = { ...options };
  for (const key of optionsFromUrl as string[]) if (Object.prototype.hasOwnProperty.call(url, key)) out[key] = url[key];
  return out;
}
