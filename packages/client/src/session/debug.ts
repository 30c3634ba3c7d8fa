import { UsageError } from "../errors";
import { DEBUG_FLAGS } from "../kernel/debug-log";

const KNOWN: ReadonlySet<string> = new Set(DEBUG_FLAGS);

/** Unknown flags already warned about (once per page, not once per join). */
const warned = new Set<string>();

/**
 * The known flag a word names: the flag itself, or its singular or plural form the way Croquet
 * accepts both (`message` for `messages`, `snapshots` for `snapshot`, `class` for `classes`).
 * Undefined for a word that names no flag.
 */
function canonical(word: string): string | undefined {
  if (KNOWN.has(word)) return word;
  for (const form of [`${word}s`, `${word}es`, word.replace(/s$/, ""), word.replace(/es$/, "")]) if (KNOWN.has(form)) return form;
  return undefined;
}

/** The words of a `debug` option: a comma-separated string or an array of them. */
function optionWords(option: unknown): string[] {
  if (option === undefined || option === null || option === false) return [];
  if (typeof option === "string") return option.split(",");
  if (Array.isArray(option) && option.every((f) => typeof f === "string")) return option.flatMap((f: string) => f.split(","));
  throw new UsageError(`Session.join: debug must be a string like "session,messages" or an array of flags (${DEBUG_FLAGS.join(", ")}), got ${JSON.stringify(option)}`);
}

/**
 * The debug flags of a join: the `debug` option's words, then the URL's (`?debug=a,b`, so a
 * deployed app can be debugged without a rebuild), applied in that order. A word turns its flag on,
 * `no` + the word turns it off, and the later word wins: `?debug=nosession` silences a
 * `debug: "session"` in the code, and `?debug=session` turns it back on over a `"nosession"`.
 * Singular and plural forms are the same flag. Unknown words are kept (apps may test their own
 * flags) and warned about once.
 * @param url the URL's words (default: this page's, see {@link urlDebugWords}).
 * @throws {UsageError} if the option is neither a string nor an array of strings.
 *
 * @example
 * ```ts
 * debugFlags("session,messages", ["nomessages", "ticks"]); // Set { "session", "ticks" }
 * ```
 */
export function debugFlags(option: unknown, url: readonly string[] = urlDebugWords()): ReadonlySet<string> {
  const flags = new Set<string>();
  for (const raw of [...optionWords(option), ...url]) {
    const word = raw.trim().toLowerCase();
    if (word === "") continue;
    const negated = word.startsWith("no") ? canonical(word.slice(2)) : undefined;
    if (negated !== undefined) {
      flags.delete(negated);
      continue;
    }
    const flag = canonical(word) ?? word;
    if (!KNOWN.has(flag) && !warned.has(flag)) {
      warned.add(flag);
      console.warn(`[Lockstep] unknown debug flag "${flag}" (known: ${DEBUG_FLAGS.join(", ")}; "no" + a flag turns it off)`);
    }
    flags.add(flag);
  }
  return flags;
}

/**
 * The words of the page URL's `debug` parameters, in the query (`?debug=session`) and in the
 * fragment's `&`-separated parameters (`#pw=…&debug=session`), in that order; none outside a browser.
 */
export function urlDebugWords(location: { search?: string; hash?: string } | undefined = pageLocation()): string[] {
  if (!location) return [];
  const words: string[] = [];
  for (const part of [location.search ?? "", (location.hash ?? "").replace(/^#/, "")]) {
    const params = new URLSearchParams(part.replace(/^\?/, ""));
    for (const value of params.getAll("debug")) words.push(...value.split(","));
  }
  return words;
}

function pageLocation(): { search?: string; hash?: string } | undefined {
  return (globalThis as { location?: { search?: string; hash?: string } }).location;
}
