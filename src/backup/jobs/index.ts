// Backup jobs: consistent snapshots of databases and files, kept locally and pushed to a bucket.
export {
  loadJobsConfig,
  findJob,
  parseSourceSpec,
  redact,
  JobConfigError,
  JOBS_CONFIG_ENV,
  DEFAULT_JOBS_CONFIG_FILE,
  ENV_JOB_NAME,
  type BackupJob,
  type JobsConfig,
  type SourceSpec,
  type SourceKind,
  type Retention,
} from './config.js';
export { SourceError, snapshotSource, type SnapshotOptions } from './sources.js';
export { duckdbBackup, duckdbIntegrityCheck, DuckdbSourceError, type DuckdbBackupOptions } from './duckdb.js';
export { runBackupJobIsolated, ISOLATED_RUN_NICENESS, HOST_UPLOAD_CONCURRENCY, type IsolatedRunOptions } from './run-isolated.js';
export { runBackupJob, backupName, backupTimestamp, BackupRunError, SHA256_METADATA, type BackupRunOptions, type BackupRunResult, type BackupProgress } from './run.js';
export {
  listBackups,
  listLocalBackups,
  listBucketBackups,
  mergeBackupListings,
  latestBackup,
  backupNamePattern,
  type BackupEntry,
  type BackupLocation,
  type BucketBackup,
} from './list.js';
export { deleteBackup, type DeleteBackupOptions, type DeleteBackupResult, type DeleteWhere } from './delete.js';
export { restoreBackup, BackupRestoreError, type BackupRestoreOptions, type BackupRestoreResult, type RestoreVerification } from './restore.js';
export { MAC_METADATA } from './record.js';
export { pruneBackups, applyRetention, type PruneDecision, type PruneResult } from './prune.js';
export {
  startBackupLoop,
  plannedNextRun,
  lastRuns,
  manifestKeyNotice,
  type BackupLoopOptions,
  type BackupLoopHandle,
  type BackupLoopEvent,
  type BackupJobState,
} from './loop.js';
export { describePostgresTarget, redactPostgresUrl, isPostgresError, PostgresError, type PostgresErrorCode } from './postgres.js';
