import { JoinError } from "../errors";
import { DecryptionError, open, type SessionKeys } from "./crypto";
import type { Model, ModelClass } from "../kernel/model";
import type { ClassRegistry } from "../kernel/registry";
import { deserialize, serialize } from "../serializer/index";
import { VirtualMachine, type VMHost } from "../kernel/vm";

/** Serializes a VM's whole state (deterministic: the same on every replica at the same point). */
export function serializeVM(vm: VirtualMachine, registry: ClassRegistry): Uint8Array {
  return serialize(vm.state(), { classOf: (obj) => registry.codecOf(obj) });
}

function restoreVM(host: VMHost, bytes: Uint8Array): VirtualMachine {
  const state = deserialize(bytes, { classById: (id) => host.registry.codecById(id) });
  return new VirtualMachine(host, state);
}

/**
 * Builds a session's VM from what the reflector sent: the latest snapshot (decrypted and restored
 * without running any `init`), or, for a session with no snapshot, a fresh root model created by
 * `init(options, persisted)`. A fresh root is then serialized and restored once as a self-test, so
 * state that cannot be snapshotted fails the join now rather than hours later.
 */
export function bootVM(input: {
  readonly host: VMHost;
  readonly keys: SessionKeys;
  readonly snapshot: Uint8Array;
  readonly model: ModelClass;
  readonly options: unknown;
  readonly persisted: unknown;
}): { vm: VirtualMachine; root: Model } {
  const { host, keys, snapshot } = input;
  if (snapshot.length > 0) {
    let vm: VirtualMachine;
    try {
      vm = restoreVM(host, open(keys.snapshot, snapshot));
    } catch (cause) {
      const why = cause instanceof DecryptionError ? "could not be decrypted (tampered, or another key)" : "could not be restored";
      throw new JoinError(`the snapshot of session ${host.sessionId} ${why}: ${(cause as Error).message}`, { cause });
    }
    const root = vm.wellKnownModel("modelRoot");
    if (!root) throw new JoinError(`the snapshot of session ${host.sessionId} has no root model`);
    return { vm, root };
  }
  const vm = new VirtualMachine(host);
  const root = vm.createRoot(input.model, input.options, input.persisted);
  try {
    const bytes = serializeVM(vm, host.registry);
    const copy = restoreVM(host, bytes);
    const again = serializeVM(copy, host.registry);
    if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) {
      throw new Error("the state does not serialize the same after a round trip");
    }
  } catch (cause) {
    throw new JoinError(
      `${input.model.name}'s state cannot be snapshotted, so late joiners could never get it: ${(cause as Error).message}`,
      { cause },
    );
  }
  return { vm, root };
}
