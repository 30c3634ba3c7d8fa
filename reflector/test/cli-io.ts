import type { CliIo } from "../src/cli";

/** A {@link CliIo} that records what `main` prints and how it exits, and lets a test send it a signal. */
export function fakeIo() {
  const out: string[] = [];
  const err: string[] = [];
  const exits: number[] = [];
  let handler: ((signal: string) => void) | undefined;
  let exited: (code: number) => void = () => {};
  const exit = new Promise<number>((resolve) => (exited = resolve));
  const io: CliIo = {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    exit: (code) => {
      exits.push(code);
      exited(code);
    },
    onSignal: (h) => {
      handler = h;
      return () => (handler = undefined);
    },
  };
  return { io, out, err, exits, exit, signal: (name: string) => handler?.(name), hasHandler: () => handler !== undefined };
}
