/**
 * `@lockstep/react`: React bindings for Lockstep. A provider joins the session; hooks read the
 * replicated model (re-rendering only when what they select changed) and publish events, the
 * only way a view changes models.
 * @packageDocumentation
 */
export { LockstepProvider } from "./provider";
export type { LockstepProviderProps } from "./provider";
export { useSession, useStatus, useViewId, usePublish, useSubscribe, useModelSelector, useConnectedViews, useReactModelRoot, useJoinedViews } from "./hooks";
export type { Publish, ConnectedViews } from "./hooks";
export { shallowEqual } from "./equality";
