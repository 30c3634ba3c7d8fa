/**
 * The method a simple arrow handler calls, read from its source text, as Croquet does for model
 * subscriptions: `x => this.moved(x)`, `(x) => this.moved(x)`, `() => this.reset()` and the same
 * with a block body (`x => { this.moved(x); }`) all stand for the method `moved` (`reset`) and
 * can be stored by that name, so the subscription serializes. Anything else — another argument,
 * two calls, a closure over a local — is not such an arrow, and undefined is returned.
 */
export interface ArrowCall {
  /** The method called on `this`. */
  readonly method: string;
  /** Whether the arrow passes its argument on (`x => this.m(x)`), or calls with none (`() => this.m()`). */
  readonly passesArgument: boolean;
}

const IDENT = "[A-Za-z_$][\\w$]*";
// (param) => this.method(arg)   |   param => { this.method(arg); }   (whitespace and comments aside)
const ARROW = new RegExp(
  `^(?:async\\s*)?(?:\\(\\s*(${IDENT})?\\s*\\)|(${IDENT}))\\s*=>\\s*(?:\\{\\s*(?:return\\s+)?(?<blockCall>this\\s*\\.\\s*${IDENT}\\s*\\(\\s*(?:${IDENT})?\\s*\\))\\s*;?\\s*\\}|(?<exprCall>this\\s*\\.\\s*${IDENT}\\s*\\(\\s*(?:${IDENT})?\\s*\\)))$`,
  "s",
);
const CALL = new RegExp(`^this\\s*\\.\\s*(${IDENT})\\s*\\(\\s*(${IDENT})?\\s*\\)$`, "s");

/** The call a simple arrow function makes on `this`, or undefined if `fn` is not one. */
export function arrowCall(fn: (...args: never[]) => unknown): ArrowCall | undefined {
  // Arrow functions have no prototype; methods, classes and ordinary functions are not arrows.
  if (Object.prototype.hasOwnProperty.call(fn, "prototype")) return undefined;
  let source: string;
  try {
    source = Function.prototype.toString.call(fn);
  } catch {
    return undefined;
  }
  source = source.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, " ").trim();
  if (source.startsWith("async")) return undefined; // an async handler would run after its event
  const m = ARROW.exec(source);
  if (!m) return undefined;
  const param = m[1] ?? m[2];
  const call = CALL.exec(m.groups?.blockCall ?? m.groups?.exprCall ?? "");
  if (!call) return undefined;
  const [, method, arg] = call;
  if (arg !== undefined && arg !== param) return undefined; // passes something other than its argument
  return { method: method!, passesArgument: arg !== undefined };
}
