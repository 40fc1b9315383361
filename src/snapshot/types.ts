import type { S3Credentials, Storage } from '../storage/index.js';

/**
 * Where snapshots live. The first of these that is set wins:
 * 1. `storage`: a Storage instance (used as is, never closed) or a storage URL
 *    (`./dir`, `file:///abs/dir`, `s3://bucket/prefix?endpoint=...`);
 * 2. `s3`: a bucket described field by field;
 * 3. `directory`: a local directory;
 * 4. the environment variable OFFSITE_SNAPSHOT_URL (any storage URL; empty = unset);
 * 5. `.offsite/snapshots` under the current working directory.
 * Storage this library opens itself (2-5, or a URL in 1) is closed at the end of each call.
 */
export interface SnapshotLocation {
  storage?: Storage | string;
  s3?: SnapshotS3Location;
  directory?: string;
}

export interface SnapshotS3Location {
  bucket: string;
  /** Key prefix inside the bucket ("agents/" -> snapshots are stored under it). */
  prefix?: string;
  /** Default: AWS_REGION, then us-east-1. */
  region?: string;
  /** For S3-compatible servers (MinIO, Ceph, R2, ...). */
  endpoint?: string;
  /** Default: true when `endpoint` is set (most non-AWS servers are path-style), else false. */
  forcePathStyle?: boolean;
  /** Default: the AWS credential chain (environment, profile, SSO, instance role). */
  credentials?: S3Credentials;
  profile?: string;
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
