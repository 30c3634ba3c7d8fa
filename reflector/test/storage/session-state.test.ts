import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFsStore, createMemoryStore } from "../../src/storage";
import { runSessionStateSuite } from "./session-state-suite";

// The PostgreSQL adapter runs the same suite in pg.int.test.ts.

runSessionStateSuite("memory", async () => {
  const store = createMemoryStore();
  // A memory store cannot outlive closing: a restart is a new SessionStore on the same blobs.
  return { store, reopen: async () => store, cleanup: async () => undefined };
});

runSessionStateSuite("fs", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lockstep-session-state-"));
  let store = await createFsStore(dir);
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await createFsStore(dir);
      return store;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
