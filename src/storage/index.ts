// The storage layer's public face: other layers import from here only.
export type {
  Storage,
  Capabilities,
  PutBody,
  PutOptions,
  PutResult,
  GetOptions,
  GetResult,
  ObjectInfo,
  ListOptions,
  ListEntry,
  RestoreOptions,
  PresignOptions,
  SignalOption,
} from './types.js';
export { ARCHIVE_STORAGE_CLASSES } from './types.js';
export * from './errors.js';
export { StatsCounter, type RequestStats } from './stats.js';
export { compareKeys, unquoteEtag } from './keys.js';
export { LocalStorage } from './local/local.js';
export { S3Storage, DEFAULT_PART_SIZE, DEFAULT_CONCURRENCY, multipartPlan, type S3StorageOptions } from './s3/s3.js';
export type { S3Credentials } from './s3/client.js';
// For S3-specific callers (policies, doctor) that send their own commands through S3Storage.client:
// the SDK's commands, loaded on first use (s3/sdk.ts), so a process that never talks to S3 never loads it.
export { S3 as S3Sdk } from './s3/sdk.js';
export { classifyS3Error, sdkErrorCode, type ClassifyContext } from './s3/classify.js';
export { downloadToFile, DEFAULT_DOWNLOAD_CONCURRENCY, DEFAULT_DOWNLOAD_PART_SIZE, type DownloadToFileOptions } from './download-file.js';
export { openStorage, parseStorageUrl, splitObjectUrl, splitPrefixUrl, findLocalBucketRoot, type StorageLocation } from './url.js';
