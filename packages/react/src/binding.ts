import { View, type LockstepSession, type Model } from "@lockstep/client";

/**
 * What the hooks of one provider share about its joined session: a version that moves whenever
 * the replicated state may have changed (the session's `"change"` event, once per frame at most),
 * a view of the bindings' own through which hooks publish and subscribe, and an epoch that moves
 * when a rejoin rebuilt the views (every view subscription was dropped, so hooks subscribe again).
 */
export class SessionBinding<M extends Model = Model, V extends View = View> {
  readonly session: LockstepSession<M, V>;
  readonly #listeners = new Set<() => void>();
  readonly #stops: Array<() => void>;
  #version = 0;
  #viewEpoch = 0;
  #rootView: View | undefined;
  #bridge: View;

  constructor(session: LockstepSession<M, V>) {
    this.session = session;
    this.#rootView = session.view;
    this.#bridge = new View(session.model);
    this.#stops = [
      session.on("change", () => this.#changed()),
      // A rejoin that rebuilt the replica built a new root view too, and dropped every view
      // subscription (ours included) when it retired the old one.
      session.on("status", () => {
        const view = session.view as View | undefined;
        if (view === undefined || view === this.#rootView) return;
        this.#rootView = view;
        this.#bridge = new View(session.model);
        this.#viewEpoch++;
        this.#changed();
      }),
    ];
  }

  /** Moves on every change of the replicated state (and of what the session's views are). */
  get version(): number {
    return this.#version;
  }

  /** Moves each time the bridge view was replaced: view subscriptions must be made again. */
  get viewEpoch(): number {
    return this.#viewEpoch;
  }

  /** The view hooks publish and subscribe through (this client's, not replicated; it never writes models). */
  get bridge(): View {
    return this.#bridge;
  }

  /** For `useSyncExternalStore`: `listener` runs after each change; returns a function that stops it. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /** Stops listening to the session (it is being left). */
  dispose(): void {
    for (const stop of this.#stops) stop();
    this.#listeners.clear();
  }

  #changed(): void {
    this.#version++;
    for (const listener of [...this.#listeners]) listener();
  }
}
