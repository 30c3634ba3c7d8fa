/**
 * What model code reaches through its session: the part of the VM that `Model`, `View` and the
 * execution guard call. The VM implements it; they depend on this interface, not on the VM, so
 * the kernel's files import each other in one direction only. Models are `object` here because
 * `Model` itself sits above this file.
 */
export interface ModelRuntime {
  readonly sessionId: string;
  /** Model time, in ms. */
  readonly time: number;
  readonly viewCount: number;
  /** The session PRNG and model time, as `Math.random` and `Date.now` see them inside model code. */
  readonly randomFn: () => number;
  readonly nowFn: () => number;
  readonly persistence: { request(writer: string, fn: () => unknown, delayMs: number): void };
  createModel(cls: Function, options: unknown): object;
  destroyModel(model: object): void;
  getModel(id: string): object | undefined;
  wellKnownModel(name: string): object | undefined;
  setWellKnown(name: string, model: object): void;
  random(): number;
  publish(scope: string, event: string, data: unknown): void;
  subscribe(model: object, scope: string, event: string, method: string): void;
  unsubscribe(model: object, scope: string, event: string, method?: string): void;
  unsubscribeAll(model: object): void;
  future(model: object, ms: number, selector: string, args: unknown[]): unknown;
  cancelFuture(model: object, selector: string): boolean;
}
