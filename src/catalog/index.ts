// The catalog's public face: other layers import from here only.
export type {
  Catalog,
  ArchiveRow,
  ArchiveStatus,
  ArchiveFilter,
  Compression,
  ManifestAuth,
  BeginArchiveInput,
  BeginArchiveOptions,
  CompleteArchiveInput,
  NoteInput,
  NoteRow,
  OperationStatus,
  OperationResult,
  OperationRow,
  ThroughputSample,
  RestoreTier,
  RestoreStatus,
  RestoreRequestInput,
  RestoreRow,
  TotalsRow,
  LocatedManifest,
  RebuildResult,
  BackupRecord,
  BackupRecordInput,
} from './types.js';
export { openCatalog, openExistingCatalog, BUSY_TIMEOUT_MS } from './open.js';
export { CatalogError, isCatalogError, type CatalogErrorCode } from './errors.js';
export { MIGRATIONS } from './migrations.js';
export { THROUGHPUT_WINDOW } from './throughput.js';
export {
  archiveManifestSchema,
  parseManifest,
  manifestKeyFor,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  type ArchiveManifest,
  type ManifestFileEntry,
} from './manifest.js';
