/**
 * The options a page's URL (or a Node process's command line) gives, read the way Croquet reads
 * them for `optionsFromUrl` and `App.autoSession`: `?a=1&b=x&flag` and `#…&a=1` in a page,
 * `--a=1 --flag` in Node. A value that looks like JSON (`true`, `false`, `null`, a number, a
 * quoted string, an array or object) is parsed; anything else stays a string; a key without a
 * value is `true`.
 */
export type UrlOptions = Readonly<Record<string, unknown>>;

interface PageLocation {
  readonly search?: string;
  readonly hash?: string;
}

/** The URL options of this page, or of this Node process's arguments; `{}` where there are neither. */
export function urlOptions(): UrlOptions {
  const location = (globalThis as { location?: PageLocation }).location;
  if (location) return parseQuery(`${location.search ?? ""}&${location.hash ?? ""}`);
  const argv = (globalThis as { process?: { argv?: readonly string[] } }).process?.argv;
  return argv ? parseArguments(argv.slice(2)) : {};
}

/** `a=1&b=x&flag` (a leading `?` or `#` is ignored; later keys win). */
export function parseQuery(query: string): UrlOptions {
  const out: Record<string, unknown> = {};
  for (const part of query.replace(/^[?#]/, "").split(/[&?#]/)) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const key = safeDecode(eq < 0 ? part : part.slice(0, eq));
    if (key === "" || key === "__proto__") continue;
    out[key] = eq < 0 ? true : parseValue(safeDecode(part.slice(eq + 1).replace(/\+/g, " ")));
  }
  return out;
}

/** `--a=1 --flag --b x` (Node's command line; what is not an option is ignored). */
export function parseArguments(args: readonly string[]): UrlOptions {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const match = /^--?([^=]+)(=(.*))?$/s.exec(arg);
    if (!match || match[1] === "__proto__") continue;
    const key = match[1]!;
    if (match[2] !== undefined) out[key] = parseValue(match[3] ?? "");
    else if (i + 1 < args.length && !args[i + 1]!.startsWith("-")) out[key] = parseValue(args[++i]!);
    else out[key] = true;
  }
  return out;
}

function parseValue(text: string): unknown {
  if (/^(true|false|null|-?[0-9.]+(e[+-]?\d+)?|["[{].*)$/is.test(text)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // "[a,b]" is a list of strings in Croquet's URLs; other non-JSON stays text.
      if (text.startsWith("[") && text.endsWith("]")) return text.slice(1, -1).split(",");
    }
  }
  return text;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
