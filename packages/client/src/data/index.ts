/**
 * The Data API: `session.data.store()` / `fetch()`, `Data.hash` / `toId` / `fromId`, and the
 * {@link DataHandle}s models keep. Blobs are encrypted here and stored by the reflector.
 * @packageDocumentation
 */
export { Data, DataError } from "./data";
export type { DataStoreOptions, DataAccess } from "./data";
export { DataHandle } from "./handle";
export { httpDataAccess, offlineDataAccess, dataBaseUrl } from "./transport";
export type { DataEndpointInput } from "./transport";
