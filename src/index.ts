// Offsite's library entry point: the storage layer, the snapshot API and backup jobs.
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
