import type { VirtualMachine } from "../kernel/vm";

/**
 * Tells the app, at the end of a frame, that the replicated state may have changed since the
 * last frame: the replica processed entries or ran futures, or a rejoin replaced it. UI code that
 * reads models on its own schedule (React's `useSyncExternalStore`) re-reads them then; a frame
 * in which no model code ran says nothing, so idle ticks cost nothing.
 */
export class ChangeNotifier {
  readonly #listeners = new Set<() => void>();
  readonly #reportError: (context: string, error: unknown) => void;
  #vm: VirtualMachine | undefined;
  #revision = 0;

  constructor(reportError: (context: string, error: unknown) => void) {
    this.#reportError = reportError;
  }

  /** Calls `listener()` after every frame that may have changed the state; returns a function that stops it. */
  on(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A frame ended with `vm` as the replica on screen. */
  frame(vm: VirtualMachine): void {
    if (vm === this.#vm && vm.revision === this.#revision) return;
    this.#vm = vm;
    this.#revision = vm.revision;
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (error) {
        this.#reportError("session change listener", error);
      }
    }
  }
}
