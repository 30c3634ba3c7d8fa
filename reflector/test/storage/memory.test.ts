import { createMemoryStore } from "../../src/storage";
import { runBlobStoreConformance } from "@lockstep/test-support";

runBlobStoreConformance("memory", async () => ({ store: createMemoryStore(), cleanup: async () => undefined }));
