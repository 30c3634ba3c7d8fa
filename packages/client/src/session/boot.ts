import { JoinError } from "../errors";
import { DecryptionError, openBulk, type SessionKeys } from "./crypto";
import type { Model, ModelClass } from "../kernel/model";
import type { ClassRegistry } from "../kernel/registry";
import { deserialize, serialize } from "../serializer/index";
import { VirtualMachine, type VMHost } from "../kernel/vm";
import type { VMClass } from "./traced-vm";

/** Serializes a VM's whole state (deterministic: the same on every replica at the same point). */
export function serializeVM(vm: VirtualMachine, registry: ClassRegistry): Uint8Array {
  return serialize(vm.state(), { classOf: (obj) => registry.codecOf(obj) });
}

function restoreVM(host: VMHost, bytes: Uint8Array, VM: VMClass = VirtualMachine): VirtualMachine {
  const state = deserialize(bytes, { classById: (id) => host.registry.codecById(id) });
  return new VM(host, state);
}

/**
 * Decrypts the snapshot a Sync brought (asynchronously: a version-2 envelope opens with WebCrypto;
 * a version-1 one, stored by an earlier release, still opens), before {@link bootVM} restores it.
 * @throws {JoinError} if it does not open (tampered, or another key).
 */
export async function openSnapshot(keys: Pick<SessionKeys, "snapshot">, sessionId: string, snapshot: Uint8Array): Promise<Uint8Array> {
  try {
    return await openBulk(keys.snapshot, snapshot);
  } catch (cause) {
    throw snapshotError(sessionId, cause);
  }
}

/** The JoinError of a snapshot that does not open (a DecryptionError) or restore. */
function snapshotError(sessionId: string, cause: unknown): JoinError {
  const why = cause instanceof DecryptionError ? "could not be decrypted (tampered, or another key)" : "could not be restored";
  return new JoinError(`the snapshot of session ${sessionId} ${why}: ${(cause as Error).message}`, { cause });
}

/**
 * Builds a session's VM from what the reflector sent: the latest snapshot (decrypted by
 * {@link openSnapshot}, restored without running any `init`), or, for a session with no snapshot,
 * a fresh root model created by `init(options, persisted)`. A fresh root is then serialized and
 * restored once as a self-test, so state that cannot be snapshotted fails the join now rather
 * than hours later.
 * @param state the decrypted snapshot, or undefined for a session that has none.
 */
export function bootVM(input: {
  readonly host: VMHost;
  readonly state: Uint8Array | undefined;
  readonly model: ModelClass;
  readonly options: unknown;
  readonly persisted: unknown;
  /** The VM class (debug flags may trace it, `traced-vm.ts`); default the plain one. */
  readonly VM?: VMClass;
}): { vm: VirtualMachine; root: Model } {
  const { host, state } = input;
  const VM = input.VM ?? VirtualMachine;
  if (state !== undefined) {
    let vm: VirtualMachine;
    try {
      vm = restoreVM(host, state, VM);
    } catch (cause) {
      throw snapshotError(host.sessionId, cause);
    }
    const root = vm.wellKnownModel("modelRoot");
    if (!root) throw new JoinError(`the snapshot of session ${host.sessionId} has no root model`);
    return { vm, root };
  }
  const vm = new VM(host);
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
