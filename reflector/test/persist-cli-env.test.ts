/** `lockstep-reflector persist` finds the storage the reflector service's LOCKSTEP_* environment names. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PersistStore, createFsStore } from "../src/storage/index";
import { runPersistCommand } from "../src/persist-cli";

function io(env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l), env } };
}

test("LOCKSTEP_DATA_DIR names the data directory; --data-dir overrides it; both storage variables are refused", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lockstep-persist-env-"));
  try {
    const blobs = await createFsStore(join(dir, "data"));
    await new PersistStore(blobs).append("slot-a", { sessionId: "s", seq: 1, size: 3, hash: Uint8Array.of(1), bytes: Uint8Array.of(1, 2, 3) });
    await blobs.close();
    const fromEnv = io({ LOCKSTEP_DATA_DIR: join(dir, "data") });
    expect(await runPersistCommand(["slots"], fromEnv.io)).toBe(0);
    expect(fromEnv.out).toEqual(["slot-a"]);
    const overridden = io({ LOCKSTEP_DATA_DIR: join(dir, "data") });
    expect(await runPersistCommand(["slots", "--data-dir", join(dir, "empty")], overridden.io)).toBe(0);
    expect(overridden.out).toEqual([]);
    const both = io({ LOCKSTEP_DATA_DIR: join(dir, "data"), LOCKSTEP_POSTGRES: "postgres://x@127.0.0.1:1/x" });
    expect(await runPersistCommand(["slots"], both.io)).toBe(2);
    expect(both.err.join("\n")).toContain("LOCKSTEP_POSTGRES and LOCKSTEP_DATA_DIR both name the storage");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
