import type { ModelRuntime } from "./runtime";

/**
 * Which VM is running model code right now, if any. Model code is synchronous and never
 * interleaves with another VM, so one slot per loaded client suffices; `Model.create()` and the
 * model API find their VM here.
 */
let current: ModelRuntime | undefined;
let depth = 0;

const realRandom = Math.random;
const realDateNow = Date.now;

/** The VM executing model code, or undefined while view or app code runs. */
export function currentVM(): ModelRuntime | undefined {
  return current;
}

/**
 * Runs `fn` as model code of `vm`. This is the one place where `Math.random` and `Date.now` are
 * redirected to the session PRNG and model time, so that model code written against them stays
 * deterministic; both are restored on the way out, even if `fn` throws.
 */
export function runAsModel<T>(vm: ModelRuntime, fn: () => T): T {
  if (current !== undefined && current !== vm) {
    throw new Error("model code of one session tried to run inside another session's model code");
  }
  const outer = current;
  current = vm;
  if (depth++ === 0) {
    Math.random = vm.randomFn;
    Date.now = vm.nowFn;
  }
  try {
    return fn();
  } finally {
    if (--depth === 0) {
      Math.random = realRandom;
      Date.now = realDateNow;
    }
    current = outer;
  }
}

/**
 * Runs `fn` as view code while model code is on the stack (an "immediate" view subscription):
 * the real `Math.random`/`Date.now` come back, and the model API refuses to run.
 */
export function runAsView<T>(fn: () => T): T {
  const outerVM = current;
  const outerDepth = depth;
  current = undefined;
  depth = 0;
  Math.random = realRandom;
  Date.now = realDateNow;
  try {
    return fn();
  } finally {
    current = outerVM;
    depth = outerDepth;
    if (outerVM && outerDepth > 0) {
      Math.random = outerVM.randomFn;
      Date.now = outerVM.nowFn;
    }
  }
}
