import type { S3Credentials, Storage } from '../storage/index.js';

/**
 * Where snapshots live. The first of these that applies wins:
 * 1. `storage` as a Storage instance (used as is, never closed by this library);
 * 2. `storage` as a storage URL (`./dir`, `file:///abs/dir`, `s3://bucket/prefix?endpoint=...`);
 * 3. `storage: 's3'` with `bucket` (and `prefix`, `region`, `endpoint`, ... as needed);
 * 4. `storage: 'local'` or `directory`: a local directory (default `.offsite/snapshots`);
 * 5. the environment variable OFFSITE_SNAPSHOT_URL (any storage URL; empty = unset), so the same
 *    code runs against a local directory in development and S3 in production;
 * 6. `.offsite/snapshots` under the current working directory.
 * Storage this library opens itself (2-6) is closed at the end of each call.
 */
export interface SnapshotLocation {
  storage?: Storage | 's3' | 'local' | (string & {});
  /** With `storage: 's3'`: the bucket. */
  bucket?: string;
  /** With `storage: 's3'`: key prefix inside the bucket ("agents/" -> snapshots are stored under it). */
  prefix?: string;
  /** With `storage: 's3'`. Default: AWS_REGION, then us-east-1. */
  region?: string;
  /** With `storage: 's3'`: for S3-compatible servers (MinIO, Ceph, R2, ...). */
  endpoint?: string;
  /** With `storage: 's3'`. Default: true when `endpoint` is set (most non-AWS servers are path-style). */
  forcePathStyle?: boolean;
  /** With `storage: 's3'`. Default: the AWS credential chain (environment, profile, SSO, instance role). */
  credentials?: S3Credentials;
  /** With `storage: 's3'`: a profile from ~/.aws/config. */
  profile?: string;
  /** A local directory (implies `storage: 'local'`). */
  directory?: string;
}

export interface SnapshotCallOptions extends SnapshotLocation {
  signal?: AbortSignal;
}

export interface SnapshotOptions extends SnapshotCallOptions {
  /** Who wrote the snapshot, e.g. the agent's name. Stored percent-encoded in user metadata. */
  agentId?: string;
  sessionId?: string;
  /** Free text. Counts toward S3's 2 KB user-metadata limit, percent-encoded (see docs). */
  description?: string;
}

export interface ListSnapshotsOptions extends SnapshotCallOptions {
  /** Only snapshot keys that start with this ("agent-1/"). */
  prefix?: string;
}

/** What snapshot() recorded, as returned by snapshot() and getMetadata(). */
export interface SnapshotMetadata {
  /** The snapshot key, as given to snapshot(). */
  key: string;
  /** The object that holds it: `<key>.json.gz`. */
  objectKey: string;
  /** The storage it lives in (URL form, no secrets). */
  storageUrl: string;
  formatVersion: number;
  /** ISO 8601, UTC, from the writer's clock. */
  createdAt: string;
  /** Bytes of the JSON text. */
  size: number;
  /** Bytes of the stored gzip object. */
  storedSize: number;
  /** SHA-256 (hex) of the JSON text: what restore() checks. */
  sha256: string;
  /** SHA-256 (hex) of the stored gzip bytes: lets plain tools check the object as stored. */
  storedSha256: string;
  contentEncoding: 'gzip';
  contentType: string;
  etag: string;
  agentId?: string;
  sessionId?: string;
  description?: string;
}

/** The result of verifySnapshot(): what was expected, what was found. */
export interface SnapshotVerification {
  ok: boolean;
  key: string;
  objectKey: string;
  /** Recorded SHA-256 of the JSON (undefined if the object carries no snapshot metadata). */
  expectedSha256: string | undefined;
  /** SHA-256 of the decompressed bytes; undefined when they do not gunzip. */
  actualSha256: string | undefined;
  expectedStoredSha256: string | undefined;
  actualStoredSha256: string;
  /** Decompressed bytes found; undefined when they do not gunzip. */
  size: number | undefined;
  /** Stored bytes found. */
  storedSize: number;
  /** Why `ok` is false. */
  error?: string;
}

/** One entry of listSnapshots(): what a listing tells without reading each object. */
export interface SnapshotListEntry {
  key: string;
  objectKey: string;
  storedSize: number;
  lastModified: Date;
  etag: string;
}
