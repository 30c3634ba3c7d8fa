import stableStringify from "fast-json-stable-stringify";
import { debugLogOf } from "../kernel/debug-log";
import { LIBRARY_MAJOR_VERSION, hash, normalizeSource, type SessionIdentity } from "../kernel/identity";
import type { ClassRegistry } from "../kernel/registry";

/**
 * `debug=classes` and `debug=hashing`: what went into a session's ids, so two clients that end up
 * in different sessions can compare their logs and see which class or constant differs.
 * `classes` lists the registered classes in registration order; `hashing` prints each class's
 * hash (of its id and normalized source) and the inputs of the three ids.
 */
export async function logIdentityInputs(
  flags: ReadonlySet<string>,
  input: { readonly appId: string; readonly name: string; readonly options: unknown; readonly registry: ClassRegistry; readonly constantsHash: string },
  identity: SessionIdentity,
): Promise<void> {
  const debug = debugLogOf(flags);
  if (!debug.classes && !debug.hashing) return;
  const classes = input.registry.classes();
  if (debug.classes) {
    debug.log(`${classes.length} registered class(es), in registration order:`);
    for (const { id, cls } of classes) debug.log(`  class ${cls.name} as "${id}"`);
  }
  if (!debug.hashing) return;
  for (const { id, cls } of classes) {
    const source = normalizeSource(Function.prototype.toString.call(cls));
    debug.log(`hashing: class "${id}" (${cls.name}, ${source.length} chars of normalized source) → ${await hash(`${id}:${source}`)}`);
  }
  debug.log(`hashing: Constants → ${input.constantsHash}`);
  debug.log(`hashing: versionId = H(lockstep-${LIBRARY_MAJOR_VERSION} | ${classes.length} class hash(es) | Constants) = ${identity.versionId}`);
  debug.log(`hashing: persistentId = H("${input.appId}/${input.name}") = ${identity.persistentId}`);
  debug.log(`hashing: sessionId = H(persistentId | ${stableStringify(input.options ?? {})} | versionId) = ${identity.sessionId}`);
}
