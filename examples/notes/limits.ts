/**
 * Limits of the notes example, shared by the models (which enforce them on every event) and the
 * views (which keep users inside them). Model code imports these, but Lockstep's versionId hashes
 * only registered class sources and `Constants`: change a limit together with a model change, so
 * clients running different limits never share a session.
 */
export const LIMITS = {
  /** UTF-16 code units per document body. */
  textLength: 100_000,
  /** UTF-16 code units per title. */
  titleLength: 200,
  /** Documents per session. */
  documents: 200,
  /** Longest insert one event carries (a paste is split): keeps events far below the payload limit. */
  insertChunk: 16_384,
  /** Ids: document ids, view ids and op ids. */
  idLength: 64,
  /** Applied splices a model remembers per document, to map late edits through. */
  history: 64,
  /** Characters per tag (v2). */
  tagLength: 32,
  /** Tags per document (v2). */
  tagsPerDocument: 12,
} as const;
