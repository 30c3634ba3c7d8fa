import { createContext, useContext } from "react";
import type { Model, View } from "@lockstep/client";
import type { SessionBinding } from "./binding";

/** The joined session of the nearest provider (null outside one, or before it joined). */
export const BindingContext = createContext<SessionBinding | null>(null);

/** The nearest provider's binding; throws an actionable error outside a provider. */
export function useBinding<M extends Model = Model, V extends View = View>(hook: string): SessionBinding<M, V> {
  const binding = useContext(BindingContext);
  if (binding === null) {
    throw new Error(`${hook}() must be called inside <LockstepProvider> (its children render once the session is joined)`);
  }
  return binding as unknown as SessionBinding<M, V>;
}
