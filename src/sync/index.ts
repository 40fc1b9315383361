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
  HeldBatch,
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
export {
  deriveKeys,
  userIdFor,
  legacyUserId,
  seal,
  open,
  peekContext,
  payloadDigest,
  paddedEnvelopeSize,
  SMALL_ENVELOPE_BYTES,
  MisplacedError,
  ENVELOPE_VERSION,
  type SyncKeys,
  type SealContext,
  type SealedKind,
  type ExpectedContext,
} from './crypto.js';
export { BucketBackend } from './bucket.js';
export { batchId, parseBatchId } from './bucket-keys.js';
export { LIST_LOOKBACK_MS, MAX_CLOCK_SKEW_MS, MAX_WRITE_DELAY_MS, MAX_CLOCK_OFFSET_MS } from './clock.js';
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
export { DEFAULT_BATCHING, DEFAULT_COMPACTION, DEFAULT_FRESHNESS_CHECK_INTERVAL_MS, type BatchingPolicy, type CompactionPolicy, type RequestsUsed } from './device.js';
export type { CompactOptions, CompactResult } from './compaction.js';
export type { SyncProblem, SyncProblemCode } from './reader.js';
export { HttpBackend, SYNC_TOKEN_ENV, type HttpBackendOptions } from './http-backend.js';
// What the sync server (src/server/sync) is made of: the engine's side of the HTTP protocol.
export { AccountBindings } from './server-accounts.js';
export { TokenDoor, checkServerToken, type Caller } from './server-tokens.js';
export { assertId } from './bucket-keys.js';
export { createAccountToken, resolveServeToken, defaultServeTokenFile, MIN_TOKEN_LENGTH, type ServeToken } from './server-tokens.js';
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
  backendName,
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
