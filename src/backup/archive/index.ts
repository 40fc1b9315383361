// Archive jobs: one tar per session directory, by year, into any storage, tracked in SQLite.
export { loadArchiveConfig, exampleConfig, ConfigError, CONFIG_ENV, PASSPHRASE_ENV, DEFAULT_CONFIG_FILE, type ArchiveConfig, type ConfigOverrides } from './config.js';
export { findSessions, type Session } from './sessions.js';
export { uploadSessions, type UploadOptions, type UploadResult, type UploadPlanEntry } from './upload.js';
export { verifyArchives, type VerifyOptions, type VerifyResult, type VerifyEntry } from './verify.js';
export { restoreSession, type RestoreOptions, type RestoreOutcome } from './restore.js';
export { analyzeSessions, listSessions, type Analysis, type YearAnalysis, type SessionListing } from './analyze.js';
export { rebuildCatalog } from './rebuild.js';
export type { ArchiveEvent, EventSink } from './events.js';
