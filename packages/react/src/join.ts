import { Session, type JoinOptions, type Model, type View } from "@lockstep/client";
import { SessionBinding } from "./binding";

/**
 * One join of a provider, shared by the mounts of its effect. React's StrictMode mounts an effect,
 * unmounts it and mounts it again at once (in development): the release of the first mount is
 * therefore deferred to the end of the task, and the second mount takes the same join over, so one
 * session is joined and none is left behind. A real unmount leaves it (once joined, if still joining).
 */
export class JoinSlot<M extends Model, V extends View> {
  readonly binding: Promise<SessionBinding<M, V>>;
  #holders = 0;
  #released = false;

  constructor(options: JoinOptions<M, V>) {
    this.binding = Session.join(options).then((session) => new SessionBinding(session));
    // A join that fails is reported to the mount that waits for it; nothing is left to leave.
    this.binding.catch(() => {});
  }

  /** Whether the slot was let go of: a new mount must join again. */
  get released(): boolean {
    return this.#released;
  }

  hold(): void {
    this.#holders++;
  }

  /** One holder is done: unless another takes it over in this task, the session is left. */
  release(): void {
    this.#holders--;
    queueMicrotask(() => {
      if (this.#holders > 0 || this.#released) return;
      this.#released = true;
      this.binding.then(
        (binding) => {
          binding.dispose();
          return binding.session.leave();
        },
        () => {},
      ).catch((error: unknown) => console.error("[Lockstep] leaving the session failed", error));
    });
  }
}
