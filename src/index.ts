// Offsite's library entry point: the storage layer, the snapshot API, backup jobs and sync.
export * from './storage/index.js';
export * from './snapshot/index.js';
// Backup jobs embedded in an application: startBackupLoop() runs them on their schedules in the
// background (never throwing into the host), runBackupJob() runs one now.
export {
  startBackupLoop,
  runBackupJob,
  loadJobsConfig,
  listBackups,
  restoreBackup,
  type BackupLoopOptions,
  type BackupLoopHandle,
  type BackupLoopEvent,
  type BackupJobState,
  type BackupJob,
  type BackupRunResult,
} from './backup/jobs/index.js';
// End-to-end-encrypted sync of JSON records between devices, through a bucket or an
// `offsite serve` server (docs/sync.md).
export {
  SyncClient,
  openSyncBackend,
  BucketBackend,
  HttpBackend,
  SyncError,
  isSyncError,
  generateSecret,
  recordHistory,
  searchHistory,
  installHook,
  uninstallHook,
  resolveSyncBackend,
  readSyncConfigFile,
  syncConfigFromEnv,
  mergeSyncConfigs,
  type SyncBackend,
  type SyncClientOptions,
  type SyncEntry,
  type SyncErrorCode,
  type PushResult,
  type PullResult,
  type DeleteResult,
  type MigrateResult,
  type SyncStatus,
  type SyncProblem,
  type HistoryEntry,
  type SyncConfig,
} from './sync/index.js';
// The sync protocol's HTTP server (`offsite serve`), to embed in an app.
export { createSyncServer, serveSync } from './server/index.js';
