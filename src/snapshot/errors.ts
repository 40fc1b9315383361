/**
 * Snapshot errors. Like the storage errors, each has a stable `code` to switch on; messages name
 * the snapshot key and say what to do. Storage failures (AccessDenied, Transient, ...) are not
 * wrapped: they reach the caller as the StorageError the adapter raised.
 */
import { NotFoundError } from '../storage/index.js';

export type SnapshotErrorCode =
  /** The stored bytes do not gunzip, do not parse, or do not hash to the recorded SHA-256. */
  | 'SnapshotCorrupted'
  /** The object exists but carries no snapshot metadata (not written by snapshot()). */
  | 'NotASnapshot'
  /** Written by a newer format version than this library reads. */
  | 'UnsupportedSnapshotFormat'
  | 'InvalidSnapshotKey'
  | 'InvalidSnapshotOptions'
  /** agentId/sessionId/description would push the user metadata over S3's 2 KB. */
  | 'SnapshotMetadataTooLarge'
  /** JSON.stringify failed (cycle, BigInt) or produced nothing (undefined, a function). */
  | 'NotSerializable';

export class SnapshotError extends Error {
  readonly code: SnapshotErrorCode;
  /** The snapshot key the failed call was about, when there is one. */
  readonly key: string | undefined;

  constructor(code: SnapshotErrorCode, message: string, opts: { key?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = code === 'SnapshotCorrupted' ? 'SnapshotIntegrityError' : `${code}Error`;
    this.code = code;
    this.key = opts.key;
  }
}

export interface IntegrityDetails {
  key: string;
  objectKey: string;
  storageUrl: string;
  /** SHA-256 of the JSON recorded at snapshot time. */
  expectedSha256: string;
  /** SHA-256 of the decompressed bytes; undefined when they could not be decompressed. */
  actualSha256: string | undefined;
  /** SHA-256 of the gzip bytes recorded at snapshot time (undefined if not recorded). */
  expectedStoredSha256: string | undefined;
  /** SHA-256 of the bytes actually downloaded; undefined when they were refused unread. */
  actualStoredSha256: string | undefined;
  /** What failed, in words: "SHA-256 mismatch", "not valid gzip: ...", ... */
  reason: string;
}

/** A snapshot whose stored bytes fail the integrity check. Its value is never returned. */
export class SnapshotIntegrityError extends SnapshotError {
  declare readonly key: string;
  readonly objectKey: string;
  readonly storageUrl: string;
  readonly expectedSha256: string;
  readonly actualSha256: string | undefined;
  readonly expectedStoredSha256: string | undefined;
  readonly actualStoredSha256: string | undefined;
  readonly reason: string;

  constructor(d: IntegrityDetails, cause?: unknown) {
    super(
      'SnapshotCorrupted',
      `snapshot "${d.key}" (${d.storageUrl} ${d.objectKey}) is corrupted: ${d.reason}; ` +
        `expected sha256 ${d.expectedSha256}, got ${d.actualSha256 ?? '(undecodable)'}` +
        ` (stored gzip bytes: expected ${d.expectedStoredSha256 ?? '(not recorded)'}, got ${d.actualStoredSha256 ?? '(not downloaded)'}). ` +
        'Restore an older snapshot or write a new one.',
      { key: d.key, cause },
    );
    this.objectKey = d.objectKey;
    this.storageUrl = d.storageUrl;
    this.expectedSha256 = d.expectedSha256;
    this.actualSha256 = d.actualSha256;
    this.expectedStoredSha256 = d.expectedStoredSha256;
    this.actualStoredSha256 = d.actualStoredSha256;
    this.reason = d.reason;
  }
}

/**
 * No snapshot at a key. A NotFoundError (code 'NotFound') like any missing object, so
 * `isStorageError(e, 'NotFound')` and `instanceof NotFoundError` both hold; the message names
 * the snapshot key rather than only the object key.
 */
export class SnapshotNotFoundError extends NotFoundError {
  readonly snapshotKey: string;

  constructor(snapshotKey: string, objectKey: string, storageUrl: string, cause?: unknown) {
    super(objectKey, storageUrl, cause);
    this.name = 'SnapshotNotFoundError';
    this.message = `no snapshot "${snapshotKey}" in ${storageUrl} (object "${objectKey}" does not exist)`;
    this.snapshotKey = snapshotKey;
  }
}

export function isSnapshotError(e: unknown, code?: SnapshotErrorCode): e is SnapshotError {
  return e instanceof SnapshotError && (code === undefined || e.code === code);
}
