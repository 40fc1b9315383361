// The sync layer's public face: other layers import from here only.
export type {
  SyncBackend,
  SyncBackendType,
  SealedData,
  CallOptions,
  BatchKind,
  BatchPosition,
  SealedBatch,
  StoredBatch,
  UserRef,
  DeviceRef,
  RegisterDeviceRequest,
  RegisterDeviceResult,
  SubmitRequest,
  SubmitResult,
  QueryRequest,
  QueryResult,
  BootstrapRequest,
  BootstrapResult,
  StoredSnapshot,
  AddDeletionRequest,
  GetDeletionRequestsRequest,
  DeletionRequestsResult,
  DeviceListing,
  RegisteredDevice,
  PublishCursorRequest,
  LeaseName,
  LeaseRequest,
  LeaseResult,
  ReleaseLeaseRequest,
  PutSnapshotRequest,
  CollectGarbageRequest,
  CollectGarbageResult,
  PingResult,
  SyncEntry,
} from './types.js';
export { SyncError, isSyncError, type SyncErrorCode } from './errors.js';
export { generateSecret, parseSecret, formatSecret, SECRET_BYTES } from './secret.js';
export { deriveKeys, seal, open, peekContext, MisplacedError, ENVELOPE_VERSION, type SyncKeys, type SealContext, type SealedKind, type ExpectedContext } from './crypto.js';
export { BucketBackend } from './bucket.js';
export { batchId, parseBatchId } from './bucket-keys.js';
export { LIST_LOOKBACK_MS, MAX_CLOCK_SKEW_MS, MAX_WRITE_DELAY_MS } from './clock.js';
export {
  SyncClient,
  openSyncBackend,
  MAX_ENTRY_BYTES,
  type SyncClientOptions,
  type PushResult,
  type PullResult,
  type DeleteResult,
} from './client.js';
export type { SyncStatus, DeviceStatus } from './status.js';
export { DEFAULT_BATCHING, DEFAULT_COMPACTION, type BatchingPolicy, type CompactionPolicy, type RequestsUsed } from './device.js';
export type { CompactOptions, CompactResult } from './compaction.js';
export type { SyncProblem, SyncProblemCode } from './reader.js';
export { HttpBackend, SYNC_TOKEN_ENV, type HttpBackendOptions } from './http-backend.js';
export {
  createSyncServer,
  serveSync,
  resolveServeToken,
  defaultServeTokenFile,
  isLoopbackHost,
  DEFAULT_SYNC_BODY_LIMIT,
  DEFAULT_SYNC_HOST,
  DEFAULT_SYNC_PORT,
  MIN_TOKEN_LENGTH,
  type SyncServerOptions,
  type SyncServerError,
  type ServeSyncOptions,
  type RunningSyncServer,
  type ServeToken,
} from './http-server.js';
export {
  HISTORY_SHELLS,
  HISTORY_BEGIN,
  HISTORY_END,
  DEFAULT_SEARCH_LIMIT,
  historyEntry,
  parseHistoryTime,
  recordHistory,
  searchHistory,
  syncDeviceExists,
  defaultRcFile,
  shellQuote,
  hookBlock,
  installHook,
  uninstallHook,
  hookInstalled,
  type HistoryShell,
  type HistoryEntry,
  type HistoryInput,
  type HistoryQuery,
  type HookOptions,
  type InstallResult,
} from './history.js';
export { flushHistorySpool, historySpoolDir, parseSpoolLine, type FlushSpoolOptions, type FlushSpoolResult } from './history-spool.js';
export { HISTORY_SPOOL_DIR, HOOK_QUIET_MS } from './history-hook.js';
export {
  SYNC_ENV,
  readSyncConfigFile,
  syncConfigFromEnv,
  mergeSyncConfigs,
  resolveSyncBackend,
  backendKindOfUrl,
  defaultSyncConfigFile,
  defaultSyncStateDir,
  saveServerToken,
  readServerToken,
  type SyncConfig,
  type SyncBackendKind,
  type ResolvedSyncBackend,
} from './config.js';
export type { CopyAccountResult } from './migrate.js';
export type { MigrateResult, S3Credentials } from './client.js';
