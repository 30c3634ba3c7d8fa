import { useEffect, useRef, useState, type ReactNode } from "react";
import type { JoinOptions, Model, View } from "@lockstep/client";
import type { SessionBinding } from "./binding";
import { BindingContext } from "./context";
import { JoinSlot } from "./join";

/** Props of {@link LockstepProvider}. */
export interface LockstepProviderProps<M extends Model = Model, V extends View = View> {
  /**
   * What `Session.join` gets (appId, name, password, model, view, reflector, …). Read when the
   * provider mounts: to join another session, give the provider another `key`.
   */
  readonly options: JoinOptions<M, V>;
  /** Rendered until the session is joined (default: nothing). */
  readonly fallback?: ReactNode;
  /** Rendered once joined; every hook of this package works inside. */
  readonly children?: ReactNode;
}

type JoinState<M extends Model, V extends View> = { readonly kind: "joining" } | { readonly kind: "joined"; readonly binding: SessionBinding<M, V> } | { readonly kind: "failed"; readonly error: unknown };

/**
 * Joins a Lockstep session when it mounts and leaves it when it unmounts; its children render
 * once the session is joined (`fallback` until then) and read it with the hooks of this package.
 * Under `<StrictMode>` it joins once, not twice. A failed join is thrown while rendering, for
 * the nearest error boundary.
 *
 * @example
 * ```tsx
 * createRoot(document.getElementById("app")!).render(
 *   <LockstepProvider options={{ appId: "com.example.todo", name: "room", password: "secret", model: TodoList }} fallback={<p>Joining…</p>}>
 *     <Todos />
 *   </LockstepProvider>,
 * );
 * ```
 */
export function LockstepProvider<M extends Model = Model, V extends View = View>(props: LockstepProviderProps<M, V>): ReactNode {
  const options = useRef(props.options);
  const slot = useRef<JoinSlot<M, V> | null>(null);
  const [state, setState] = useState<JoinState<M, V>>({ kind: "joining" });

  useEffect(() => {
    let current = slot.current;
    if (current === null || current.released) slot.current = current = new JoinSlot(options.current);
    current.hold();
    let mounted = true;
    current.binding.then(
      (binding) => mounted && setState({ kind: "joined", binding }),
      (error: unknown) => mounted && setState({ kind: "failed", error }),
    );
    return () => {
      mounted = false;
      current.release();
    };
  }, []);

  if (state.kind === "failed") throw state.error;
  if (state.kind === "joining") return props.fallback ?? null;
  return <BindingContext.Provider value={state.binding as unknown as SessionBinding}>{props.children}</BindingContext.Provider>;
}
