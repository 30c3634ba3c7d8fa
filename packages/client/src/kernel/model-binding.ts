import { UsageError } from "../errors";
import type { ModelRuntime } from "./runtime";

/** Each model's VM. A WeakMap, not a property, so the link never reaches a snapshot. */
const vms = new WeakMap<object, ModelRuntime>();
let constructing = false;

/** Constructs a model instance through the one sanctioned path (`Model.create`). */
export function newModelInstance<M extends object>(cls: abstract new () => M): M {
  constructing = true;
  try {
    return new (cls as unknown as new () => M)();
  } finally {
    constructing = false;
  }
}

/** Called by the Model constructor: refuses `new MyModel()` from app code. */
export function checkConstructing(cls: Function): void {
  if (!constructing) {
    throw new UsageError(`create models with ${cls.name}.create(options), not new ${cls.name}(): the session must allocate and track them`);
  }
  constructing = false;
}

export function bindModel(model: object, vm: ModelRuntime): void {
  vms.set(model, vm);
}

/** The VM a model lives in. */
export function vmOfModel(model: object): ModelRuntime {
  const vm = vms.get(model);
  if (!vm) throw new UsageError("this model is not part of a session (was it destroyed, or created with new?)");
  return vm;
}
