/**
 * Finds a property path from the root to an object (error path only). The writer collects paths
 * while unwinding, which covers everything but the bodies of deferred containers: those are written
 * after the root has returned, so the path down to the deferred container is searched for here.
 */
import { BUILTIN_BY_PROTOTYPE, Builtin } from "./format";
import { mapValueSegment, propSegment } from "./errors";
import { foreignBuiltin } from "./realm";
import type { SerializeOptions } from "./types";

interface Step {
  readonly value: object;
  readonly parent: Step | undefined;
  readonly segment: string;
}

/**
 * A path (`root.a[3].get("k")`) to `target` within the graph at `root`, following the same edges
 * the writer follows, iteratively (graphs that need deferral are deep). Undefined if unreachable.
 */
export function locate(root: unknown, target: object, options: SerializeOptions): string | undefined {
  if (root === target) return "root";
  if (typeof root !== "object" || root === null) return undefined;
  const seen = new Set<object>([root]);
  const stack: Step[] = [{ value: root, parent: undefined, segment: "root" }];
  const children: Array<readonly [unknown, string]> = [];
  for (let step = stack.pop(); step !== undefined; step = stack.pop()) {
    children.length = 0;
    collectChildren(step.value, options, children);
    // Reversed, so the first child is explored first, as the writer does.
    for (let i = children.length - 1; i >= 0; i--) {
      const [child, segment] = children[i]!;
      if (typeof child !== "object" || child === null || seen.has(child)) continue;
      const next: Step = { value: child, parent: step, segment };
      if (child === target) return pathOf(next);
      seen.add(child);
      stack.push(next);
    }
  }
  return undefined;
}

function pathOf(step: Step): string {
  const segments: string[] = [];
  for (let s: Step | undefined = step; s !== undefined; s = s.parent) segments.push(s.segment);
  return segments.reverse().join("");
}

function collectChildren(obj: object, options: SerializeOptions, out: Array<readonly [unknown, string]>): void {
  if (options.refOf?.(obj) !== undefined) return;
  const proto: unknown = Object.getPrototypeOf(obj);
  if (proto === Array.prototype) {
    collectItems(obj as unknown[], out);
    return;
  }
  if (proto === Object.prototype || proto === null) {
    collectProps(obj, out);
    return;
  }
  let builtin = BUILTIN_BY_PROTOTYPE.get(proto as object);
  if (builtin === undefined) {
    const codec = options.classOf(obj);
    // Registered class instances hold properties; custom types' data is never deferred.
    if (codec !== undefined) {
      if (codec.write === undefined) collectProps(obj, out);
      return;
    }
    builtin = foreignBuiltin(obj, proto as object);
  }
  if (builtin === Builtin.OBJECT) {
    collectProps(obj, out);
  } else if (builtin === Builtin.ARRAY) {
    collectItems(obj as unknown[], out);
  } else if (builtin === Builtin.MAP) {
    let i = 0;
    for (const [key, value] of obj as Map<unknown, unknown>) {
      out.push([key, `<key>[${i}]`], [value, mapValueSegment(key, i)]);
      i++;
    }
  } else if (builtin === Builtin.SET) {
    let i = 0;
    for (const value of obj as Set<unknown>) out.push([value, `<set>[${i++}]`]);
  }
}

function collectItems(array: unknown[], out: Array<readonly [unknown, string]>): void {
  for (let i = 0; i < array.length; i++) if (i in array) out.push([array[i], `[${i}]`]);
}

function collectProps(obj: object, out: Array<readonly [unknown, string]>): void {
  for (const key of Object.keys(obj)) out.push([(obj as Record<string, unknown>)[key], propSegment(key)]);
}
