// The snapshot library's public face: one call to save or load JSON state, checked by SHA-256.
export { snapshot, restore, verifySnapshot, getMetadata, snapshotExists, deleteSnapshot, listSnapshots } from './snapshot.js';
export { SnapshotError, SnapshotIntegrityError, SnapshotNotFoundError, isSnapshotError, type SnapshotErrorCode } from './errors.js';
export { SNAPSHOT_URL_ENV, DEFAULT_SNAPSHOT_DIRECTORY } from './location.js';
export { FORMAT_VERSION as SNAPSHOT_FORMAT_VERSION, MAX_USER_METADATA_BYTES } from './format.js';
export type {
  SnapshotLocation,
  SnapshotCallOptions,
  SnapshotOptions,
  ListSnapshotsOptions,
  SnapshotMetadata,
  SnapshotVerification,
  SnapshotListEntry,
} from './types.js';
