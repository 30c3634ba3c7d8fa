import { createMemoryStore } from "../../src/storage";
import { runBlobStoreConformance } from "./conformance";

runBlobStoreConformance("memory", async () => ({ store: createMemoryStore(), cleanup: async () => undefined }));
