import { useCallback, useEffect, useRef, useSyncExternalStore } from "react";
import type { EventSpec, LockstepSession, Model, PublishOptions, SessionStatus, View } from "@lockstep/client";
import type { SessionBinding } from "./binding";
import { useBinding } from "./context";
import { shallowEqual } from "./equality";

/**
 * The joined session of the nearest {@link LockstepProvider}: ids, `status`, `stateHash()`,
 * `leave()`… Give it your model and view types to have them typed.
 *
 * @example
 * ```tsx
 * const session = useSession<TodoList>();
 * return <small>session {session.id.slice(0, 8)}</small>;
 * ```
 */
export function useSession<M extends Model = Model, V extends View = View>(): LockstepSession<M, V> {
  return useBinding<M, V>("useSession").session;
}

/**
 * Where the session stands, re-rendering on every change: `"connecting"`, `"syncing"` (catching
 * up), `"connected"`, `"reconnecting"` (connection lost; input is queued meanwhile), `"disconnected"`
 * (asleep while the page is hidden) or `"ended"` — the client's `session.status`, as it is.
 */
export function useStatus(): SessionStatus {
  const { session } = useBinding("useStatus");
  const subscribe = useCallback((listener: () => void) => session.on("status", listener), [session]);
  const status = useCallback(() => session.status, [session]);
  return useSyncExternalStore(subscribe, status, status);
}

/** This client's view id: the id models see in its `view-join` and in `viewIds`. */
export function useViewId(): string {
  return useBinding("useViewId").session.viewId;
}

/** `publish(scope, event, data?, options?)`, as {@link usePublish} returns it. */
export type Publish = (scope: string, event: string, data?: unknown, options?: PublishOptions) => void;

/**
 * A stable function that publishes an event, as a view does: it goes through the reflector to
 * every replica's models (views never write models). While the session reconnects, events are
 * queued and sent once it is back. With `build`, Croquet's form: the returned function passes its
 * arguments to `build`, which says what to publish (`[scope, event, data]`).
 *
 * @example
 * ```tsx
 * const publish = usePublish();
 * <button onClick={() => publish("todos", "add", { text })}>Add</button>
 *
 * const toggle = usePublish((id: string) => ["todos", "toggle", id]);
 * <input type="checkbox" onChange={() => toggle(todo.id)} />
 * ```
 */
export function usePublish(): Publish;
export function usePublish<A extends unknown[]>(build: (...args: A) => readonly [scope: string, event: string, data?: unknown]): (...args: A) => void;
export function usePublish(build?: (...args: unknown[]) => readonly [string, string, unknown?]): Publish | ((...args: unknown[]) => void) {
  const binding = useBinding("usePublish");
  const latest = useRef(build);
  latest.current = build;
  // Read at call time: a rejoin may have replaced the view published through.
  const publish = useCallback<Publish>((scope, event, data, options) => binding.bridge.publish(scope, event, data, options), [binding]);
  const built = useCallback(
    (...args: unknown[]) => {
      const [scope, event, data] = latest.current!(...args);
      binding.bridge.publish(scope, event, data);
    },
    [binding],
  );
  return build === undefined ? publish : built;
}

/**
 * Calls `handler(data)` for each `event` in `scope` that models publish to views (or other views
 * of this client publish), while the component is mounted. Delivered like a view's subscription:
 * queued, in order, at the next frame (or `{ event, handling }` for "oncePerFrame"/"immediate").
 * The latest `handler` is called: it need not be memoized.
 */
export function useSubscribe<T = unknown>(scope: string, event: EventSpec, handler: (data: T) => void): void {
  const binding = useBinding("useSubscribe");
  const latest = useRef(handler);
  latest.current = handler;
  const epoch = useSyncExternalStore(binding.subscribe, () => binding.viewEpoch, () => binding.viewEpoch);
  const name = typeof event === "string" ? event : event.event;
  const handling = typeof event === "string" ? undefined : event.handling;
  useEffect(() => {
    const view = binding.bridge;
    const spec: EventSpec = handling === undefined ? name : { event: name, handling };
    // One function per mount, so unsubscribing removes this component's subscription only.
    const deliver = (data: T): void => latest.current(data);
    view.subscribe(scope, spec, deliver);
    return () => view.unsubscribe(scope, name, deliver);
  }, [binding, epoch, scope, name, handling]);
}

/**
 * Reads the replicated state: `selector(rootModel)`, re-rendering the component only when that
 * value changes — checked after each frame in which models ran (events, futures, a rejoin), with
 * `isEqual` (default `Object.is`; pass {@link shallowEqual} for selectors that build arrays or
 * objects). The selector must only read: views never write models.
 *
 * @example
 * ```tsx
 * const done = useModelSelector((todos: TodoList) => todos.items.filter((t) => t.done).length);
 * const titles = useModelSelector((todos: TodoList) => todos.items.map((t) => t.title), shallowEqual);
 * ```
 */
export function useModelSelector<M extends Model = Model, T = unknown>(selector: (model: M) => T, isEqual: (a: T, b: T) => boolean = Object.is): T {
  const binding = useBinding<M>("useModelSelector");
  return useSelected(binding, (session) => selector(session.model), isEqual, selector);
}

/** Who is in the session, as {@link useConnectedViews} reports it. */
export interface ConnectedViews {
  /** View ids in the order they joined (this client's among them: {@link useViewId}). */
  readonly viewIds: readonly string[];
  readonly viewCount: number;
}

/**
 * The views in the session as this client's replica knows them (from the `view-join` and
 * `view-exit` it processed), re-rendering when one joins or leaves.
 */
export function useConnectedViews(): ConnectedViews {
  const binding = useBinding("useConnectedViews");
  const viewIds = useSelected(binding, viewIdsOf, shallowEqual, viewIdsOf);
  const last = useRef<ConnectedViews | null>(null);
  if (last.current?.viewIds !== viewIds) last.current = { viewIds, viewCount: viewIds.length };
  return last.current;
}

const viewIdsOf = (session: LockstepSession): readonly string[] => session.viewIds;

/**
 * The root model, re-rendering the component after every change of the replicated state
 * (Croquet's `useReactModelRoot`). Prefer {@link useModelSelector}, which re-renders only when
 * what the component shows changed.
 */
export function useReactModelRoot<M extends Model = Model>(): M {
  const binding = useBinding<M>("useReactModelRoot");
  useSyncExternalStore(binding.subscribe, () => binding.version, () => binding.version);
  return binding.session.model;
}

/** Croquet's name for {@link useConnectedViews}. */
export const useJoinedViews = useConnectedViews;

interface Selection<T> {
  readonly version: number;
  readonly selector: unknown;
  readonly value: T;
}

/**
 * `select(session)` through `useSyncExternalStore`, recomputed only when the binding's version or
 * the selector changed, and kept as the same value while `isEqual` says it did not change (so
 * React sees a stable snapshot and skips the re-render).
 */
function useSelected<M extends Model, T>(binding: SessionBinding<M>, select: (session: LockstepSession<M>) => T, isEqual: (a: T, b: T) => boolean, selector: unknown): T {
  const last = useRef<Selection<T> | null>(null);
  const snapshot = (): T => {
    const version = binding.version;
    const prev = last.current;
    if (prev !== null && prev.version === version && prev.selector === selector) return prev.value;
    const next = select(binding.session);
    const value = prev !== null && isEqual(prev.value, next) ? prev.value : next;
    last.current = { version, selector, value };
    return value;
  };
  return useSyncExternalStore(binding.subscribe, snapshot, snapshot);
}
