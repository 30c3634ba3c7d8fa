import type { CliIo } from "../src/cli";

/** A {@link CliIo} that records what `main` prints and how it exits, and lets a test send it a signal. */
export function fakeIo(options: { env?: Record<string, string>; isTTY?: boolean } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const exits: number[] = [];
  let handler: ((signal: string) => void) | undefined;
  let exited: (code: number) => void = () => {};
  const exitWaiters: { n: number; resolve: () => void }[] = [];
  const exit = new Promise<number>((resolve) => (exited = resolve));
  const io: CliIo = {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    exit: (code) => {
      exits.push(code);
      exited(code);
      for (const w of exitWaiters.filter((w) => exits.length >= w.n)) w.resolve();
    },
    onSignal: (h) => {
      handler = h;
      return () => (handler = undefined);
    },
    ...options,
  };
  /** Resolves once `exit` was called `n` times (a forced exit does not stop the in-process reflector). */
  const exitedTimes = (n: number): Promise<void> => (exits.length >= n ? Promise.resolve() : new Promise((resolve) => exitWaiters.push({ n, resolve })));
  return { io, out, err, exits, exit, exitedTimes, signal: (name: string) => handler?.(name), hasHandler: () => handler !== undefined };
}
