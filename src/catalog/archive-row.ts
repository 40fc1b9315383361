// The archives table as the rest of the catalog reads it: one column list, one mapping.
import type { ArchiveRow } from './types.js';

/** SELECT list (and RETURNING list) that names columns as ArchiveRow does. */
export const ARCHIVE_COLUMNS = `
  id, session_id AS sessionId, year, key, manifest_key AS manifestKey, destination, status,
  upload_id AS uploadId, size, sha256, etag, storage_class AS storageClass, compression,
  encrypted, file_count AS fileCount, source_bytes AS sourceBytes, started_at AS startedAt,
  completed_at AS completedAt, error, verified_at AS verifiedAt, verify_ok AS verifyOk,
  verify_result AS verifyResult, manifest_sha256 AS manifestSha256, manifest_auth AS manifestAuth`;

/** What SQLite hands back: booleans as 0/1. */
export type StoredArchiveRow = Omit<ArchiveRow, 'encrypted' | 'verifyOk'> & { encrypted: number; verifyOk: number | null };

export function toArchiveRow(r: StoredArchiveRow): ArchiveRow {
  return { ...r, encrypted: r.encrypted === 1, verifyOk: r.verifyOk === null ? null : r.verifyOk === 1 };
}
